// Benchmark of the mesh pipeline (not a test): per-token latency (one greedy stream) and aggregate
// throughput (8 concurrent streams) for 1, 2 and 3 stages on loopback — real processes, libp2p
// links — the added cost per hop, bytes per token per hop, and the same over emulated WAN links
// (LinkShaper: userspace delay + rate in front of every peer). Then pipelining: 3 stages, 8 streams,
// one step at a time (--pipeline-depth 1) vs up to 3 micro-batches in flight (the default), same run.
//
//   npm run bench:mesh
//   npm run bench:mesh -- --model /tmp/x.gguf --tokens 64 --wan-delay 10 --wan-rate 100
//   npm run bench:mesh -- --part pipelining --model /tmp/smol12.gguf --tokens 24 --threads 1
//
// For reference: mesh-llm reports ~13 ms per hop; llama.cpp RPC needs 2 blocking round trips per
// token per remote device. Here a token crosses N one-way hops for N stages (one ring).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { freePort, LinkShaper } from "../src/mesh/link-shaper.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");
const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: join(ROOT, "models/stories260K.gguf") },
    tokens: { type: "string", default: "48" },
    streams: { type: "string", default: "8" },
    "wan-delay": { type: "string", default: "10" },
    "wan-rate": { type: "string", default: "100" },
    codec: { type: "string", default: "f32" },
    part: { type: "string", default: "all" },
    /** Compute threads per process (each peer its own "machine" of that many cores); default the engine's. */
    threads: { type: "string" },
  },
});
const TOKENS = Number(args.tokens);
const STREAMS = Number(args.streams);
const THREADS = args.threads ? ["--threads", args.threads] : [];

interface P {
  child: ChildProcess;
  out: string;
}
function start(argv: string[]): P {
  const child = spawn(process.execPath, [MAIN, ...argv], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const p: P = { child, out: "" };
  child.stdout!.on("data", (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (p.out += d.toString()));
  return p;
}
async function wait(p: P, re: RegExp): Promise<RegExpMatchArray> {
  const t0 = Date.now();
  for (;;) {
    const m = p.out.match(re);
    if (m) return m;
    if (p.child.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`waiting for ${re}:\n${p.out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function splitFor(nLayer: number, n: number): string {
  const base = Math.floor(nLayer / n);
  return Array.from({ length: n }, (_, i) => base + (i < nLayer % n ? 1 : 0)).join(",");
}

async function nLayers(model: string): Promise<number> {
  const { openGGUF } = await import("../src/gguf/reader.ts");
  const g = openGGUF(model);
  const arch = String(g.getValue("general.architecture"));
  const n = Number(g.getValue(`${arch}.block_count`));
  g.close();
  return n;
}

interface Mesh {
  url: string;
  logs(): string;
  close(): Promise<void>;
}

async function startMesh(stages: number, wan: { delayMs: number; rateBits: number } | null, extra: string[] = []): Promise<Mesh> {
  const dir = mkdtempSync(join(tmpdir(), "llmesh-bench-"));
  const procs: P[] = [];
  const shapers: LinkShaper[] = [];
  const addrArgs = async (): Promise<string[]> => {
    if (!wan) return ["--listen", "/ip4/127.0.0.1/tcp/0"];
    const port = await freePort();
    const sh = await LinkShaper.start({ targetPort: port, delayMs: wan.delayMs, rateBitsPerSec: wan.rateBits });
    shapers.push(sh);
    return ["--listen", `/ip4/127.0.0.1/tcp/${port}`, "--announce", `/ip4/127.0.0.1/tcp/${sh.port}`];
  };
  const host = start([
    "serve", "--model", args.model!, "--mesh", "--peers", String(stages - 1), "--port", "0", "--data-dir", join(dir, "h"), "--log-format", "json",
    "--ctx", "256", "--split", splitFor(await nLayers(args.model!), stages), "--codec", args.codec!, ...extra, ...THREADS, ...(await addrArgs()),
  ]);
  procs.push(host);
  const token = (await wait(host, /^invite: (\S+)$/m))[1];
  for (let i = 1; i < stages; i++) {
    const w = start(["join", token, "--model", args.model!, "--data-dir", join(dir, `w${i}`), "--name", `w${i}`, ...THREADS, ...(await addrArgs())]);
    procs.push(w);
    await wait(w, /joined the mesh/);
  }
  const url = (await wait(host, /ready: (http:\/\/[0-9.:]+)\/v1/))[1];
  return {
    url,
    logs: () => procs.map((p, i) => `--- ${i === 0 ? "host" : `worker ${i}`}\n${p.out.split("\n").slice(-30).join("\n")}`).join("\n"),
    close: async () => {
      for (const p of procs) p.child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      for (const s of shapers) await s.close();
    },
  };
}

async function stream(client: OpenAI, model: string, prompt: string): Promise<{ times: number[] }> {
  const s = await client.completions.create({ model, prompt, max_tokens: TOKENS, temperature: 0, stream: true, ignore_eos: true } as OpenAI.CompletionCreateParamsStreaming);
  const times: number[] = [];
  for await (const c of s) if (c.choices[0]?.text !== undefined) times.push(performance.now());
  return { times };
}

interface Row {
  stages: number;
  link: string;
  msPerToken: number;
  aggTokPerSec: number;
  bytesPerTokenPerHop: number;
}

async function measure(stages: number, wan: { delayMs: number; rateBits: number } | null): Promise<Row> {
  const mesh = await startMesh(stages, wan);
  try {
    const client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: "x", maxRetries: 0 });
    const model = (await client.models.list()).data[0].id;
    await stream(client, model, "Warm up");
    const lat: number[] = [];
    for (let r = 0; r < 3; r++) {
      const { times } = await stream(client, model, "Once upon a time");
      lat.push((times[times.length - 1] - times[0]) / (times.length - 1));
    }
    lat.sort((a, b) => a - b);
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: STREAMS }, (_, i) => stream(client, model, `Story ${i}: once`)));
    const total = all.reduce((a, s) => a + s.times.length, 0);
    const agg = total / ((performance.now() - t0) / 1000);
    const status = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as { stages: Array<{ stats?: { bytesOutPerToken: number } }> };
    const bpt = stages > 1 ? (status.stages[0].stats?.bytesOutPerToken ?? 0) : 0;
    return { stages, link: wan ? `WAN ${wan.delayMs} ms, ${wan.rateBits / 1e6} Mbit/s` : "loopback", msPerToken: lat[1], aggTokPerSec: agg, bytesPerTokenPerHop: bpt };
  } finally {
    await mesh.close();
  }
}

async function aggregate(stages: number, wan: { delayMs: number; rateBits: number } | null, depth: number | null): Promise<{ tokPerSec: number; maxInFlight: number; replyBytesPerStep: number; texts: string[] }> {
  const mesh = await startMesh(stages, wan, depth === null ? [] : ["--pipeline-depth", String(depth)]);
  try {
    const client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: "x", maxRetries: 0 });
    const model = (await client.models.list()).data[0].id;
    await stream(client, model, "Warm up");
    const run = async (i: number) => {
      const s = await client.completions.create({ model, prompt: `Story ${i}: once`, max_tokens: TOKENS, temperature: 0, stream: true, ignore_eos: true } as OpenAI.CompletionCreateParamsStreaming);
      let text = "";
      let n = 0;
      for await (const c of s) if (c.choices[0]?.text !== undefined) { text += c.choices[0].text; n++; }
      return { text, n };
    };
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: STREAMS }, (_, i) => run(i)));
    const tokPerSec = all.reduce((a, r) => a + r.n, 0) / ((performance.now() - t0) / 1000);
    const st = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as { pipeline?: { maxInFlight: number; replyBytesPerStep: number }; stages: Array<{ stats?: Record<string, number> }> };
    if (process.env.BENCH_VERBOSE) for (const [i, x] of st.stages.entries()) process.stdout.write(`  depth ${depth ?? "default"} stage ${i}: ${JSON.stringify(x.stats)}\n`);
    return { tokPerSec, maxInFlight: st.pipeline?.maxInFlight ?? 1, replyBytesPerStep: st.pipeline?.replyBytesPerStep ?? 0, texts: all.map((r) => r.text) };
  } catch (err) {
    process.stderr.write(`${mesh.logs()}\n`);
    throw err;
  } finally {
    await mesh.close();
  }
}

const WAN = { delayMs: Number(args["wan-delay"]), rateBits: Number(args["wan-rate"]) * 1e6 };
if (args.part === "all" || args.part === "pipelining" || args.part === "pipelining-wan") {
  for (const wan of args.part === "pipelining-wan" ? [WAN] : [null, WAN]) {
    const link = wan ? `WAN ${wan.delayMs} ms, ${wan.rateBits / 1e6} Mbit/s` : "loopback";
    const one = await aggregate(3, wan, 1);
    const piped = await aggregate(3, wan, null);
    const same = one.texts.every((t, i) => t === piped.texts[i]);
    process.stdout.write(
      `${link}	3 stages, ${STREAMS} streams × ${TOKENS} tokens	one step at a time: ${one.tokPerSec.toFixed(1)} tok/s	` +
        `pipelined (≤ ${piped.maxInFlight} in flight): ${piped.tokPerSec.toFixed(1)} tok/s	×${(piped.tokPerSec / one.tokPerSec).toFixed(2)}	` +
        `reply ${piped.replyBytesPerStep} B/step	texts identical: ${same}
`,
    );
  }
}
if (args.part.startsWith("pipelining")) process.exit(0);

const rows: Row[] = [];
for (const wan of [null, WAN]) {
  for (const n of [1, 2, 3]) {
    const r = await measure(n, wan);
    rows.push(r);
    process.stdout.write(`${r.link}\t${n} stage(s)\t${r.msPerToken.toFixed(2)} ms/token\t${r.aggTokPerSec.toFixed(1)} tok/s aggregate (${STREAMS} streams)\t${Math.round(r.bytesPerTokenPerHop)} B/token/hop\n`);
  }
}
for (const link of new Set(rows.map((r) => r.link))) {
  const rs = rows.filter((r) => r.link === link);
  const one = rs.find((r) => r.stages === 1)!;
  const hops = rs.filter((r) => r.stages > 1).map((r) => (r.msPerToken - one.msPerToken) / r.stages);
  process.stdout.write(`${link}: added cost per hop ≈ ${(hops.reduce((a, b) => a + b, 0) / hops.length).toFixed(2)} ms (N stages = N one-way hops per token; mesh-llm ~13 ms/hop; llama.cpp RPC 2 round trips/token/device)\n`);
}

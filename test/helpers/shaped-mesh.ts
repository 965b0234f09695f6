// A mesh of real processes (`llmesh serve --mesh` + `llmesh join`) over emulated links: every peer
// listens on its own port behind a LinkShaper (delay + rate) and announces the shaper's address, so
// every connection to it crosses the emulated link. A worker may get its own entry to the host
// (`hostLink`: a second shaper in front of the host, written into that worker's copy of the invite),
// which makes one host ↔ worker link different from the others. libp2p reuses a connection between two
// peers whichever side dialed it, so:
//   host ↔ worker i  = the shaper the worker dialed the host through (hostLink, else the host's own);
//   worker ↔ worker  = either worker's own shaper (give them the same figures).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { decodeInvite, encodeInvite } from "../../src/mesh/identity.ts";
import { freePort, LinkShaper } from "../../src/mesh/link-shaper.ts";
import { MAIN, ROOT, tempDir, waitFor, type Proc } from "../mesh/helpers.ts";

export interface LinkSpec {
  /** One-way delay, ms. */
  delayMs: number;
  /** Bits per second (0 = unlimited). */
  rateBitsPerSec: number;
}

export interface ShapedMeshOptions {
  /** The host's own access link (what workers without a hostLink dial it through). */
  host: LinkSpec;
  /** One entry per worker, in join order: its own access link and, optionally, its own way to the host. */
  workers: Array<{ link: LinkSpec; hostLink?: LinkSpec }>;
  split?: string;
  threads?: number;
  ctx?: number;
  codec?: string;
  /** Environment of every process . */
  env?: Record<string, string>;
  extra?: string[];
  /** Workers join one after the other, in the order given (the ring order of a --split); default: all at once. */
  joinInOrder?: boolean;
}

export interface ShapedMesh {
  url: string;
  host: Proc;
  workers: Proc[];
  close(): Promise<void>;
}


function startProc(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const p: Proc = { child, out: "", exited: new Promise((res) => child.on("exit", (code) => res(code))) };
  child.stdout!.on("data", (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (p.out += d.toString()));
  return p;
}

export async function startShapedMesh(model: string, o: ShapedMeshOptions): Promise<ShapedMesh> {
  const dir = tempDir("llmesh-shaped-");
  const shapers: LinkShaper[] = [];
  const procs: Proc[] = [];
  const env = o.env ?? {};
  const threads = o.threads !== undefined ? ["--threads", String(o.threads)] : [];
  const shaped = async (target: number, l: LinkSpec): Promise<LinkShaper> => {
    const s = await LinkShaper.start({ targetPort: target, delayMs: l.delayMs, rateBitsPerSec: l.rateBitsPerSec });
    shapers.push(s);
    return s;
  };
  const close = async (): Promise<void> => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGTERM");
    await Promise.all(procs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))])));
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    for (const s of shapers) await s.close().catch(() => {});
  };
  try {
    const hostPort = await freePort();
    const hostShaper = await shaped(hostPort, o.host);
    const host = startProc([
      "serve", "--model", model, "--mesh", "--peers", String(o.workers.length), "--port", "0", "--data-dir", join(dir, "host"), "--log-format", "json",
      "--ctx", String(o.ctx ?? 256), "--codec", o.codec ?? "f32", "--listen", `/ip4/127.0.0.1/tcp/${hostPort}`, "--announce", `/ip4/127.0.0.1/tcp/${hostShaper.port}`,
      ...threads, ...(o.split ? ["--split", o.split] : []), ...(o.extra ?? []),
    ], env);
    procs.push(host);
    const token = (await waitFor(host, /^invite: (\S+)$/m, 60_000))[1];
    const workers: Proc[] = [];
    const joins: Array<Promise<unknown>> = [];
    for (const [i, w] of o.workers.entries()) {
      let invite = token;
      if (w.hostLink) {
        const s = await shaped(hostPort, w.hostLink);
        const inv = decodeInvite(token);
        invite = encodeInvite({ ...inv, addrs: inv.addrs.map((a) => a.replace(`/tcp/${hostShaper.port}/`, `/tcp/${s.port}/`)) });
      }
      const port = await freePort();
      const own = await shaped(port, w.link);
      const p = startProc([
        "join", invite, "--model", model, "--data-dir", join(dir, `w${i + 1}`), "--name", `w${i + 1}`,
        "--listen", `/ip4/127.0.0.1/tcp/${port}`, "--announce", `/ip4/127.0.0.1/tcp/${own.port}`, ...threads,
      ], env);
      procs.push(p);
      workers.push(p);
      const joined = waitFor(p, /joined the mesh/, 60_000);
      if (o.joinInOrder) await joined;
      else joins.push(joined);
    }
    await Promise.all(joins);
    const url = (await waitFor(host, /ready: (http:\/\/[0-9.:]+)\/v1/, 90_000))[1];
    return { url, host, workers, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface MeshPlacement {
  source: string;
  predictedMsPerToken: number;
  measuredMsPerToken?: number;
  measuredFrom?: string;
  stages: Array<{ peer: string; predictedMsPerToken: number }>;
  hops: Array<{ from: string; to: string; rttMs: number; predictedMs: number }>;
}

export interface MeshStatusView {
  placement?: MeshPlacement;
  stages: Array<{ peer: string; name: string; range?: { start: number; end: number }; rttMs?: number; msPerLayer: number; freeMemoryBytes: number; stats?: { computeMsPerStep: number; transferMsPerStep: number; steps: number } }>;
}

export async function meshStatus(url: string): Promise<MeshStatusView> {
  return (await (await fetch(`${url}/v1/mesh`)).json()) as MeshStatusView;
}

/**
 * One greedy stream of `tokens` tokens through /v1/completions (SSE): the time between consecutive
 * tokens as the client sees them (ms), the prompt's prefill excluded.
 */
export async function greedyStream(url: string, prompt: string, tokens: number): Promise<number[]> {
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: models.data[0].id, prompt, max_tokens: tokens, temperature: 0, stream: true, ignore_eos: true }),
  });
  if (!res.ok || !res.body) throw new Error(`completion failed: ${res.status} ${await res.text()}`);
  const times: number[] = [];
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body) {
    buf += dec.decode(chunk as Uint8Array, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (ev.startsWith("data: ") && !ev.includes("[DONE]") && ev.includes('"text"')) times.push(performance.now());
    }
  }
  const gaps: number[] = [];
  for (let k = 1; k < times.length; k++) gaps.push(times[k] - times[k - 1]);
  return gaps;
}

export function median(a: readonly number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Benchmark of `llmesh serve` (not a test): aggregate generated tokens/s and TTFT / inter-token
// latency percentiles at several numbers of concurrent streams, against the engine's own
// single-stream decode speed.
//
//   npm run bench:serve                              # synthetic smollm2-135m Q8_0, 1/4/16/64 streams
//   npm run bench:serve -- --levels 1,4 --max-tokens 16 --model models/stories260K.gguf
//
// The model defaults to a synthetic smollm2-135m (random Q8_0 weights, llama SPM vocabulary),
// written once with `llmesh synth` and cached under the OS temp dir. The server runs in a child
// process (so the load generator does not share its event loop); streams are driven over
// 127.0.0.1 with raw HTTP and timed per SSE event.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    levels: { type: "string", default: "1,4,16,64" },
    "max-tokens": { type: "string", default: "32" },
    "prompt-words": { type: "string", default: "12" },
    "max-batch": { type: "string", default: "64" },
    "prefill-chunk": { type: "string", default: "128" },
    "engine-tokens": { type: "string" },
    "serve-child": { type: "boolean", default: false },
    port: { type: "string", default: "0" },
  },
  allowPositionals: false,
});

function defaultModel(): string {
  const dir = join(tmpdir(), "llmesh-bench");
  const file = join(dir, "smollm2-135m-q8_0.gguf");
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    process.stderr.write(`writing ${file} (llmesh synth, once)…\n`);
    const r = spawnSync(
      process.execPath,
      [join(ROOT, "src/cli/main.ts"), "synth", "--shape", "smollm2-135m", "--type", "Q8_0", "--vocab", join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), "-o", file],
      { stdio: "inherit" },
    );
    if (r.status !== 0) throw new Error("llmesh synth failed");
  }
  return file;
}

// ---- child: the server ----

async function runChild(): Promise<void> {
  const { serve } = await import("../src/cli/commands/serve.ts");
  const { url } = await serve({
    model: args.model!,
    host: "127.0.0.1",
    port: Number(args.port),
    maxQueue: 1024,
    maxBatch: Number(args["max-batch"]),
    prefillChunk: Number(args["prefill-chunk"]),
    requestTimeout: 0,
    shutdownTimeout: 1,
    bodyLimit: 1 << 20,
    logFormat: "json",
    logLevel: "warn",
    engine: "fast",
    ctx: 2048,
  });
  process.stdout.write(JSON.stringify({ benchReady: true, url }) + "\n");
}

// ---- parent: the load generator ----

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

interface StreamStats {
  ttft: number;
  gaps: number[];
  tokens: number;
  end: number;
}

function stream(port: number, body: unknown, t0: number): Promise<StreamStats> {
  return new Promise((resolve, reject) => {
    const st: StreamStats = { ttft: NaN, gaps: [], tokens: 0, end: 0 };
    let last = 0;
    const req = http.request({ host: "127.0.0.1", port, path: "/v1/completions", method: "POST", headers: { "content-type": "application/json" }, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        buf += c;
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(6, i);
          buf = buf.slice(i + 2);
          if (ev === "[DONE]") continue;
          const o = JSON.parse(ev) as { choices: Array<{ text: string }>; usage?: { completion_tokens: number } | null };
          if (o.usage) st.tokens = o.usage.completion_tokens;
          if (!o.choices.length || o.choices[0].text === "") continue;
          const now = performance.now();
          if (Number.isNaN(st.ttft)) st.ttft = now - t0;
          else st.gaps.push(now - last);
          last = now;
        }
      });
      res.on("end", () => {
        st.end = performance.now() - t0;
        resolve(st);
      });
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const WORDS = "once upon a time there was a little girl named lily she loved to play outside in the park with her big red ball and her friend tom".split(" ");

function prompt(i: number, words: number): string {
  return Array.from({ length: words }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]).join(" ");
}

async function engineSingleStream(model: string, tokens: number): Promise<{ tokPerS: number; prefillTokPerS: number }> {
  const { LocalBackend } = await import("../src/backend/local-backend.ts");
  const b = LocalBackend.load({ path: model, maxContext: 2048 });
  try {
    const seq = b.createSequence();
    const p = Int32Array.from(b.encode(prompt(0, Number(args["prompt-words"])), true));
    let t = performance.now();
    let logits = b.forward([{ seq, tokens: p, logits: "last" }])[0];
    const prefillMs = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < tokens; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      logits = b.forward([{ seq, tokens: Int32Array.of(best), logits: "last" }])[0];
    }
    return { tokPerS: (tokens * 1000) / (performance.now() - t), prefillTokPerS: (p.length * 1000) / prefillMs };
  } finally {
    b.close();
  }
}

function startServer(model: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--serve-child", "--model", model, "--port", "0", "--max-batch", String(args["max-batch"]), "--prefill-chunk", String(args["prefill-chunk"])], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let buf = "";
    let port = 0;
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const o = JSON.parse(line) as { url?: string; benchReady?: boolean };
          if (o.url) port = Number(new URL(o.url).port);
          if (o.benchReady) resolve({ child, port });
        } catch {
          // not JSON
        }
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  if (args["serve-child"]) return runChild();
  const model = args.model ?? defaultModel();
  const levels = args.levels!.split(",").map(Number);
  const maxTokens = Number(args["max-tokens"]);
  const words = Number(args["prompt-words"]);
  process.stderr.write(`model ${model}\nmeasuring the engine's single-stream decode…\n`);
  const eng = await engineSingleStream(model, Number(args["engine-tokens"] ?? maxTokens));
  process.stderr.write(`engine: ${eng.tokPerS.toFixed(2)} tok/s decode, ${eng.prefillTokPerS.toFixed(1)} tok/s prefill (single stream, no server)\nstarting the server…\n`);
  const { child, port } = await startServer(model);
  const rows: string[][] = [["streams", "wall s", "gen tok", "agg tok/s", "× engine", "TTFT p50 ms", "TTFT p99 ms", "ITL p50 ms", "ITL p99 ms"]];
  try {
    // Warm-up (JIT).
    await stream(port, { prompt: prompt(0, words), max_tokens: 2, temperature: 0, stream: true }, performance.now());
    for (const n of levels) {
      const t0 = performance.now();
      const all = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          stream(port, { prompt: prompt(i, words), max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } }, t0),
        ),
      );
      const wall = (performance.now() - t0) / 1000;
      const tokens = all.reduce((a, s) => a + s.tokens, 0);
      const agg = tokens / wall;
      const ttft = all.map((s) => s.ttft);
      const itl = all.flatMap((s) => s.gaps);
      const row = [String(n), wall.toFixed(1), String(tokens), agg.toFixed(2), (agg / eng.tokPerS).toFixed(2), percentile(ttft, 50).toFixed(0), percentile(ttft, 99).toFixed(0), percentile(itl, 50).toFixed(1), percentile(itl, 99).toFixed(1)];
      rows.push(row);
      process.stderr.write(`${n} streams: ${row.slice(1).join("  ")}\n`);
    }
  } finally {
    child.kill("SIGTERM");
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  process.stdout.write(`\nllmesh serve benchmark — ${model}\nprompt ≈${words} words, ${maxTokens} tokens per stream (ignore_eos), greedy; engine single-stream: ${eng.tokPerS.toFixed(2)} tok/s\n\n`);
  for (const r of rows) process.stdout.write(r.map((x, c) => x.padStart(widths[c])).join("  ") + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:serve: ${(e as Error).stack}\n`);
  process.exit(1);
});

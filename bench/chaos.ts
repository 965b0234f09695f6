// Chaos soak (a benchmark, not a test): a mesh host and W workers as real processes on loopback under
// steady load (C client loops, each streaming greedy completions through the official openai client),
// while workers are killed (-9), frozen (SIGSTOP, then killed), or told to leave (SIGTERM) at random,
// and restarted a few seconds later with the same identity. Every completed text is checked against
// an undisturbed single-process run. Reports requests completed / failed / wrong, the worst pause a
// stream saw, inter-token gap percentiles, and the mesh's own failover counters.
//
//   npm run bench:chaos
//   npm run bench:chaos -- --seconds 300 --workers 3 --clients 4 --seed 7
//
// By default the host offers too little memory (--memory 3M) to hold the model alone, so at least one
// worker must be in the ring; the chaos keeps at least one worker alive (or restarting).
import { join } from "node:path";
import { parseArgs } from "node:util";
import OpenAI from "openai";
import { LocalBackend } from "../src/backend/local-backend.ts";
import { createGateway } from "../src/gateway/server.ts";
import type { MeshStatus } from "../src/mesh/host.ts";
import { startMesh, startProc, STORIES, waitFor, type Proc } from "../test/mesh/helpers.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: STORIES },
    seconds: { type: "string", default: "180" },
    workers: { type: "string", default: "3" },
    clients: { type: "string", default: "4" },
    tokens: { type: "string", default: "48" },
    seed: { type: "string", default: "1" },
    "host-memory": { type: "string", default: "3M" },
  },
});
const SECONDS = Number(args.seconds);
const W = Number(args.workers);
const C = Number(args.clients);
const TOKENS = Number(args.tokens);
const CTX = 256;
const PROMPTS = ["Once upon a time", "The little dog", "Lily and Ben went to the park", "One day, a bird", "Tom had a red ball", "The sun was", "Mom said", "There was a big tree"];

let rng = Number(args.seed) >>> 0 || 1;
function rand(): number {
  // mulberry32
  rng = (rng + 0x6d2b79f5) >>> 0;
  let t = rng;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** The longest gap so far: its length (ms) and when it ended (Date.now()). */
const worst = { ms: 0, endedAt: 0 };

async function stream(client: OpenAI, model: string, prompt: string, gaps: number[]): Promise<string> {
  const s = await client.completions.create({ model, prompt, max_tokens: TOKENS, temperature: 0, stream: true, ...{ ignore_eos: true } });
  let text = "";
  let last = 0;
  for await (const c of s) {
    const piece = c.choices[0]?.text ?? "";
    if (!piece) continue;
    const now = performance.now();
    if (last > 0) {
      gaps.push(now - last);
      if (now - last > worst.ms) {
        worst.ms = now - last;
        worst.endedAt = Date.now();
      }
    }
    last = now;
    text += piece;
  }
  return text;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function main(): Promise<void> {
  const model = args.model;
  const modelId = model.split("/").pop()!.replace(/\.gguf$/i, "");
  // The undisturbed reference: one process, same file.
  const ref = await createGateway({ backend: LocalBackend.load({ path: model, maxContext: CTX }), maxBatch: 16 });
  await ref.loaded;
  const refUrl = (await ref.listen({ host: "127.0.0.1", port: 0 })).url;
  const refClient = new OpenAI({ baseURL: `${refUrl}/v1`, apiKey: "x", maxRetries: 0 });
  const expected = new Map<string, string>();
  for (const p of PROMPTS) expected.set(p, await stream(refClient, modelId, p, []));
  await ref.shutdown({ graceMs: 0 });

  const mesh = await startMesh(model, { workers: W, ctx: CTX, extra: ["--memory", args["host-memory"], "--max-batch", "16"] });
  const client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: "x", maxRetries: 0, timeout: 120_000 });
  process.stdout.write(`mesh up: host + ${W} workers, model ${modelId}; soak for ${SECONDS} s with ${C} clients × ${TOKENS}-token greedy streams\n`);

  // Workers by name: the live process, or undefined while it is down.
  const names = Array.from({ length: W }, (_, i) => `w${i + 1}`);
  const live = new Map<string, Proc | undefined>(names.map((n, i) => [n, mesh.workers[i]]));
  const faults: Record<string, number> = { "kill -9": 0, SIGSTOP: 0, SIGTERM: 0, restart: 0 };
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  let stopping = false;

  const restart = async (name: string): Promise<void> => {
    for (let attempt = 1; attempt <= 3 && !stopping; attempt++) {
      const p = startProc(["join", mesh.token, "--model", model, "--data-dir", join(mesh.dir, name), "--listen", "/ip4/127.0.0.1/tcp/0", "--name", name]);
      try {
        await waitFor(p, /joined the mesh/, 60_000);
        live.set(name, p);
        faults.restart++;
        return;
      } catch (err) {
        process.stdout.write(`restart of ${name} (attempt ${attempt}) failed: ${(err as Error).message.slice(0, 400)}\n`);
        p.child.kill("SIGKILL");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };

  const chaos = (async () => {
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, 2000 + rand() * 4000));
      if (performance.now() >= end) break;
      const up = names.filter((n) => live.get(n));
      if (up.length <= 1) continue; // keep one worker: the host cannot hold the model alone
      const name = up[Math.floor(rand() * up.length)];
      const p = live.get(name)!;
      live.set(name, undefined);
      const r = rand();
      const kind = r < 0.5 ? "kill -9" : r < 0.75 ? "SIGSTOP" : "SIGTERM";
      faults[kind]++;
      process.stdout.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${kind} ${name}\n`);
      if (kind === "kill -9") p.child.kill("SIGKILL");
      else if (kind === "SIGTERM") p.child.kill("SIGTERM");
      else {
        p.child.kill("SIGSTOP");
        setTimeout(() => p.child.kill("SIGKILL"), 3000).unref();
      }
      const delay = 2000 + rand() * 3000;
      void (async () => {
        await Promise.race([p.exited, new Promise((r) => setTimeout(r, 20_000))]);
        await new Promise((r) => setTimeout(r, delay));
        if (!stopping) await restart(name);
      })();
    }
  })();

  let completed = 0;
  let failed = 0;
  let wrong = 0;
  const gaps: number[] = [];
  const errors = new Map<string, number>();
  const load = Array.from({ length: C }, async (_, c) => {
    let i = c;
    while (performance.now() < end) {
      const prompt = PROMPTS[i++ % PROMPTS.length];
      try {
        const text = await stream(client, modelId, prompt, gaps);
        if (text === expected.get(prompt)) completed++;
        else wrong++;
      } catch (err) {
        failed++;
        const m = (err as Error).message.slice(0, 120);
        errors.set(m, (errors.get(m) ?? 0) + 1);
      }
    }
  });
  await Promise.all([...load, chaos]);
  stopping = true;
  const st = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as MeshStatus;
  // What the host logged around the worst pause (JSON lines with epoch-ms times).
  const around: string[] = [];
  for (const line of mesh.host.out.split("\n")) {
    try {
      const j = JSON.parse(line) as { time: number; msg: string };
      if (j.msg !== "request" && j.time >= worst.endedAt - worst.ms - 1500 && j.time <= worst.endedAt + 200) around.push(`  ${((j.time - worst.endedAt) / 1000).toFixed(3)} s: ${j.msg.slice(0, 240)}`);
    } catch {
      // not a log line
    }
  }
  await mesh.close();
  for (const p of live.values()) p?.child.kill("SIGKILL");

  const secs = (performance.now() - t0) / 1000;
  const lines = [
    `soak: ${secs.toFixed(0)} s, ${W} workers, ${C} clients, ${TOKENS} tokens per request, seed ${args.seed}`,
    `faults: ${Object.entries(faults).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `requests: completed ${completed} (text identical to the undisturbed run), failed ${failed}, wrong text ${wrong}`,
    `inter-token gap: p50 ${pct(gaps, 50).toFixed(1)} ms, p99 ${pct(gaps, 99).toFixed(1)} ms, p99.9 ${pct(gaps, 99.9).toFixed(1)} ms, worst pause ${worst.ms.toFixed(0)} ms`,
    `mesh: epoch ${st.epoch}, events ${JSON.stringify(st.failover.events)}, replayed ${st.failover.replayedSequences} sequences / ${st.failover.replayedTokens} tokens, steps re-sent ${st.failover.resentSteps}, worst ring-down ${st.failover.worstRecoveryMs} ms`,
    ...[...errors].map(([m, n]) => `error ×${n}: ${m}`),
    `host log around the worst pause (seconds relative to its end):`,
    ...around.slice(0, 60),
  ];
  process.stdout.write(lines.join("\n") + "\n");
  process.exit(failed + wrong > 0 ? 1 : 0);
}

await main();

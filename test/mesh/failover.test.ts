// Acceptance (failover): real processes on loopback. Workers die (kill -9), hang (SIGSTOP), send
// garbage, join and leave while 8 greedy streams are being generated through the official openai
// client; every stream must finish with exactly the text an undisturbed single-process run gives. The
// time from the fault to the next token is measured and reported.
import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import OpenAI from "openai";
import { LocalBackend } from "../../src/backend/local-backend.ts";
import { createGateway, type Gateway } from "../../src/gateway/server.ts";
import type { MeshStatus } from "../../src/mesh/host.ts";
import { join } from "node:path";
import { freePort } from "../../src/mesh/link-shaper.ts";
import { spawnSync } from "node:child_process";
import { MAIN, ROOT, startMesh, startProc, STORIES, tempDir, waitFor, type Proc, type TestMesh } from "./helpers.ts";

const PROMPTS = ["Once upon a time", "The little dog", "Lily and Ben went to the park", "One day, a bird", "Tom had a red ball", "The sun was", "Mom said", "There was a big tree"];
const MAX_TOKENS = 160;
const CTX = 256;

interface StreamRun {
  texts: string[];
  /** Per stream: performance.now() of every chunk with text. */
  times: number[][];
}

/** 8 concurrent greedy streams (ignore_eos, so each is MAX_TOKENS long); onChunk sees the progress. */
async function runStreams(client: OpenAI, onChunk?: (stream: number, chunks: number) => void): Promise<StreamRun> {
  const times: number[][] = PROMPTS.map(() => []);
  const texts = await Promise.all(
    PROMPTS.map(async (prompt, i) => {
      const body = { model: "stories260K", prompt, max_tokens: MAX_TOKENS, temperature: 0, stream: true as const, ignore_eos: true };
      const s = await client.completions.create(body);
      let text = "";
      for await (const c of s) {
        const piece = c.choices[0]?.text ?? "";
        if (piece.length > 0) {
          text += piece;
          times[i].push(performance.now());
          onChunk?.(i, times[i].length);
        }
      }
      return text;
    }),
  );
  return { texts, times };
}

/**
 * Around a fault at `at`: the time until every stream has produced a token after it (ms), and the
 * longest gap any stream saw between two tokens across the fault.
 */
function pauseAround(run: StreamRun, at: number): { allResumed: number; worstPause: number } {
  let all = 0;
  let worst = 0;
  for (const ts of run.times) {
    const k = ts.findIndex((t) => t > at);
    if (k < 0) continue;
    all = Math.max(all, ts[k] - at);
    if (k > 0) worst = Math.max(worst, ts[k] - ts[k - 1]);
  }
  return { allResumed: all, worstPause: worst };
}

async function meshStatus(url: string): Promise<MeshStatus> {
  return (await (await fetch(`${url}/v1/mesh`)).json()) as MeshStatus;
}

/** Resolves when the first stream has `n` chunks (the fault then lands in the middle of every stream). */
function progress(n: number): { onChunk: (s: number, c: number) => void; reached: Promise<void> } {
  let resolve!: () => void;
  const reached = new Promise<void>((r) => (resolve = r));
  return { onChunk: (_s, c) => c >= n && resolve(), reached };
}

function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0, timeout: 120_000 });
}

function workerNamed(st: MeshStatus, name: string) {
  return st.stages.find((s) => s.name === name);
}

let ref: Gateway;
let expected: string[];

before(async () => {
  ref = await createGateway({ backend: LocalBackend.load({ path: STORIES, maxContext: CTX }), maxBatch: 16 });
  await ref.loaded;
  const { url } = await ref.listen({ host: "127.0.0.1", port: 0 });
  expected = (await runStreams(client(url))).texts;
  assert.ok(expected.every((t) => t.length > 200), "the undisturbed streams are long");
});
after(async () => {
  await ref.shutdown({ graceMs: 0 });
});

async function faultMidStream(t: TestContext, mesh: TestMesh, fault: () => void, label: string): Promise<StreamRun> {
  const p = progress(24);
  const running = runStreams(client(mesh.url), p.onChunk);
  await p.reached;
  const at = performance.now();
  fault();
  const run = await running;
  const { allResumed, worstPause } = pauseAround(run, at);
  const msg = `${label}: every stream had its next token ${allResumed.toFixed(0)} ms after the fault; longest gap between two tokens of a stream ${worstPause.toFixed(0)} ms`;
  t.diagnostic(msg);
  console.log(`# ${msg}`);
  return run;
}

describe("failover with 3 stages (host + 2 workers), stories260K", { concurrency: false }, () => {
  let mesh: TestMesh | undefined;
  after(async () => {
    await mesh?.close();
  });

  test("kill -9 of a worker mid-generation: all 8 streams finish with the undisturbed texts", async (t) => {
    mesh = await startMesh(STORIES, { workers: 2, ctx: CTX });
    const before = await meshStatus(mesh.url);
    assert.equal(before.stages.length, 3);
    const victim = mesh.workers[0];
    const run = await faultMidStream(t, mesh, () => victim.child.kill("SIGKILL"), "kill -9");
    assert.deepEqual(run.texts, expected);
    const st = await meshStatus(mesh.url);
    assert.equal(st.ready, true);
    assert.equal(st.epoch, 2);
    assert.equal(st.stages.length, 2, "re-planned over the host and the surviving worker");
    assert.equal(workerNamed(st, "w1"), undefined);
    assert.equal(st.failover.events.death, 1);
    assert.ok(st.failover.replayedSequences >= 1 && st.failover.replayedTokens > 0, JSON.stringify(st.failover));
    // Target: under 2 s on loopback (plus load time); the bound leaves room for a loaded CI machine.
    assert.ok(st.failover.worstRecoveryMs < 5000, `recovery took ${st.failover.worstRecoveryMs} ms`);
    const gaps = run.times.flatMap((ts) => ts.slice(1).map((t, i) => t - ts[i]));
    assert.ok(Math.max(...gaps) < 5000, `a stream waited ${Math.max(...gaps).toFixed(0)} ms for a token`);
    // Each layer exactly once over the new ring.
    const ranges = st.stages.map((s) => s.range!);
    assert.equal(ranges[0].start, 0);
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i].start, ranges[i - 1].end);
    assert.equal(ranges.at(-1)!.end, 5);
    const metrics = await (await fetch(`${mesh.url}/metrics`)).text();
    assert.match(metrics, /llmesh_mesh_events_total\{event="death"\} 1/);
    assert.match(metrics, /llmesh_mesh_recovery_seconds_count 1/);
    assert.match(mesh.host.out, /is gone/);
    // `llmesh status` tells the operator what happened.
    const cli = spawnSync(process.execPath, [MAIN, "status", "--url", mesh.url], { cwd: ROOT, timeout: 30_000 });
    assert.equal(cli.status, 0, cli.stderr.toString());
    assert.match(cli.stdout.toString(), /placement epoch 2/);
    assert.match(cli.stdout.toString(), /membership: .*death 1.*replay(ed)? /);
  });

  test("and the mesh keeps serving afterwards: a second round of streams is identical too", async () => {
    const run = await runStreams(client(mesh!.url));
    assert.deepEqual(run.texts, expected);
  });
});

describe("a worker that hangs (SIGSTOP) is detected within about a second", { concurrency: false }, () => {
  let mesh: TestMesh | undefined;
  let stopped: Proc | undefined;
  after(async () => {
    stopped?.child.kill("SIGKILL");
    await mesh?.close();
  });

  test("streams pause, the silent stage is replaced, texts unchanged", async (t) => {
    mesh = await startMesh(STORIES, { workers: 2, ctx: CTX });
    stopped = mesh.workers[1];
    const victim = stopped;
    const run = await faultMidStream(t, mesh, () => victim.child.kill("SIGSTOP"), "SIGSTOP");
    assert.deepEqual(run.texts, expected);
    const st = await meshStatus(mesh.url);
    assert.equal(st.failover.events.death, 1);
    assert.equal(st.stages.length, 2);
    assert.match(mesh.host.out, /silent for \d+ ms \(4 missed beats\)/);
    // Detected after about 1 s of silence (4 beats of 250 ms), not a minute-long heartbeat.
    const silent = Number(/silent for (\d+) ms/.exec(mesh.host.out)![1]);
    assert.ok(silent >= 1000 && silent < 4000, `declared dead after ${silent} ms of silence`);
  });
});

describe("a worker that sends malformed frames is quarantined", { concurrency: false }, () => {
  let mesh: TestMesh | undefined;
  after(async () => {
    await mesh?.close();
  });

  test("the garbage never reaches a stream; texts unchanged", async () => {
    // w1 sends a malformed frame downstream (to w2, or to the host if it is the last stage) after 40 steps.
    mesh = await startMesh(STORIES, { workers: 2, ctx: CTX, workerEnv: [{ LLMESH_TEST_GARBAGE_AFTER: "40" }] });
    const run = await runStreams(client(mesh.url));
    assert.deepEqual(run.texts, expected);
    const st = await meshStatus(mesh.url);
    assert.equal((st.failover.events.quarantine ?? 0) + (st.failover.events.death ?? 0), 1, JSON.stringify(st.failover.events));
    assert.equal(workerNamed(st, "w1"), undefined, "w1 is out of the ring");
    assert.match(mesh.host.out, /malformed frame|unknown message kind/);
    await waitFor(mesh.workers[0], /leaving:/, 10_000); // the quarantined worker was told to go
  });
});

describe("joins and leaves during generation", { concurrency: false }, () => {
  let mesh: TestMesh | undefined;
  after(async () => {
    await mesh?.close();
  });

  test("a faster peer joins mid-stream: the planner switches to it between steps, texts unchanged", async (t) => {
    // The host can hold at most two of the five layers (--memory), so it needs a worker; w1 reports a
    // 20× slower machine. w2 (normal speed) joins during generation: the planner prefers it.
    mesh = await startMesh(STORIES, { workers: 1, ctx: CTX, extra: ["--memory", "3M"], workerEnv: [{ LLMESH_TEST_COMPUTE_SCALE: "20" }] });
    const m = mesh;
    const st0 = await meshStatus(m.url);
    assert.equal(st0.stages.length, 2);
    assert.equal(st0.stages[1].name, "w1");
    const p = progress(24);
    const running = runStreams(client(m.url), p.onChunk);
    await p.reached;
    const at = performance.now();
    await m.addWorker("w2");
    await waitFor(m.host, /re-planned \(epoch 2/, 20_000);
    assert.match(m.host.out, /\(w2\) loaded its future layers \[\d+, 5\) while the mesh kept serving/);
    const run = await running;
    assert.deepEqual(run.texts, expected);
    const { worstPause } = pauseAround(run, at);
    t.diagnostic(`join switch: worst pause of a stream ${worstPause.toFixed(0)} ms`);
    const st = await meshStatus(m.url);
    assert.equal(st.epoch, 2);
    assert.deepEqual(st.stages.map((s) => s.name), ["host", "w2"]);
    assert.deepEqual(st.spares.map((s) => s.name), ["w1"]);
    assert.equal(st.failover.events.death, undefined);
  });

  test("the stage worker then dies: the spare takes its layers, texts unchanged", async (t) => {
    const m = mesh!;
    const run = await faultMidStream(t, m, () => m.workers[1].child.kill("SIGKILL"), "kill -9 with a spare");
    assert.deepEqual(run.texts, expected);
    const st = await meshStatus(m.url);
    assert.deepEqual(st.stages.map((s) => s.name), ["host", "w1"]);
    assert.equal(st.epoch, 3);
  });

  test("another fast peer joins: it replaces the slow one; then it leaves gracefully (SIGTERM) mid-stream and nothing fails", async (t) => {
    const m = mesh!;
    const st0 = await meshStatus(m.url);
    assert.equal(st0.stages[1].name, "w1");
    const w3 = await m.addWorker("w3");
    await waitFor(m.host, /re-planned \(epoch 4/, 20_000);
    const st1 = await meshStatus(m.url);
    assert.deepEqual(st1.stages.map((s) => s.name), ["host", "w3"]);
    assert.deepEqual(st1.spares.map((s) => s.name), ["w1"]);
    const run = await faultMidStream(t, m, () => w3.child.kill("SIGTERM"), "graceful leave");
    assert.deepEqual(run.texts, expected);
    assert.equal(await Promise.race([w3.exited, new Promise((r) => setTimeout(() => r("still running"), 15_000))]), 0);
    const st = await meshStatus(m.url);
    assert.deepEqual(st.stages.map((s) => s.name), ["host", "w1"], "its layers moved to the spare");
    assert.equal(st.failover.events.leave, 1);
    assert.equal(st.failover.events.death, 1, "only the earlier kill -9");
    assert.match(w3.out, /leaving: asking the host to move/);
  });
});

describe("no placement can hold the model: requests wait a bounded time, then 503", { concurrency: false }, () => {
  let mesh: TestMesh | undefined;
  after(async () => {
    await mesh?.close();
  });

  test("503 with a clear message after --recovery-timeout; a new peer brings the mesh back", async () => {
    mesh = await startMesh(STORIES, { workers: 1, ctx: CTX, extra: ["--memory", "3M", "--recovery-timeout", "2"] });
    const m = mesh;
    const c = client(m.url);
    const ok = await c.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
    assert.ok(ok.choices[0].text.length > 0);
    m.workers[0].child.kill("SIGKILL");
    await waitFor(m.host, /re-plan failed/, 10_000);
    const t0 = performance.now();
    await assert.rejects(
      c.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 8, temperature: 0 }),
      (err: unknown) => {
        const e = err as { status?: number; message?: string };
        assert.equal(e.status, 503);
        assert.match(String(e.message), /no placement over the remaining peers/);
        return true;
      },
    );
    const waited = performance.now() - t0;
    assert.ok(waited >= 1500 && waited < 8000, `waited ${waited.toFixed(0)} ms`);
    await m.addWorker("w9");
    await waitFor(m.host, /re-planned \(epoch 2/, 20_000);
    const again = await c.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
    assert.equal(again.choices[0].text, ok.choices[0].text);
  });
});

describe("the head dies", { concurrency: false }, () => {
  const procs: Proc[] = [];
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  });

  test("clients lose their streams; workers with --rejoin come back when the head restarts with the same --data-dir and address", async () => {
    const dir = tempDir();
    const port = await freePort();
    const hostArgs = ["serve", "--model", STORIES, "--mesh", "--peers", "1", "--port", "0", "--data-dir", join(dir, "host"), "--listen", `/ip4/127.0.0.1/tcp/${port}`, "--log-format", "json", "--ctx", String(CTX)];
    const host1 = startProc(hostArgs);
    procs.push(host1);
    const token = (await waitFor(host1, /^invite: (\S+)$/m))[1];
    const w = startProc(["join", token, "--model", STORIES, "--data-dir", join(dir, "w1"), "--listen", "/ip4/127.0.0.1/tcp/0", "--name", "w1", "--rejoin"]);
    procs.push(w);
    const url1 = (await waitFor(host1, /ready: (http:\/\/[0-9.:]+)\/v1/))[1];
    const c1 = client(url1);
    const before = await c1.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 16, temperature: 0 });

    // The head dies mid-stream: the client's stream ends with a connection error, not a hang.
    const p = progress(8);
    const running = runStreams(c1, p.onChunk);
    await p.reached;
    host1.child.kill("SIGKILL");
    await assert.rejects(running);
    await waitFor(w, /rejoining the mesh/, 10_000);
    assert.equal(w.child.exitCode, null, "the worker keeps running");

    // Same key, secret and address: the old invite is valid again and the worker rejoins by itself.
    const host2 = startProc(hostArgs);
    procs.push(host2);
    assert.equal((await waitFor(host2, /^invite: (\S+)$/m))[1], token);
    const url2 = (await waitFor(host2, /ready: (http:\/\/[0-9.:]+)\/v1/, 30_000))[1];
    const after2 = await client(url2).completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
    assert.equal(after2.choices[0].text, before.choices[0].text);
    const st = await meshStatus(url2);
    assert.deepEqual(st.stages.map((s) => s.name), ["host", "w1"]);
  });
});

// Acceptance: real processes on loopback — a host and two workers split a model three ways; greedy
// output through the official openai client (streaming) is token-for-token the single-process
// engine's; 8 concurrent streams complete with the texts each gives alone; invite/join refusals.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { LocalBackend } from "../../src/backend/local-backend.ts";
import { createGateway, type Gateway } from "../../src/gateway/server.ts";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { dialHandshake, RefusedError } from "../../src/mesh/handshake.ts";
import { decodeInvite, encodeInvite, modelFingerprint } from "../../src/mesh/identity.ts";
import { Libp2pTransport } from "../../src/mesh/libp2p-transport.ts";
import { CONTROL_PROTOCOL, encodeForward, encodeJson, MsgKind, PROTOCOL_VERSION } from "../../src/mesh/stage-protocol.ts";
import { Codec } from "../../src/mesh/codecs.ts";
import { MAIN, ROOT, startMesh, STORIES, synthModel, tempDir, waitFor, type TestMesh } from "./helpers.ts";

const PROMPTS = ["Once upon a time", "The little dog", "Lily and Ben went to the park", "One day, a bird", "Tom had a red ball", "The sun was", "Mom said", "There was a big tree"];

async function reference(model: string): Promise<{ gateway: Gateway; client: OpenAI }> {
  const gateway = await createGateway({ backend: LocalBackend.load({ path: model, maxContext: 256 }), maxBatch: 16 });
  await gateway.loaded;
  const { url } = await gateway.listen({ host: "127.0.0.1", port: 0 });
  return { gateway, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 }) };
}

/** Waits for both (so that after() can close whichever started), then throws the first failure. */
async function both(a: Promise<unknown>, b: Promise<unknown>): Promise<void> {
  const r = await Promise.allSettled([a, b]);
  for (const x of r) if (x.status === "rejected") throw x.reason;
}

async function streamText(client: OpenAI, model: string, prompt: string, maxTokens = 24): Promise<{ text: string; tokens: number }> {
  const s = await client.completions.create({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let tokens = 0;
  for await (const c of s) {
    for (const ch of c.choices) text += ch.text;
    if (c.usage) tokens = c.usage.completion_tokens;
  }
  return { text, tokens };
}

async function tokenIds(client: OpenAI, model: string, prompt: string): Promise<string[]> {
  const r = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, logprobs: 0 });
  return r.choices[0].logprobs?.tokens ?? [];
}

function cli(args: string[], env: Record<string, string> = {}): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, out: r.stdout.toString() + r.stderr.toString() };
}

describe("stories260K split three ways (host + 2 workers)", () => {
  let mesh: TestMesh;
  let ref: { gateway: Gateway; client: OpenAI };
  let client: OpenAI;
  before(async () => {
    await both(startMesh(STORIES, { split: "2,2,1" }).then((m) => (mesh = m)), reference(STORIES).then((r) => (ref = r)));
    client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: "x", maxRetries: 0 });
  });
  after(async () => {
    await mesh?.close();
    await ref?.gateway.shutdown({ graceMs: 0 });
  });

  test("greedy streaming completion and chat are token-for-token the single-process engine's", async () => {
    const [a, b] = await Promise.all([streamText(client, "stories260K", PROMPTS[0]), streamText(ref.client, "stories260K", PROMPTS[0])]);
    assert.equal(a.text, b.text);
    assert.equal(a.tokens, 24);
    assert.match(a.text, /^, there was a little girl named Lily/);
    assert.deepEqual(await tokenIds(client, "stories260K", PROMPTS[2]), await tokenIds(ref.client, "stories260K", PROMPTS[2]));
    const chat = async (c: OpenAI) => {
      const s = await c.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 16, temperature: 0, stream: true });
      let t = "";
      for await (const ch of s) t += ch.choices[0]?.delta.content ?? "";
      return t;
    };
    assert.equal(await chat(client), await chat(ref.client));
  });

  test("the last stage samples: seeded temperature sampling, penalties and logprobs match the single process", async () => {
    const sampled = async (c: OpenAI, prompt: string, seed: number) => {
      const r = await c.completions.create({
        model: "stories260K", prompt, max_tokens: 32, temperature: 0.8, top_p: 0.95, seed, frequency_penalty: 0.5, presence_penalty: 0.2,
        logit_bias: { "12": -100 }, logprobs: 3,
      });
      return { text: r.choices[0].text, lp: r.choices[0].logprobs };
    };
    for (const [i, p] of PROMPTS.slice(0, 3).entries()) {
      const [a, b] = await Promise.all([sampled(client, p, 1234 + i), sampled(ref.client, p, 1234 + i)]);
      assert.equal(a.text, b.text);
      assert.deepEqual(a.lp, b.lp); // chosen tokens' logprobs and top-3, exactly
    }
    // Several choices (n) with one seed, streamed and concurrent: each choice's seed is seed + index.
    const multi = async (c: OpenAI) => {
      const s = await c.completions.create({ model: "stories260K", prompt: PROMPTS[4], max_tokens: 24, temperature: 0.8, seed: 7, n: 3, stream: true });
      const t = ["", "", ""];
      for await (const ch of s) for (const x of ch.choices) t[x.index] += x.text;
      return t;
    };
    const [ma, mb] = await Promise.all([multi(client), multi(ref.client)]);
    assert.deepEqual(ma, mb);
    assert.notEqual(ma[0], ma[1]);
  });

  test("8 concurrent streams complete with the same texts as run alone", async () => {
    const alone: string[] = [];
    for (const p of PROMPTS) alone.push((await streamText(ref.client, "stories260K", p, 32)).text);
    const together = await Promise.all(PROMPTS.map((p) => streamText(client, "stories260K", p, 32)));
    assert.deepEqual(together.map((t) => t.text), alone);
    // Three stages keep up to three micro-batches in the ring.
    const st = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as { pipeline: { maxInFlight: number } };
    assert.ok(st.pipeline.maxInFlight >= 2 && st.pipeline.maxInFlight <= 3, `max in flight ${st.pipeline.maxInFlight}`);
  });

  test("GET /v1/mesh and `llmesh status` list peers, ranges, RTTs and per-stage timings", async () => {
    await new Promise((r) => setTimeout(r, 2200)); // one ping round
    const s = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as { ready: boolean; stages: Array<{ range: { start: number; end: number }; rttMs?: number; stats?: { tokens: number; bytesOutPerToken: number } }> };
    assert.equal(s.ready, true);
    assert.deepEqual(s.stages.map((x) => x.range), [{ start: 0, end: 2 }, { start: 2, end: 4 }, { start: 4, end: 5 }]);
    assert.ok(s.stages.slice(1).every((x) => typeof x.rttMs === "number"));
    assert.ok(s.stages.every((x) => (x.stats?.tokens ?? 0) > 0));
    // f32 hidden rows of n_embd 64: 256 bytes + framing per token.
    assert.ok(s.stages[0].stats!.bytesOutPerToken >= 256);
    // The last stage sends back token ids, not logits (n_vocab 512 × 4 = 2048 bytes per token).
    const last = s.stages[2].stats! as { tokens: number; bytesOutPerToken: number; steps?: number };
    assert.ok(last.bytesOutPerToken < 200, `last stage sends ${last.bytesOutPerToken} B/token`);
    // --split overrides the planner, which still predicts; one stream alone was measured by the greedy test.
    const pl = (s as unknown as { placement: { source: string; predictedMsPerToken: number; measuredMsPerToken?: number; measuredFrom?: string; hops: Array<{ rttMs: number }> } }).placement;
    assert.equal(pl.source, "--split");
    assert.ok(pl.predictedMsPerToken > 0 && pl.hops.length === 3 && pl.hops.every((h) => h.rttMs > 0));
    assert.ok((pl.measuredMsPerToken ?? 0) > 0);
    assert.equal(pl.measuredFrom, "single-token steps");
    const r = cli(["status", "--url", mesh.url]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /mesh: ready/);
    assert.match(r.out, /\[2, 4\)/);
    assert.match(r.out, /placement: --split \(interactive\); per token \(one stream\): predicted [0-9.]+ ms, measured [0-9.]+ ms/);
    assert.match(r.out, /placement epoch 1/);
    assert.match(r.out, /hop .* RTT [0-9.]+ ms, [0-9.]+ Mbit\/s, predicted [0-9.]+ ms\/token/);
  });

  test("a joiner with the wrong secret is refused, and so is its join through the CLI", async () => {
    const inv = decodeInvite(mesh.token);
    const bad = encodeInvite({ ...inv, secret: "00".repeat(32) });
    const r = cli(["join", bad, "--model", STORIES, "--data-dir", tempDir(), "--listen", "/ip4/127.0.0.1/tcp/0"]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /could not prove the mesh secret|authentication failed/);
    // A peer that skips the proof cannot send a single frame: the host closes the link.
    const t = await Libp2pTransport.create({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"] });
    try {
      const link = await t.dial(inv.addrs, CONTROL_PROTOCOL);
      await link.send(encodeForward(1, Codec.F32, [{ seq: 1, nTokens: 1, logits: true }], [new Float32Array(64)], 64));
      assert.equal(await link.next(), null);
      // Wrong proof at AUTH: REFUSE, then closed.
      const link2 = await t.dial(inv.addrs, CONTROL_PROTOCOL);
      await assert.rejects(dialHandshake(link2, "join", { secret: new Uint8Array(32), fingerprint: inv.fp, peer: t.peerId }), RefusedError);
      const link3 = await t.dial(inv.addrs, CONTROL_PROTOCOL);
      await link3.send(encodeJson(MsgKind.HELLO, { version: PROTOCOL_VERSION, nonce: "aa", peer: "x", fingerprint: inv.fp, purpose: "join" }));
      await link3.next(); // CHALLENGE
      await link3.send(encodeJson(MsgKind.AUTH, { proof: "00".repeat(32) }));
      const f = await link3.next();
      assert.equal(f?.[0], MsgKind.REFUSE);
      assert.match(Buffer.from(f!.subarray(8)).toString(), /authentication failed/);
    } finally {
      await t.stop();
    }
  });

  test("a joiner with a different model file is refused with a clear message", async () => {
    const other = synthModel(tempDir());
    const r = cli(["join", mesh.token, "--model", other, "--data-dir", tempDir()]);
    assert.equal(r.code, 1);
    assert.match(r.out, /model mismatch: the mesh serves stories260K\.gguf/);
    // The host checks too (a joiner that lies about nothing but has another file).
    const inv = decodeInvite(mesh.token);
    const t = await Libp2pTransport.create({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"] });
    try {
      const link = await t.dial(inv.addrs, CONTROL_PROTOCOL);
      await assert.rejects(dialHandshake(link, "join", { secret: Buffer.from(inv.secret, "hex"), fingerprint: modelFingerprint(other), peer: t.peerId }), /model mismatch/);
    } finally {
      await t.stop();
    }
  });

  test("a peer speaking another protocol version is refused, both versions named", () => {
    const r = cli(["join", mesh.token, "--model", STORIES, "--data-dir", tempDir(), "--listen", "/ip4/127.0.0.1/tcp/0"], { LLMESH_TEST_PROTOCOL_VERSION: "99" });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, new RegExp(`protocol version mismatch: this peer speaks llmesh stage protocol v${PROTOCOL_VERSION}, the other speaks v99`));
  });
});

describe("synthetic tiny-qwen2 (Q8_0) split three ways", () => {
  let mesh: TestMesh;
  let ref: { gateway: Gateway; client: OpenAI };
  before(async () => {
    const model = synthModel(tempDir());
    await both(startMesh(model).then((m) => (mesh = m)), reference(model).then((r) => (ref = r)));
  });
  after(async () => {
    await mesh?.close();
    await ref?.gateway.shutdown({ graceMs: 0 });
  });

  test("greedy streams are identical to the single-process engine's", async () => {
    const client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: "x", maxRetries: 0 });
    const id = (await client.models.list()).data[0].id;
    for (const p of PROMPTS.slice(0, 3)) {
      const [a, b] = await Promise.all([streamText(client, id, p), streamText(ref.client, id, p)]);
      assert.equal(a.text, b.text);
      assert.equal(a.tokens, b.tokens);
    }
    assert.deepEqual(await tokenIds(client, id, PROMPTS[1]), await tokenIds(ref.client, id, PROMPTS[1]));
  });

  test("without --split the planner places the layers: the host is stage 0, every layer once, prediction shown", async () => {
    const s = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as { stages: Array<{ role: string; range: { start: number; end: number } }>; placement: { source: string; predictedMsPerToken: number } };
    assert.equal(s.placement.source, "planner");
    assert.equal(s.stages[0].role, "host");
    assert.equal(s.stages[0].range.start, 0);
    for (let i = 1; i < s.stages.length; i++) assert.equal(s.stages[i].range.start, s.stages[i - 1].range.end);
    assert.ok(s.placement.predictedMsPerToken > 0);
  });
});

describe("--auto-stages: the planner may leave peers out", () => {
  let mesh: TestMesh | undefined;
  after(async () => {
    await mesh?.close();
  });

  test("stories260K is too small to gain from a split: the host holds every layer, the workers wait as spares", async () => {
    mesh = await startMesh(STORIES, { workers: 2, extra: ["--auto-stages", "--probe-interval", "1"] });
    const st = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as { stages: Array<{ name: string; range: { start: number; end: number } }>; spares: Array<{ name: string }>; placement: { notes: string[] } };
    assert.deepEqual(st.stages.map((s) => [s.name, s.range.start, s.range.end]), [["host", 0, 5]]);
    assert.deepEqual(st.spares.map((s) => s.name).sort(), ["w1", "w2"]);
    const client = new OpenAI({ baseURL: `${mesh.url}/v1`, apiKey: "x", maxRetries: 0 });
    const r = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
    assert.ok(r.choices[0].text.length > 0);
  });

  test("--probe-interval: every link is measured again, and the placement is kept when a switch would not pay", async () => {
    await waitFor(mesh!.host, /placement kept after re-measuring the links/, 15_000);
    const st = (await (await fetch(`${mesh!.url}/v1/mesh`)).json()) as { linksRefreshed: number; epoch: number };
    assert.ok(st.linksRefreshed >= 1);
    assert.equal(st.epoch, 1);
  });
});

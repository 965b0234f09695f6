// Stage protocol frames, activation codecs, placement, codec parity and range-only weight reads.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Engine } from "../../src/engine/engine.ts";
import { argmax } from "../../src/engine/sampling.ts";
import { openGGUF } from "../../src/gguf/reader.ts";
import { Codec, CodecError, encodedRowBytes, roundTrip } from "../../src/mesh/codecs.ts";
import { acceptHandshake, dialHandshake, RefusedError } from "../../src/mesh/handshake.ts";
import { decodeInvite, encodeInvite, modelFingerprint } from "../../src/mesh/identity.ts";
import { MemoryTransport } from "../../src/mesh/memory-transport.ts";
import { plan, profileFromGGUF, type PeerProfile } from "../../src/planner/index.ts";
import {
  decodeForward, decodeFree, decodeResult, decodeTokens, encodeForward, encodeFree, encodeResult, encodeTokens, MsgKind, PROTOCOL_VERSION, ProtocolError, readHeader,
} from "../../src/mesh/stage-protocol.ts";
import type { StageLink } from "../../src/mesh/transport.ts";
import { STORIES } from "./helpers.ts";

test("message kinds and the protocol version are pinned", () => {
  assert.equal(PROTOCOL_VERSION, 3);
  assert.deepEqual(
    { ...MsgKind },
    { HELLO: 1, CHALLENGE: 2, AUTH: 3, WELCOME: 4, REFUSE: 5, JOIN: 8, ASSIGN: 9, READY: 10, STATS_REQ: 11, STATS: 12, PING: 13, PONG: 14, BYE: 15, PROBE: 16, PROBED: 17, LEAVE: 18, FAULT: 19, FORWARD: 32, RESULT: 33, FREE: 34, ERROR: 35, SEQ_CONFIG: 36, TOKENS: 37 },
  );
  assert.throws(() => readHeader(Uint8Array.of(99, 0, 0, 0, 0, 0, 0, 0)), ProtocolError);
});

test("FORWARD / RESULT / FREE round-trip; the codec is stated in the frame", () => {
  const w = 8;
  const rows = [Float32Array.from({ length: 3 * w }, (_, i) => i - 7.5), Float32Array.from({ length: w }, (_, i) => i * 0.25)];
  for (const codec of [Codec.F32, Codec.F16, Codec.BF16, Codec.INT8]) {
    const f = encodeForward(42, codec, [{ seq: 5, nTokens: 3, logits: false }, { seq: 9, nTokens: 1, logits: true }], rows, w);
    assert.equal(f[1], codec);
    assert.equal(f.length, 8 + 8 + 24 + 4 * encodedRowBytes(codec, w));
    const d = decodeForward(f);
    assert.equal(d.step, 42);
    assert.deepEqual(d.entries, [{ seq: 5, nTokens: 3, logits: false }, { seq: 9, nTokens: 1, logits: true }]);
    const tol = codec === Codec.F32 ? 0 : codec === Codec.INT8 ? 0.07 : 0.04;
    for (let r = 0; r < 2; r++) for (let i = 0; i < rows[r].length; i++) assert.ok(Math.abs(d.rows[r][i] - rows[r][i]) <= tol * Math.max(1, Math.abs(rows[r][i])), `codec ${codec}`);
  }
  const res = decodeResult(encodeResult(7, [9], [Float32Array.of(1, 2, 3)], 3));
  assert.deepEqual(res, { step: 7, seqs: [9], rows: [Float32Array.of(1, 2, 3)] });
  assert.deepEqual(decodeFree(encodeFree([1, 2, 300])), [1, 2, 300]);
  assert.throws(() => decodeForward(encodeForward(1, Codec.F32, [{ seq: 1, nTokens: 1, logits: true }], [new Float32Array(8)], 8).subarray(0, 30)), ProtocolError);
});

test("TOKENS carries token ids (logprobs only when asked); FORWARD marks entries to sample", () => {
  const entries = [
    { seq: 3, token: 17 },
    { seq: 4, token: 2, logprob: -0.125, top: [{ id: 2, logprob: -0.125 }, { id: 9, logprob: -2.0000000001 }] },
    { seq: 5, token: 0, logprob: -3.5, top: [] },
  ];
  const f = encodeTokens(11, entries);
  assert.equal(f[0], MsgKind.TOKENS);
  // 8 header + 4 count + 3 × 20 + 2 × 12: a decode token for a sequence without logprobs costs 20 bytes, not n_vocab × 4.
  assert.equal(f.length, 8 + 4 + 60 + 24);
  assert.deepEqual(decodeTokens(f), { step: 11, entries });
  assert.throws(() => decodeTokens(f.subarray(0, f.length - 1)), ProtocolError);
  const fwd = encodeForward(2, Codec.F32, [{ seq: 1, nTokens: 2, logits: false }, { seq: 2, nTokens: 1, logits: true, sample: true }, { seq: 3, nTokens: 1, logits: true }], [new Float32Array(4), new Float32Array(2), new Float32Array(2)], 2);
  assert.deepEqual(decodeForward(fwd).entries, [{ seq: 1, nTokens: 2, logits: false }, { seq: 2, nTokens: 1, logits: true, sample: true }, { seq: 3, nTokens: 1, logits: true }]);
});

test("codecs: bytes per value, and non-finite values are rejected on both ends", () => {
  assert.deepEqual([Codec.F32, Codec.F16, Codec.BF16, Codec.INT8].map((c) => encodedRowBytes(c, 64)), [256, 128, 128, 68]);
  for (const c of [Codec.F32, Codec.F16, Codec.BF16, Codec.INT8]) {
    assert.throws(() => roundTrip(c, Float32Array.of(1, NaN), 2), CodecError);
    assert.throws(() => roundTrip(c, Float32Array.of(Infinity, 1), 2), CodecError);
  }
  assert.throws(() => roundTrip(Codec.F16, Float32Array.of(1e6, 1), 2), CodecError); // overflows f16 → inf
  assert.deepEqual(roundTrip(Codec.F16, Float32Array.of(1, -2, 0.5, 65504), 4), Float32Array.of(1, -2, 0.5, 65504));
  const f = encodeForward(1, Codec.F32, [{ seq: 1, nTokens: 1, logits: true }], [Float32Array.of(1, 2)], 2);
  new DataView(f.buffer).setFloat32(f.length - 4, NaN, true);
  assert.throws(() => decodeForward(f), CodecError);
});

test("placement through the planner: the host stays stage 0, faster peers get more layers, memory respected", () => {
  const g = openGGUF(STORIES);
  const model = profileFromGGUF(g);
  g.close();
  const gb = 2 ** 30;
  const peers: PeerProfile[] = [
    { id: "host", memBytes: 8 * gb, decodeSecPerLayer: 2e-3 },
    { id: "fast", memBytes: 8 * gb, decodeSecPerLayer: 0.5e-3 },
    { id: "slow", memBytes: 8 * gb, decodeSecPerLayer: 1e-3 },
  ];
  const links = [["host", "fast"], ["fast", "host"], ["host", "slow"], ["slow", "host"], ["fast", "slow"], ["slow", "fast"]].map(([from, to]) => ({ from, to, rttSec: 1e-4, bytesPerSec: 1e8 }));
  const p = plan(model, { peers, links }, { stages: 3, firstPeer: "host", keepGroups: false, maxHopSec: Infinity, codec: "f32", batch: 8, contextTokens: 256 });
  assert.equal(p.placement[0].peer, "host");
  assert.equal(p.placement.length, 3);
  assert.equal(p.placement[p.placement.length - 1].end, model.nLayer);
  const layers = new Map(p.placement.map((s) => [s.peer, s.end - s.start]));
  assert.ok(layers.get("fast")! >= layers.get("slow")! && layers.get("slow")! >= layers.get("host")!, JSON.stringify(p.placement));
  // Without the constraint the planner may start the ring elsewhere; with it, never.
  for (const first of ["fast", "slow"]) assert.equal(plan(model, { peers, links }, { stages: 3, firstPeer: first, keepGroups: false, maxHopSec: Infinity }).placement[0].peer, first);
  assert.throws(() => plan(model, { peers, links }, { firstPeer: "nobody" }), /not in the cluster/);
});

test("invite tokens round-trip; the fingerprint covers the header and tensor index", () => {
  const inv = { v: 1 as const, addrs: ["/ip4/127.0.0.1/tcp/1/p2p/x"], secret: "ab".repeat(32), fp: modelFingerprint(STORIES), model: "stories260K.gguf" };
  assert.deepEqual(decodeInvite(encodeInvite(inv)), inv);
  assert.match(inv.fp, /^[0-9a-f]{64}$/);
  assert.throws(() => decodeInvite("hello"), /not an llmesh invite/);
});

async function linkPair(): Promise<[StageLink, StageLink, () => Promise<void>]> {
  const a = new MemoryTransport();
  const b = new MemoryTransport();
  let got!: (l: StageLink) => void;
  const p = new Promise<StageLink>((r) => (got = r));
  await b.handle("/t", got);
  const d = await a.dial(b.addresses(), "/t");
  return [d, await p, async () => { await a.stop(); await b.stop(); }];
}

test("handshake: mutual HMAC proof, version and fingerprint checks", async () => {
  const secret = new Uint8Array(32).fill(7);
  const o = { secret, fingerprint: "fp", peer: "p" };
  {
    const [d, l, stop] = await linkPair();
    const [, hello] = await Promise.all([dialHandshake(d, "join", o), acceptHandshake(l, o)]);
    assert.equal(hello.purpose, "join");
    await stop();
  }
  {
    const [d, l, stop] = await linkPair();
    const r = await Promise.allSettled([dialHandshake(d, "join", { ...o, secret: new Uint8Array(32) }), acceptHandshake(l, o)]);
    assert.ok(r[0].status === "rejected" && r[0].reason instanceof RefusedError && /could not prove the mesh secret/.test(r[0].reason.message));
    await stop();
  }
  {
    const [d, l, stop] = await linkPair();
    const r = await Promise.allSettled([dialHandshake(d, "join", { ...o, version: PROTOCOL_VERSION + 1 }), acceptHandshake(l, o)]);
    assert.ok(r[0].status === "rejected" && new RegExp(`speaks llmesh stage protocol v${PROTOCOL_VERSION}, the other speaks v${PROTOCOL_VERSION + 1}`).test((r[0].reason as Error).message));
    await stop();
  }
  {
    const [d, l, stop] = await linkPair();
    const r = await Promise.allSettled([dialHandshake(d, "join", { ...o, fingerprint: "other" }), acceptHandshake(l, o)]);
    assert.ok(r[0].status === "rejected" && /model mismatch/.test((r[0].reason as Error).message));
    await stop();
  }
});

/** Greedy tokens of a 3-stage split with activations round-tripped through a codec between stages. */
function greedySplit(codec: Codec | null, n = 32): number[] {
  const g = openGGUF(STORIES);
  const ranges = codec === null ? [{ start: 0, end: 5 }] : [{ start: 0, end: 2 }, { start: 2, end: 4 }, { start: 4, end: 5 }];
  const engines = ranges.map((range) => Engine.load(g, { range, maxContext: 128 }));
  const seqs = engines.map((e) => e.createSequence());
  let tokens = [1, 403, 407, 261, 378];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let x = engines[0].forward([{ seq: seqs[0], tokens }])[0];
    for (let s = 1; s < engines.length; s++) x = engines[s].forward([{ seq: seqs[s], hidden: roundTrip(codec!, x, engines[s].config.nEmbd) }])[0];
    const t = argmax(x);
    out.push(t);
    tokens = [t];
  }
  g.close();
  return out;
}

test("codec parity on stories260K: greedy tokens through a 3-way split (f32 exact; lossy codecs reported)", () => {
  const ref = greedySplit(null);
  assert.deepEqual(greedySplit(Codec.F32), ref);
  // f16 is what a mesh could default to only if this holds; f32 stays the default.
  assert.deepEqual(greedySplit(Codec.F16), ref);
  assert.deepEqual(greedySplit(Codec.BF16).length, ref.length);
  assert.deepEqual(greedySplit(Codec.INT8).length, ref.length);
});

test("a stage reads only its own layers' tensors", () => {
  const whole = openGGUF(STORIES);
  Engine.load(whole, { maxContext: 16 });
  const part = openGGUF(STORIES);
  Engine.load(part, { range: { start: 2, end: 4 }, maxContext: 16 });
  let layer2 = 0;
  for (const [name, t] of part.tensors) if (name.startsWith("blk.2.") || name.startsWith("blk.3.")) layer2 += t.nBytes;
  assert.equal(part.bytesRead, layer2, "a middle stage reads blk.2.* and blk.3.* only");
  assert.ok(part.bytesRead < whole.bytesRead / 2);
  whole.close();
  part.close();
});

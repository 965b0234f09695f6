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
import { proportionalSplit } from "../../src/mesh/placement.ts";
import {
  decodeForward, decodeFree, decodeResult, encodeForward, encodeFree, encodeResult, MsgKind, PROTOCOL_VERSION, ProtocolError, readHeader,
} from "../../src/mesh/stage-protocol.ts";
import type { StageLink } from "../../src/mesh/transport.ts";
import { STORIES } from "./helpers.ts";

test("message kinds and the protocol version are pinned", () => {
  assert.equal(PROTOCOL_VERSION, 1);
  assert.deepEqual(
    { ...MsgKind },
    { HELLO: 1, CHALLENGE: 2, AUTH: 3, WELCOME: 4, REFUSE: 5, JOIN: 8, ASSIGN: 9, READY: 10, STATS_REQ: 11, STATS: 12, PING: 13, PONG: 14, BYE: 15, FORWARD: 32, RESULT: 33, FREE: 34, ERROR: 35 },
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

test("placement: proportional to capacity, each stage ≥ 1 layer, within memory", () => {
  const gb = 2 ** 30;
  assert.deepEqual(proportionalSplit(12, [{ msPerLayer: 1, freeMemoryBytes: 8 * gb }, { msPerLayer: 1, freeMemoryBytes: 8 * gb }, { msPerLayer: 2, freeMemoryBytes: 8 * gb }], 1e6), [5, 5, 2]);
  // The fast peer can hold only 2 layers (0.8 × 2.5 MB / 1 MB).
  assert.deepEqual(proportionalSplit(6, [{ msPerLayer: 0.1, freeMemoryBytes: 2.5e6 }, { msPerLayer: 1, freeMemoryBytes: 8 * gb }], 1e6), [2, 4]);
  assert.throws(() => proportionalSplit(2, [{ msPerLayer: 1, freeMemoryBytes: gb }, { msPerLayer: 1, freeMemoryBytes: gb }, { msPerLayer: 1, freeMemoryBytes: gb }], 1), /at least one layer/);
  assert.throws(() => proportionalSplit(10, [{ msPerLayer: 1, freeMemoryBytes: 2e6 }], 1e6), /free memory/);
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
    const r = await Promise.allSettled([dialHandshake(d, "join", { ...o, version: 2 }), acceptHandshake(l, o)]);
    assert.ok(r[0].status === "rejected" && /speaks llmesh stage protocol v1, the other speaks v2/.test((r[0].reason as Error).message));
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

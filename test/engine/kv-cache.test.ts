// Per-sequence KV caches: growth, truncation (speculative decoding / replay) and freeing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KVCache } from "../../src/engine/kv-cache.ts";
import { bitEqual, load, STORIES } from "./helpers.ts";

const TOKENS = Array.from({ length: 150 }, (_, i) => 3 + ((i * 37) % 500));

test("prefill in one call equals feeding the same tokens one by one, across cache growth", () => {
  const e = load(STORIES);
  const a = e.createSequence();
  const b = e.createSequence();
  const [all] = e.forward([{ seq: a, tokens: TOKENS, logits: "all" }]);
  for (let i = 0; i < TOKENS.length; i++) {
    const [l] = e.forward([{ seq: b, tokens: [TOKENS[i]] }]);
    assert.ok(bitEqual(l, all.subarray(i * 512, (i + 1) * 512)), `position ${i}`);
  }
  assert.equal(e.sequenceLength(a), TOKENS.length);
});

test("truncate() drops positions so that they can be replaced (speculative decoding)", () => {
  const e = load(STORIES);
  const s = e.createSequence();
  const [ref] = e.forward([{ seq: s, tokens: TOKENS.slice(0, 12), logits: "all" }]);
  e.truncate(s, 7);
  assert.equal(e.sequenceLength(s), 7);
  // Replaying the dropped tokens reproduces their logits exactly.
  const [again] = e.forward([{ seq: s, tokens: TOKENS.slice(7, 12), logits: "all" }]);
  assert.ok(bitEqual(again, ref.subarray(7 * 512)));
  // Other tokens after a truncation = a fresh sequence with that history.
  e.truncate(s, 3);
  const [x] = e.forward([{ seq: s, tokens: [100, 200] }]);
  const fresh = e.createSequence();
  const [y] = e.forward([{ seq: fresh, tokens: [...TOKENS.slice(0, 3), 100, 200] }]);
  assert.ok(bitEqual(x, y));
  assert.throws(() => e.truncate(s, 6), /cannot truncate a sequence of length 5 to 6/);
});

test("sequences are independent and freed sequences are gone", () => {
  const e = load(STORIES);
  const a = e.createSequence();
  const b = e.createSequence();
  assert.notEqual(a, b);
  e.forward([{ seq: a, tokens: [1, 2, 3] }]);
  assert.equal(e.sequenceLength(b), 0);
  e.freeSequence(a);
  assert.throws(() => e.sequenceLength(a), /unknown sequence/);
  assert.deepEqual(e.sequenceIds, [b]);
});

test("the cache grows by doubling up to maxContext and rounds to fp16 for the f16 type", () => {
  const kv = new KVCache(2, 4, 4, 100, "f16", 8);
  assert.equal(kv.capacity, 8);
  kv.reserve(9);
  assert.equal(kv.capacity, 16);
  kv.reserve(90);
  assert.equal(kv.capacity, 100);
  assert.throws(() => kv.reserve(101), /context overflow/);
  const k = Float32Array.of(1 / 3, 70000, -1e-8, 1);
  kv.write(1, 5, 1, k, k, 0);
  assert.deepEqual(Array.from(kv.k[1].subarray(20, 24)), [Math.f16round(1 / 3), Infinity, -0, 1]);
  const kv32 = new KVCache(1, 4, 4, 10, "f32");
  kv32.write(0, 0, 1, k, k, 0);
  assert.deepEqual(Array.from(kv32.v[0].subarray(0, 4)), Array.from(k));
});

test("heads are stored head-major (each head's positions contiguous) and keep their values as the cache grows", () => {
  // 3 heads of 4 (keys) and of 2 (values): row t of the source holds head h's key at [4h, 4h + 4)
  const kv = new KVCache(1, 12, 6, 64, "f32", 4, 3);
  const key = (t: number, h: number, i: number) => 100 * t + 10 * h + i;
  const rows = (n: number, t0: number, dim: number, hd: number) => Float32Array.from({ length: n * dim }, (_, e) => key(t0 + Math.floor(e / dim), Math.floor((e % dim) / hd), e % hd));
  kv.write(0, 0, 3, rows(3, 0, 12, 4), rows(3, 0, 6, 2), 0);
  kv.reserve(20); // grows from 4 to 32 positions: every head's block moves
  assert.equal(kv.capacity, 32);
  kv.write(0, 3, 10, rows(10, 3, 12, 4), rows(10, 3, 6, 2), 0);
  assert.equal(kv.kHeadStride, 32 * 4);
  for (let t = 0; t < 13; t++) {
    for (let h = 0; h < 3; h++) {
      assert.equal(kv.kOffset(t, h), h * 32 * 4 + t * 4);
      assert.deepEqual(Array.from(kv.k[0].subarray(kv.kOffset(t, h), kv.kOffset(t, h) + 4)), [0, 1, 2, 3].map((i) => key(t, h, i)));
      assert.deepEqual(Array.from(kv.v[0].subarray(kv.vOffset(t, h), kv.vOffset(t, h) + 2)), [0, 1].map((i) => key(t, h, i)));
    }
  }
  assert.throws(() => new KVCache(1, 12, 6, 64, "f32", 4, 5), /5 heads do not divide/);
});

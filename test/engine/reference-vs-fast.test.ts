// The fast path against the readable reference: same greedy tokens and logits within a tight
// tolerance on real and synthetic models of every supported architecture and several formats.
// (They use the same float operations in the same order, so in practice they are bit-identical;
// the test allows 1e-5 so that future kernels, e.g. WASM SIMD with another summation order, fit.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine } from "../../src/engine/engine.ts";
import { GGMLType } from "../../src/gguf/types.ts";
import { greedyRun, load, maxAbsDiff, STORIES, synthGGUF, TINY_RANDOM } from "./helpers.ts";

const TOL = 1e-5;

function compare(fast: Engine, ref: Engine, prompt: number[], steps: number): void {
  const a = greedyRun(fast, prompt, steps);
  const b = greedyRun(ref, prompt, steps);
  assert.deepEqual(a.tokens, b.tokens);
  a.logits.forEach((l, i) => {
    const d = maxAbsDiff(l, b.logits[i]);
    assert.ok(d <= TOL, `step ${i}: max |Δlogit| ${d}`);
  });
}

test("stories260K: fast == reference", () => {
  compare(load(STORIES), load(STORIES, { path: "reference" }), [1, 403, 407, 261], 12);
});

test("llama-2-tiny-random (F16, 32000 vocab): fast == reference", () => {
  compare(load(TINY_RANDOM), load(TINY_RANDOM, { path: "reference" }), [1, 450, 4996, 17354], 4);
});

test("exact-f32 numerics (f32 KV cache, unrounded matmul inputs): fast == reference", () => {
  const opts = { kvCacheType: "f32", matmulInput: "f32" } as const;
  compare(load(STORIES, opts), load(STORIES, { ...opts, path: "reference" }), [1, 403], 8);
});

const CASES: Array<[string, keyof typeof GGMLType]> = [
  ["tiny-llama3", "Q4_0"], ["tiny-llama3", "BF16"],
  ["tiny-qwen2", "Q4_K"], ["tiny-qwen2", "Q5_1"], ["tiny-qwen2", "F16"],
  ["tiny-qwen3", "Q6_K"], ["tiny-qwen3", "Q8_0"], ["tiny-qwen3", "Q5_K"], ["tiny-qwen3", "Q4_1"], ["tiny-qwen3", "Q5_0"],
];
for (const [shape, type] of CASES) {
  test(`${shape} ${type}: fast == reference`, () => {
    compare(Engine.load(synthGGUF(shape, GGMLType[type])), Engine.load(synthGGUF(shape, GGMLType[type]), { path: "reference" }), [1, 5, 9, 300], 3);
  });
}

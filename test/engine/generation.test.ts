// End-to-end behaviour on real model files: the trained stories260K model must produce the exact
// greedy continuation llama.cpp produces, and logits must match llama.cpp's (fixture recorded with
// node-llama-cpp, see fixtures/llamacpp-logits.json).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { generate } from "../../src/engine/generate.ts";
import { greedyRun, load, maxAbsDiff, ROOT, STORIES } from "./helpers.ts";

const EXPECTED = "403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385"
  .split(" ").map(Number);

for (const path of ["fast", "reference"] as const) {
  test(`stories260K greedy from [BOS] gives llama.cpp's 32 tokens (${path} path)`, () => {
    const e = load(STORIES, { path });
    const r = generate(e, [1], { maxTokens: 32 });
    assert.deepEqual(r.tokens, EXPECTED);
    assert.equal(r.finishReason, "length");
    assert.deepEqual(e.sequenceIds, [], "generate() frees the sequence it created");
  });
}

test("generate() stops on a stop id and reports it", () => {
  const e = load(STORIES);
  const r = generate(e, [1], { maxTokens: 32, stopIds: [EXPECTED[5]] });
  assert.deepEqual(r.tokens, EXPECTED.slice(0, 6));
  assert.equal(r.finishReason, "stop");
  const seen: number[] = [];
  const r2 = generate(e, [1], { maxTokens: 32, onToken: (t) => (seen.push(t), seen.length < 3) });
  assert.deepEqual(r2.tokens, EXPECTED.slice(0, 3));
  assert.equal(r2.finishReason, "aborted");
});

interface Fixture {
  stories260K: { model: string; prompt: number[]; gen: number[]; logits: number[][] };
  tinyRandom: { model: string; prompt: number[]; gen: number[]; firstLogits: number; logits: number[][] };
}
const fixture = JSON.parse(readFileSync(new URL("./fixtures/llamacpp-logits.json", import.meta.url), "utf8")) as Fixture;

for (const path of ["fast", "reference"] as const) {
  test(`stories260K logits match llama.cpp's (${path} path)`, () => {
    const f = fixture.stories260K;
    const { tokens, logits } = greedyRun(load(ROOT + f.model, { path }), f.prompt, f.logits.length);
    assert.deepEqual(tokens, f.gen);
    // Only float summation order differs from llama.cpp here: a few ulps.
    for (let i = 0; i < f.logits.length; i++) assert.ok(maxAbsDiff(logits[i], f.logits[i]) < 2e-5, `step ${i}: ${maxAbsDiff(logits[i], f.logits[i])}`);
  });

  test(`llama-2-tiny-random (F16) logits match llama.cpp's over prefill + 8 decode steps (${path} path)`, () => {
    const f = fixture.tinyRandom;
    const { tokens, logits } = greedyRun(load(ROOT + f.model, { path }), f.prompt, f.logits.length);
    assert.deepEqual(tokens, f.gen);
    for (let i = 0; i < f.logits.length; i++) {
      const d = maxAbsDiff(logits[i].subarray(0, f.firstLogits), f.logits[i]);
      assert.ok(d < 1e-6, `step ${i}: ${d}`);
    }
  });
}

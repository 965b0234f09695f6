// Continuous batching: several sequences in one forward() call give the same logits as each
// sequence run alone. They are bit-identical, not just close: every kernel computes each token's
// row with the same operations in the same order whatever else is in the batch (matmul dot
// products are per (token, row) and sequential; attention is per sequence; nothing is reduced
// across tokens).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Engine } from "../../src/engine/engine.ts";
import { GGMLType } from "../../src/gguf/types.ts";
import { Engine as EngineClass } from "../../src/engine/engine.ts";
import { bitEqual, load, STORIES, synthGGUF } from "./helpers.ts";

const PROMPTS = [[1], [1, 403, 407, 261, 378], [1, 300, 301, 302, 303, 304, 305, 306, 307]];

function alone(e: Engine, prompt: number[], next: number): { prefill: Float32Array; decode: Float32Array } {
  const seq = e.createSequence();
  const [prefill] = e.forward([{ seq, tokens: prompt, logits: "all" }]);
  const [decode] = e.forward([{ seq, tokens: [next] }]);
  e.freeSequence(seq);
  return { prefill, decode };
}

function checkBatching(e: Engine): void {
  const nVocab = e.config.nVocab;
  const ref = PROMPTS.map((p, i) => alone(e, p, 10 + i));

  // One call prefills all three sequences (different lengths), then one call decodes all three.
  const seqs = PROMPTS.map(() => e.createSequence());
  const pre = e.forward(PROMPTS.map((p, i) => ({ seq: seqs[i], tokens: p, logits: "all" as const })));
  pre.forEach((l, i) => {
    assert.equal(l.length, PROMPTS[i].length * nVocab);
    assert.ok(bitEqual(l, ref[i].prefill), `prefill of sequence ${i}`);
  });
  const dec = e.forward(seqs.map((seq, i) => ({ seq, tokens: [10 + i] })));
  dec.forEach((l, i) => assert.ok(bitEqual(l, ref[i].decode), `decode of sequence ${i}`));

  // Mixed step: a new sequence's prefill shares the call with other sequences' decode steps.
  const late = e.createSequence();
  const [d0, p3, d2] = e.forward([
    { seq: seqs[0], tokens: [20] },
    { seq: late, tokens: PROMPTS[1], logits: "last" },
    { seq: seqs[2], tokens: [22], logits: "none" },
  ]);
  assert.ok(bitEqual(p3, ref[1].prefill.subarray((PROMPTS[1].length - 1) * nVocab)), "prefill batched with decodes");
  assert.equal(d2.length, 0);
  const solo = e.createSequence();
  e.forward([{ seq: solo, tokens: [...PROMPTS[0], 10, 20] }]);
  const check = e.createSequence();
  const [want] = e.forward([{ seq: check, tokens: [...PROMPTS[0], 10, 20] }]);
  assert.ok(bitEqual(d0, want), "decode batched with a prefill = the same tokens fed as one prefill");
  for (const s of [...seqs, late, solo, check]) e.freeSequence(s);
}

for (const path of ["fast", "reference"] as const) {
  test(`stories260K: batched sequences are bit-identical to separate runs (${path})`, () => {
    checkBatching(load(STORIES, { path }));
  });
}

test("tiny-qwen3 Q4_K: batched sequences are bit-identical to separate runs", () => {
  checkBatching(EngineClass.load(synthGGUF("tiny-qwen3", GGMLType.Q4_K)));
});

test("forward() rejects malformed batches with clear errors", () => {
  const e = load(STORIES, { maxContext: 16 });
  const s = e.createSequence();
  assert.throws(() => e.forward([{ seq: s, tokens: [1] }, { seq: s, tokens: [2] }]), /appears twice/);
  assert.throws(() => e.forward([{ seq: 999, tokens: [1] }]), /unknown sequence 999/);
  assert.throws(() => e.forward([{ seq: s, tokens: [512] }]), /outside the vocabulary/);
  assert.throws(() => e.forward([{ seq: s, hidden: new Float32Array(64) }]), /first stage takes tokens/);
  assert.throws(() => e.forward([{ seq: s, tokens: new Array(17).fill(1) }]), /context overflow/);
  assert.equal(e.sequenceLength(s), 0, "a rejected batch leaves the sequence untouched");
  const tail = load(STORIES, { range: { start: 2, end: 5 } });
  const t = tail.createSequence();
  assert.throws(() => tail.forward([{ seq: t, tokens: [1] }]), /takes hidden states/);
  assert.throws(() => tail.forward([{ seq: t, hidden: new Float32Array(65) }]), /multiple of n_embd 64/);
});

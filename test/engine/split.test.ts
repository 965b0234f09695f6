// Pipeline split equivalence: running layers [0, k) on one engine and [k, n) on another, passing
// hidden states between them, gives bit-identical logits to one engine running [0, n), for every
// split point, through a multi-token prefill and several decode steps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine, type EngineOptions } from "../../src/engine/engine.ts";
import { openGGUF, type GGUFFile } from "../../src/gguf/reader.ts";
import { GGMLType } from "../../src/gguf/types.ts";
import { argmax } from "../../src/engine/sampling.ts";
import { bitEqual, STORIES, synthGGUF } from "./helpers.ts";

const PROMPT = [1, 403, 407, 261, 378, 432, 383];
const DECODE_STEPS = 5;

/** Runs the prompt then greedy decode through a chain of stages; returns each step's logits. */
function runChain(stages: Engine[], steps: number): Float32Array[] {
  const seqs = stages.map((e) => e.createSequence());
  const step = (tokens: number[]): Float32Array => {
    let hidden: Float32Array | undefined;
    for (let s = 0; s < stages.length; s++) {
      const item = s === 0 ? { seq: seqs[s], tokens } : { seq: seqs[s], hidden: hidden! };
      [hidden] = stages[s].forward([item]);
      if (s < stages.length - 1) assert.equal(hidden.length, tokens.length * stages[s].config.nEmbd, "a middle stage returns (n_tokens, n_embd)");
    }
    return hidden!;
  };
  const out: Float32Array[] = [step(PROMPT)];
  for (let i = 0; i < steps; i++) out.push(step([argmax(out[out.length - 1])]));
  stages.forEach((e, s) => assert.equal(e.sequenceLength(seqs[s]), PROMPT.length + steps));
  return out;
}

function checkAllSplits(open: () => GGUFFile, opts: EngineOptions): void {
  const whole = Engine.load(open(), opts);
  const n = whole.config.nLayer;
  const expected = runChain([whole], DECODE_STEPS);
  for (let k = 1; k < n; k++) {
    const first = Engine.load(open(), { ...opts, range: { start: 0, end: k } });
    const second = Engine.load(open(), { ...opts, range: { start: k, end: n } });
    assert.ok(first.isFirst && !first.isLast && !second.isFirst && second.isLast);
    const got = runChain([first, second], DECODE_STEPS);
    got.forEach((l, i) => assert.ok(bitEqual(l, expected[i]), `split at ${k}, step ${i}: logits differ`));
  }
  // Three stages, one layer each at the ends.
  if (n >= 3) {
    const stages = [[0, 1], [1, n - 1], [n - 1, n]].map(([start, end]) => Engine.load(open(), { ...opts, range: { start, end } }));
    runChain(stages, DECODE_STEPS).forEach((l, i) => assert.ok(bitEqual(l, expected[i]), `3 stages, step ${i}`));
  }
}

for (const path of ["fast", "reference"] as const) {
  test(`stories260K: every 2-stage split (and a 3-stage one) is bit-identical to the whole model (${path})`, () => {
    checkAllSplits(() => openGGUF(STORIES), { path });
  });
}

for (const [shape, type] of [["tiny-qwen2", "Q4_K"], ["tiny-qwen3", "Q8_0"], ["tiny-llama3", "Q6_K"]] as const) {
  test(`${shape} ${type}: every split is bit-identical to the whole model (fast)`, () => {
    checkAllSplits(() => synthGGUF(shape, GGMLType[type]), {});
  });
}

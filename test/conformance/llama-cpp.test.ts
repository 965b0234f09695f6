// Conformance against llama.cpp (node-llama-cpp, same GGUF files): teacher-forced next-token
// distributions and argmax over 64 positions, and 64 greedy tokens, for the real trained stories260K, the
// F16 llama-2-tiny-random, and synthetic models of every architecture in F32, F16, Q8_0, Q4_0 and Q4_K
// (with stories260K's real 512-token vocabulary, so that each case takes a second, not ten).
//
// Tolerances. llama.cpp's CPU backend rounds activations before each matmul (f16 for F16 weights, Q8_0/Q8_K
// for quantized ones), keeps the KV cache in f16, and its flash-attention kernel accumulates in f16. The
// engine reproduces those roundings, but not ggml's SIMD summation order, so after the first 1-ulp
// difference flips a quantization rounding the results drift apart by the size of that rounding. Random
// quantized models amplify this: llama.cpp differs from ITSELF (flash attention on vs off, same file) by up
// to 0.10-0.15 in probability on these models. So per weight type we state:
//   - maxProbDiff: the largest |p_ours - p_llama.cpp| allowed over the vocabulary at any position; the test
//     also measures llama.cpp's own on/off difference and accepts anything within that;
//   - nearTie: positions where llama.cpp's top two probabilities differ by less than this are exempt from
//     the argmax check (their order is decided by rounding noise, not by the model), as are positions where
//     llama.cpp's two attention paths disagree with each other.
// Greedy generation: 64 tokens identical to llama.cpp's. For quantized random models that holds up to the
// first step where llama.cpp's own choice is a near-tie: past it, llama.cpp with flash attention off
// diverges from llama.cpp with it on about as often as we do (measured: 12 vs 10 of 24 models diverge
// within 64 tokens), so we require identity up to that step and report how far the sequences stay equal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../../src/gguf/reader.ts";
import { GGMLType, type GGMLTypeName } from "../../src/gguf/types.ts";
import { Engine } from "../../src/engine/engine.ts";
import { getShape } from "../../src/engine/synth/shapes.ts";
import { writeSynthModel } from "../../src/engine/synth/synth.ts";
import { loadVocabMetadata } from "../../src/engine/synth/load-vocab.ts";
import { loadReferenceModel, referenceGreedy, referenceTeacherForced, type ReferenceStep } from "../helpers/llama-cpp.ts";

const TOLERANCE: Record<string, { maxProbDiff: number; nearTie: number }> = {
  F32: { maxProbDiff: 1e-2, nearTie: 0.01 },
  F16: { maxProbDiff: 2e-2, nearTie: 0.04 },
  Q8_0: { maxProbDiff: 0.1, nearTie: 0.1 },
  Q4_0: { maxProbDiff: 0.1, nearTie: 0.1 },
  Q4_K: { maxProbDiff: 0.1, nearTie: 0.1 },
};
const N = 64;

function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Our logits at every position of prompt+forced, in one prefill (teacher forcing). */
function ourLogits(path: string, tokens: number[]): Float32Array[] {
  const f = openGGUF(path);
  try {
    const engine = Engine.load(f, { maxContext: tokens.length + 8 });
    const seq = engine.createSequence();
    const [all] = engine.forward([{ seq, tokens, logits: "all" }]);
    const nVocab = engine.config.nVocab;
    return Array.from({ length: tokens.length }, (_, i) => all.subarray(i * nVocab, (i + 1) * nVocab));
  } finally {
    f.close();
  }
}

function ourGreedy(path: string, prompt: number[], n: number): number[] {
  const f = openGGUF(path);
  try {
    const engine = Engine.load(f, { maxContext: prompt.length + n + 8 });
    const seq = engine.createSequence();
    let [logits] = engine.forward([{ seq, tokens: prompt, logits: "last" }]);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = argmax(logits);
      out.push(t);
      [logits] = engine.forward([{ seq, tokens: [t], logits: "last" }]);
    }
    return out;
  } finally {
    f.close();
  }
}

function randomTokens(n: number, nVocab: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % (nVocab - 3));
  });
}

/** The gap between the two most probable tokens. */
function topMargin(probs: Map<number, number>): number {
  const sorted = [...probs.values()].sort((a, b) => b - a);
  return sorted[0] - (sorted[1] ?? 0);
}

function maxDiff(a: ReferenceStep[], b: ReferenceStep[]): number {
  let w = 0;
  for (let i = 0; i < a.length; i++) for (const [id, q] of a[i].probs) w = Math.max(w, Math.abs(q - (b[i].probs.get(id) ?? 0)));
  return w;
}

async function conform(path: string, typeName: string, forced: number[], opts: { requireClearPositions?: boolean } = {}): Promise<string> {
  const tol = TOLERANCE[typeName];
  const ref = await loadReferenceModel(path);
  try {
    const prompt = [1];
    const steps = await referenceTeacherForced(ref, prompt, forced);
    const selfSteps = await referenceTeacherForced(ref, prompt, forced, 1, false);
    const selfNoise = maxDiff(steps, selfSteps);
    const ours = ourLogits(path, [...prompt, ...forced.slice(0, -1)]);
    let worst = 0;
    let checked = 0;
    for (let i = 0; i < steps.length; i++) {
      const p = softmax(ours[i]);
      const refProbs = steps[i].probs;
      for (const [id, q] of refProbs) worst = Math.max(worst, Math.abs(p[id] - q));
      const margin = topMargin(refProbs);
      // Exempt: near-ties, and positions where llama.cpp's own two attention paths disagree or
      // where its other path (flash attention off) sees a near-tie.
      if (margin >= tol.nearTie && topMargin(selfSteps[i].probs) >= tol.nearTie && selfSteps[i].argmax === steps[i].argmax) {
        checked++;
        assert.equal(argmax(ours[i]), steps[i].argmax, `${path} position ${i}: argmax differs from llama.cpp (margin ${margin.toFixed(3)})`);
      }
    }
    const allowed = Math.max(tol.maxProbDiff, selfNoise);
    assert.ok(worst <= allowed, `${path}: max |p - p_llama.cpp| = ${worst.toExponential(2)} > ${allowed.toExponential(2)} (llama.cpp vs itself: ${selfNoise.toExponential(2)})`);
    if (opts.requireClearPositions !== false) {
      assert.ok(checked >= steps.length / 2, `${path}: only ${checked}/${steps.length} positions were not near-ties; the model is too flat to compare`);
    }
    const refGreedy = await referenceGreedy(ref, prompt, N);
    const greedy = ourGreedy(path, prompt, N);
    // The first greedy step where llama.cpp itself is undecided (only quantized types tolerate one).
    let decisive = N;
    if (typeName !== "F32" && typeName !== "F16") {
      const onPath = await referenceTeacherForced(ref, prompt, refGreedy);
      decisive = onPath.findIndex((st) => {
        const [a, b] = [...st.probs.values()].sort((x, y) => y - x);
        return a - b < tol.nearTie;
      });
      if (decisive < 0) decisive = N;
    }
    let same = 0;
    while (same < N && greedy[same] === refGreedy[same]) same++;
    assert.ok(same >= decisive, `${path}: greedy tokens differ from llama.cpp at step ${same} (llama.cpp's first near-tie: step ${decisive})\nours:      ${greedy.join(" ")}\nllama.cpp: ${refGreedy.join(" ")}`);
    return `max |p - p_llama.cpp| ${worst.toExponential(2)} (llama.cpp flash-attn on vs off: ${selfNoise.toExponential(2)}), argmax checked at ${checked}/${steps.length}, greedy identical for ${same}/${N} tokens${decisive < N ? ` (llama.cpp near-tie at step ${decisive})` : ""}`;
  } finally {
    await ref.dispose();
  }
}

test("stories260K (real, trained, F32) agrees with llama.cpp", async (t) => {
  const golden = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385];
  const forced = [...golden, ...randomTokens(N - golden.length, 512, 7)];
  t.diagnostic(await conform("models/stories260K.gguf", "F32", forced));
});

test("llama-2-tiny-random (F16, 32000-token vocabulary) agrees with llama.cpp", async (t) => {
  // dim 8, random: most positions are near-ties, so the distributions and greedy tokens carry the test.
  t.diagnostic(await conform("test/fixtures/models/llama-2-tiny-random.gguf", "F16", randomTokens(N, 32000, 11), { requireClearPositions: false }));
});

test("synthetic llama / llama3-rope / qwen2 / qwen3 models in F32, F16, Q8_0, Q4_0, Q4_K agree with llama.cpp", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "llmesh-conf-"));
  const vocab = loadVocabMetadata("models/stories260K.gguf");
  try {
    for (const shape of ["tiny-llama", "tiny-llama3", "tiny-qwen2", "tiny-qwen3"]) {
      for (const typeName of Object.keys(TOLERANCE)) {
        const path = join(dir, `${shape}-${typeName}.gguf`);
        writeSynthModel(path, { shape: getShape(shape), type: GGMLType[typeName as GGMLTypeName], vocab, seed: 3 });
        await t.test(`${shape} ${typeName}`, async (st) => {
          st.diagnostic(await conform(path, typeName, randomTokens(N, 512, 5)));
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

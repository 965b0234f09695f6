// The float helpers that reproduce ggml's roundings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bf16round, f16round } from "../../src/engine/float16.ts";
import { matmulInputKind, roundMatmulInput } from "../../src/engine/matmul-input.ts";
import { ropeApply, ropeCosSin } from "../../src/engine/rope.ts";
import { dequantize, quantize } from "../../src/gguf/formats/index.ts";
import { GGMLType } from "../../src/gguf/types.ts";

function randomFloats(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 2 ** 32) - 0.5) * 2 ** ((s % 40) - 20);
  });
}

test("f16round equals Math.f16round (ties to even, subnormals, overflow, signed zero)", () => {
  const xs = [...randomFloats(20000, 1), 65504, 65519.99, 65520, -65520, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, -1e-9, 0, -0, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN, Infinity];
  for (const x of xs) assert.ok(Object.is(f16round(x), Math.f16round(x)), `${x}: ${f16round(x)} vs ${Math.f16round(x)}`);
});

test("bf16round keeps the top 16 bits with round-to-nearest-even", () => {
  assert.equal(bf16round(1 + 2 ** -8), 1); // tie → even
  assert.equal(bf16round(1 + 3 * 2 ** -8), 1 + 2 ** -6); // tie → even (up)
  assert.equal(bf16round(1 + 2 ** -8 + 2 ** -20), 1 + 2 ** -7);
  assert.ok(Number.isNaN(bf16round(NaN)));
});

test("matmul inputs are rounded to the weight's ggml vec_dot type", () => {
  assert.equal(matmulInputKind(GGMLType.F32), "f32");
  assert.equal(matmulInputKind(GGMLType.F16), "f16");
  assert.equal(matmulInputKind(GGMLType.Q4_0), "q8_0");
  assert.equal(matmulInputKind(GGMLType.Q5_1), "q8_0");
  assert.equal(matmulInputKind(GGMLType.Q6_K), "q8_K");
  const x = randomFloats(512, 9).map((v) => v / 2 ** 10);
  const y = new Float32Array(512);
  // Q8_0: same values as ggml's reference quantizer (x86 rounds ties to even; no ties in random data).
  roundMatmulInput("q8_0", x, y, 512);
  assert.deepEqual(y, dequantize(GGMLType.Q8_0, quantize(GGMLType.Q8_0, x), 512));
  // Q8_K: 256-element blocks, at most 255 levels, the largest |x| maps to ±127 steps.
  roundMatmulInput("q8_K", x, y, 512);
  for (let b = 0; b < 2; b++) {
    const blk = Array.from(x.subarray(b * 256, (b + 1) * 256));
    const iMax = blk.reduce((best, v, i) => (Math.abs(v) > Math.abs(blk[best]) ? i : best), 0);
    assert.ok(Math.abs(y[b * 256 + iMax] - x[b * 256 + iMax]) <= Math.abs(x[b * 256 + iMax]) * 1e-6);
    const step = Math.abs(x[b * 256 + iMax]) / 127;
    for (let j = 0; j < 256; j++) assert.ok(Math.abs(y[b * 256 + j] - x[b * 256 + j]) <= step * 0.5 + 1e-12);
  }
  roundMatmulInput("f16", x, y, 512);
  assert.deepEqual(y, x.map(Math.f16round));
});

test("RoPE: angles iterate theta *= base^(-2/n_rot) in float; normal and neox pairings", () => {
  const p = { nRot: 4, ropeType: "normal" as const, ropeFreqBase: 10000, ropeFreqScale: 1 };
  const cs = new Float32Array(4);
  ropeCosSin(p, 3, cs);
  const theta1 = Math.fround(3 * Math.fround(Math.pow(10000, Math.fround(-2 / 4))));
  assert.deepEqual(Array.from(cs), [Math.cos(3), Math.sin(3), Math.cos(theta1), Math.sin(theta1)].map(Math.fround));
  const x = Float32Array.of(1, 2, 3, 4, 5); // head of 5 with n_rot 4: the last element passes through
  ropeApply(p, x, 0, 1, 5, cs, 0);
  assert.ok(Math.abs(x[0] - (Math.cos(3) - 2 * Math.sin(3))) < 1e-6 && Math.abs(x[1] - (Math.sin(3) + 2 * Math.cos(3))) < 1e-6);
  assert.equal(x[4], 5);
  const y = Float32Array.of(1, 2, 3, 4);
  ropeApply({ ...p, ropeType: "neox" }, y, 0, 1, 4, cs, 0); // pairs (0, 2) and (1, 3)
  assert.ok(Math.abs(y[0] - (Math.cos(3) - 3 * Math.sin(3))) < 1e-6 && Math.abs(y[2] - (Math.sin(3) + 3 * Math.cos(3))) < 1e-6);
  // Llama 3 frequency factors divide each pair's angle; a linear scale multiplies it.
  const cs2 = new Float32Array(4);
  ropeCosSin({ ...p, freqFactors: Float32Array.of(1, 8), ropeFreqScale: 0.5 }, 3, cs2);
  assert.equal(cs2[0], Math.fround(Math.cos(1.5)));
  assert.equal(cs2[2], Math.fround(Math.cos(Math.fround(0.5 * Math.fround(theta1 / 8)))));
});

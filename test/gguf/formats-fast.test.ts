// The fast (approximate) K-quant quantizers (src/gguf/formats/fast-k.ts, quantizeRowFast):
// their output must be valid blocks of the format (llama.cpp's own dequantize_row_* decodes them to
// exactly what our dequantizeRow gives) and their reconstruction error must stay within 1.3x of the
// exact quantizer's on Gaussian data. Speeds are printed as diagnostics, not asserted.
// All data comes from a seeded PRNG so that failures are reproducible.

import { test } from "node:test";
import assert from "node:assert/strict";
import { GGMLType } from "../../src/gguf/types.ts";
import { dequantize, dequantizeRow, quantize, quantizeRow, quantizeRowFast, rowBytes } from "../../src/gguf/formats/index.ts";
import { ggmlDequantize } from "../helpers/ggml-ref.ts";
import { mulberry32, gaussian } from "../helpers/random.ts";

const K_TYPES = [
  { name: "Q4_K", type: GGMLType.Q4_K },
  { name: "Q5_K", type: GGMLType.Q5_K },
  { name: "Q6_K", type: GGMLType.Q6_K },
] as const;

const MAX_RMS_RATIO = 1.3;



function gaussianData(seed: number, n: number, std = 1): Float32Array {
  const rand = mulberry32(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = std * gaussian(rand);
  return x;
}

/**
 * Awkward super-blocks (256 elements each) that exercise the clamps and degenerate cases: zeros,
 * constants, one-signed data, a single spike among tiny values, sub-blocks of wildly different
 * magnitudes, tiny and huge (but finite in fp16) scales, sparse data.
 */
function edgeCaseData(seed: number): Float32Array {
  const rand = mulberry32(seed);
  const blocks: ((i: number) => number)[] = [
    () => 0,
    () => 0.37,
    () => -2.5,
    () => 1 + rand(),
    () => -1 - 3 * rand(),
    (i) => (i === 77 ? 1000 : 1e-3 * gaussian(rand)),
    (i) => (i === 200 ? -1000 : 1e-3 * gaussian(rand)),
    (i) => gaussian(rand) * 10 ** ((i >> 5) - 4),
    (i) => gaussian(rand) * 10 ** (-((i >> 4) % 8)),
    () => 1e-6 * gaussian(rand),
    () => 1e3 * gaussian(rand),
    () => (rand() < 0.9 ? 0 : gaussian(rand)),
    (i) => (i % 32 < 16 ? 5 : -5),
    (i) => (i & 1 ? 1 : -1) * rand(),
  ];
  const x = new Float32Array(256 * blocks.length);
  blocks.forEach((f, b) => {
    for (let i = 0; i < 256; i++) x[256 * b + i] = f(i);
  });
  return x;
}

function rmsError(x: Float32Array, y: Float32Array): number {
  let e = 0;
  for (let i = 0; i < x.length; i++) e += (x[i] - y[i]) ** 2;
  return Math.sqrt(e / x.length);
}

function assertSameFloats(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      assert.fail(`${what}: first mismatch at element ${i}: ours ${actual[i]} llama.cpp ${expected[i]}`);
    }
  }
}

function quantizeFast(type: number, x: Float32Array): Uint8Array {
  const out = new Uint8Array(rowBytes(type, x.length));
  quantizeRowFast(type, x, out, x.length);
  return out;
}

for (const { name, type } of K_TYPES) {
  test(`${name} fast quantizer: valid blocks (llama.cpp dequantize_row == ours)`, () => {
    const x = new Float32Array([...gaussianData(11, 256 * 16), ...gaussianData(12, 256 * 4, 0.02), ...edgeCaseData(13)]);
    const q = quantizeFast(type, x);
    const ours = dequantize(type, q, x.length);
    assertSameFloats(ours, ggmlDequantize(name, q, x.length), name);
    for (let i = 0; i < x.length; i++) assert.ok(Number.isFinite(ours[i]), `${name}: element ${i} decodes to ${ours[i]}`);
    // every super-block, including the awkward ones, is reconstructed reasonably (no packing
    // mix-ups): error small against its data, or (where fp16 range limits bite) near the exact one's
    const exact = dequantize(type, quantize(type, x), x.length);
    for (let b = 0; b < x.length / 256; b++) {
      let amax = 0;
      for (let i = 256 * b; i < 256 * (b + 1); i++) amax = Math.max(amax, Math.abs(x[i]));
      const xb = x.subarray(256 * b, 256 * (b + 1));
      const e = rmsError(xb, ours.subarray(256 * b, 256 * (b + 1)));
      const eExact = rmsError(xb, exact.subarray(256 * b, 256 * (b + 1)));
      assert.ok(e <= 0.1 * amax || e <= 1.5 * eExact, `${name}: super-block ${b}: rms error ${e} (exact ${eExact}) vs max |x| ${amax}`);
    }
    // exactly representable data stays exact
    const zeros = dequantize(type, quantizeFast(type, new Float32Array(512)), 512);
    assert.ok(zeros.every((v) => v === 0), `${name}: zeros`);
  });

  test(`${name} fast quantizer: RMS error within ${MAX_RMS_RATIO}x of the exact quantizer (Gaussian data)`, (t) => {
    for (const [seed, std] of [[21, 1], [22, 0.02], [23, 30]]) {
      const x = gaussianData(seed, 256 * 512, std);
      const eFast = rmsError(x, dequantize(type, quantizeFast(type, x), x.length));
      const eExact = rmsError(x, dequantize(type, quantize(type, x), x.length));
      const ratio = eFast / eExact;
      t.diagnostic(`${name} std ${std}: rms fast ${eFast.toExponential(4)} exact ${eExact.toExponential(4)} ratio ${ratio.toFixed(4)}`);
      assert.ok(ratio <= MAX_RMS_RATIO, `${name} std ${std}: fast/exact rms ratio ${ratio}`);
    }
  });

  test(`${name} fast quantizer: speed (diagnostic only)`, (t) => {
    const cols = 4096;
    const x = gaussianData(31, cols * 256, 0.02);
    const out = new Uint8Array(rowBytes(type, cols));
    const rate = (fn: typeof quantizeRow, rows: number): number => {
      const t0 = performance.now();
      for (let r = 0; r < rows; r++) fn(type, x.subarray(r * cols, (r + 1) * cols), out, cols);
      return (rows * cols) / ((performance.now() - t0) / 1000) / 1e6;
    };
    rate(quantizeRowFast, 256); // warm up
    const fast = Math.max(rate(quantizeRowFast, 256), rate(quantizeRowFast, 256));
    const exact = rate(quantizeRow, 32);
    t.diagnostic(`${name}: fast ${fast.toFixed(1)} M elements/s, exact ${exact.toFixed(2)} M elements/s (${(fast / exact).toFixed(1)}x)`);
  });
}

test("quantizeRowFast: other types are encoded exactly as quantizeRow does", () => {
  const x = gaussianData(41, 512);
  for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1]) {
    assert.deepEqual(quantizeFast(type, x), quantize(type, x), `type ${type}`);
  }
});

test("quantizeRowFast: argument checks", () => {
  assert.throws(() => quantizeRowFast(GGMLType.Q4_K, new Float32Array(128), new Uint8Array(144), 128), /256/);
  assert.throws(() => quantizeRowFast(GGMLType.Q6_K, new Float32Array(256), new Uint8Array(209), 256), /destination/);
  assert.throws(() => quantizeRowFast(GGMLType.Q5_K, new Float32Array(255), new Uint8Array(176), 256), /source/);
  assert.throws(() => quantizeRowFast(GGMLType.Q2_K, new Float32Array(256), new Uint8Array(84), 256), /not supported/);
  // a subarray destination at an odd offset is written in place, leaving its neighbours alone
  const x = gaussianData(42, 256);
  const buf = new Uint8Array(1 + 210 + 1).fill(0xaa);
  quantizeRowFast(GGMLType.Q6_K, x, buf.subarray(1, 211), 256);
  assert.equal(buf[0], 0xaa);
  assert.equal(buf[211], 0xaa);
  const y = new Float32Array(256);
  dequantizeRow(GGMLType.Q6_K, buf.subarray(1, 211), y, 256);
  assert.ok(rmsError(x, y) < 0.05);
});

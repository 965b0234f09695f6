// WASM matmul kernels: each SIMD kernel against its scalar twin (bit-identical), against the
// TypeScript fast path on the same rounded activations (ggml's integer formula vs decoded-weight
// dot products: float-rounding-level agreement), and against a float64 reference on exact
// activations (NMSE bound per type: the activation quantization error), on random shapes — in the
// spirit of ggml's test-backend-ops. Also: thread count never changes a single bit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dequantize, quantize } from "../../src/gguf/formats/index.ts";
import { GGMLType } from "../../src/gguf/types.ts";
import { decodePackedRow, Kernels } from "../../src/kernels/index.ts";
import { addBlockMinCorrection, hasBlockMin, matmulInputKind, q8_1SumCorrection, roundMatmulInput } from "../../src/engine/matmul-input.ts";
import { matmul, MATMUL_ROW_BLOCK } from "../../src/engine/ops.ts";
import { makeQTensor } from "../../src/engine/qtensor.ts";
import { mulberry32 as rng } from "../helpers/random.ts";


function nmse(got: Float32Array, want: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return num / den;
}

// NMSE bounds against float64 on unrounded activations: dominated by the activation rounding.
const TYPES: Array<[keyof typeof GGMLType, number, number]> = [
  ["Q8_0", 32, 5e-4], ["Q4_0", 32, 5e-4], ["Q4_1", 32, 5e-4], ["Q5_0", 32, 5e-4], ["Q5_1", 32, 5e-4],
  ["Q4_K", 256, 5e-4], ["Q5_K", 256, 5e-4], ["Q6_K", 256, 5e-4],
  ["F16", 1, 1e-6], ["BF16", 1, 1e-4], ["F32", 1, 1e-12],
];

for (const [name, blk, bound] of TYPES) {
  test(`matmul ${name}: SIMD == scalar twin, ≈ TS path, ≈ float64 reference`, () => {
    const type = GGMLType[name];
    const r = rng(type * 7919 + 1);
    const simd = new Kernels({ threads: 1 });
    const twin = new Kernels({ threads: 1, generic: true });
    const threaded = new Kernels({ threads: 2 });
    const exactDot = new Kernels({ threads: 1, relaxedDot: false });
    for (let iter = 0; iter < 7; iter++) {
      // the last shape is wide: its 37 tokens span several token blocks (assembly/common.ts
      // tokenBlock: 16 tokens at 8192 columns of i16 activations, 32 of int8) and end in a remainder,
      // and on 2 threads its 10 row groups are a dynamic job (pool.ts: chunks claimed by free threads)
      const wide = iter === 6 && blk > 1;
      const nCols = wide ? 8192 : blk === 1 ? 1 + Math.floor(r() * 300) : blk * (1 + Math.floor(r() * (blk === 256 ? 3 : 12)));
      const nRows = wide ? 38 : 1 + Math.floor(r() * 37);
      const nTok = wide ? 37 : 1 + Math.floor(r() * 16); // token tiles of 4, 2, 1: every remainder, several times
      const wf = new Float32Array(nCols * nRows).map(() => (r() * 2 - 1) * (0.5 + r()));
      const x = new Float32Array(nCols * nTok).map(() => (r() * 2 - 1) * 3);
      const bytes = type === GGMLType.F32 ? new Uint8Array(wf.buffer.slice(0)) : quantize(type, wf);
      const wd = dequantize(type, bytes, nCols * nRows);

      const ys: Float32Array[] = [];
      for (const k of [simd, twin, threaded, exactDot]) {
        const W = k.pack(type, nCols, nRows, bytes);
        const a = k.input(x, nTok, nCols, W.act, "x");
        const y = new Float32Array(nTok * nRows);
        k.matmul(W, a, y);
        ys.push(y);
      }
      const where = `${name} ${nRows}x${nCols}, ${nTok} tokens`;
      assert.deepEqual(ys[1], ys[0], `${where}: scalar twin != SIMD`);
      assert.deepEqual(ys[2], ys[0], `${where}: 2 threads != 1 thread`);
      assert.deepEqual(ys[3], ys[0], `${where}: exact int8 dot != relaxed_dot_i8x16_i7x16_s`);
      // each token alone gives the same bits as in the batch (token tiling never changes an output)
      // (one token is decode's path: two row groups from the two halves of each thread's range at once)
      const W1 = simd.pack(type, nCols, nRows, bytes);
      const W2 = threaded.pack(type, nCols, nRows, bytes);
      for (let t = 0; t < nTok; t++) {
        const y1 = new Float32Array(nRows);
        simd.matmul(W1, simd.input(x.subarray(t * nCols, (t + 1) * nCols), 1, nCols, W1.act, "x1"), y1);
        assert.deepEqual(y1, ys[0].subarray(t * nRows, (t + 1) * nRows), `${where}: token ${t} alone != in the batch`);
        const y2 = new Float32Array(nRows);
        threaded.matmul(W2, threaded.input(x.subarray(t * nCols, (t + 1) * nCols), 1, nCols, W2.act, "x1"), y2);
        assert.deepEqual(y2, y1, `${where}: token ${t} alone on 2 threads != on 1`);
      }

      // float64 reference on the exact activations
      const ref = new Float64Array(nTok * nRows);
      for (let t = 0; t < nTok; t++) {
        for (let row = 0; row < nRows; row++) {
          let s = 0;
          for (let i = 0; i < nCols; i++) s += wd[row * nCols + i] * x[t * nCols + i];
          ref[t * nRows + row] = s;
        }
      }
      const e = nmse(ys[0], ref);
      assert.ok(e <= bound, `${where}: NMSE ${e} > ${bound}`);

      // the engine's TypeScript fast path (decoded weights · rounded activations, f64)
      const W = makeQTensor("w", type, [nCols, nRows], bytes);
      const xr = new Float32Array(x.length);
      roundMatmulInput(matmulInputKind(type), x, xr, x.length);
      const yts = new Float32Array(nTok * nRows);
      matmul(W, xr, nTok, yts, new Float32Array(MATMUL_ROW_BLOCK * nCols));
      if (hasBlockMin(type)) {
        const corr = new Float32Array(nTok * nCols / 32);
        for (let t = 0; t < nTok; t++) q8_1SumCorrection(x, t * nCols, nCols, corr, t * nCols / 32);
        addBlockMinCorrection(W, corr, nTok, yts);
      }
      const ets = nmse(ys[0], Float64Array.from(yts));
      assert.ok(ets <= 1e-10, `${where}: NMSE vs TS path ${ets}`);
    }
  });
}

test("matmul Q8_0: a tensor holding the quant −128 runs the exact variant, with the scalar twin's bits", () => {
  // ggml's quantizer never writes −128, but a file may hold it: the relaxed decode path would
  // flip its sign past int8 (w ⊙ sign(x)), so such a tensor is marked exactDot at packing
  const r = rng(128);
  const nCols = 96;
  const nRows = 12;
  const bytes = quantize(GGMLType.Q8_0, new Float32Array(nCols * nRows).map(() => r() * 2 - 1));
  bytes[34 * 5 + 2 + 7] = 0x80; // row 1, block 2, column 7
  const x = new Float32Array(nCols).map(() => r() * 2 - 1);
  x[2 * 32 + 7] = -0.75; // a negative activation against it: the sign flip that would overflow
  const ys: Float32Array[] = [];
  for (const k of [new Kernels({ threads: 1 }), new Kernels({ threads: 1, generic: true })]) {
    const W = k.pack(GGMLType.Q8_0, nCols, nRows, bytes);
    assert.equal(W.exactDot, true);
    const y = new Float32Array(nRows);
    k.matmul(W, k.input(x, 1, nCols, W.act, "x"), y);
    ys.push(y);
  }
  assert.deepEqual(ys[0], ys[1]);
  const wd = dequantize(GGMLType.Q8_0, bytes, nCols * nRows);
  let s = 0;
  for (let i = 0; i < nCols; i++) s += wd[nCols + i] * x[i];
  assert.ok(Math.abs(ys[0][1] - s) < 0.02 * (1 + Math.abs(s)), `row 1: ${ys[0][1]} vs ${s}`);
  assert.equal(new Kernels({ threads: 1 }).pack(GGMLType.Q8_0, nCols, nRows, quantize(GGMLType.Q8_0, new Float32Array(nCols * nRows).fill(0.5))).exactDot, undefined);
});

test("packed weights decode (embedding rows) to exactly ggml's dequantized values, every layout and padding", () => {
  const k = new Kernels({ threads: 1 });
  for (const [name, blk] of TYPES) {
    const type = GGMLType[name];
    const r = rng(type * 31 + 5);
    const nCols = blk === 1 ? 40 : blk * 2;
    const nRows = 7; // a padded last group of 4 rows
    const wf = new Float32Array(nCols * nRows).map(() => (r() * 2 - 1) * (0.5 + r()));
    const bytes = type === GGMLType.F32 ? new Uint8Array(wf.buffer.slice(0)) : quantize(type, wf);
    const want = dequantize(type, bytes, nCols * nRows);
    const W = k.pack(type, nCols, nRows, bytes);
    const row = new Float32Array(nCols);
    for (let i = 0; i < nRows; i++) {
      decodePackedRow(W, i, row);
      // === (not deepEqual): Q4_0's 0·d may come out −0 in ggml and +0 here
      for (let j = 0; j < nCols; j++) assert.ok(row[j] === want[i * nCols + j], `${name} row ${i} col ${j}: ${row[j]} != ${want[i * nCols + j]}`);
    }
  }
});

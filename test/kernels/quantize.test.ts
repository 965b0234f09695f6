// Activation quantization: the SIMD quantize_q8 / quantize_q8i against their scalar twins, bit for
// bit (quants, fp16 block scales, quantize_q8's magnitudes and sign masks, quantize_q8i's Q8_1 block
// sums), on random rows with zero blocks, ties and extreme values; quantize_q8i's int8 quants and
// integer sums against quantize_q8's quants, and the magnitudes and masks against them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KernelMemory } from "../../src/kernels/index.ts";
import { mulberry32 as rng } from "../helpers/random.ts";

test("quantize_q8, quantize_q8i: SIMD == scalar twin", () => {
  const mem = new KernelMemory();
  const e = mem.exports;
  const r = rng(42);
  for (let iter = 0; iter < 20; iter++) {
    const n = 32 * (1 + Math.floor(r() * 20));
    const nTok = 1 + Math.floor(r() * 5);
    const x = new Float32Array(n * nTok).map(() => (r() * 2 - 1) * 10 ** (r() * 6 - 3));
    for (let b = 0; b < x.length; b += 32) {
      const k = r();
      if (k < 0.1) x.fill(0, b, b + 32); // an all-zero block
      else if (k < 0.2) for (let j = b; j < b + 32; j++) x[j] = Math.round((r() * 2 - 1) * 127) / 127 + 0.5 / 127; // ties of x·127/amax
      else if (k < 0.25) x[b + Math.floor(r() * 32)] = -Math.fround(3e38);
    }
    const out: Array<[Int16Array, Float32Array, Uint8Array]> = [];
    for (const f of [e.quantize_q8, e.quantize_q8_generic]) {
      const xp = mem.scratchPtr("x", n * nTok * 4);
      const qp = mem.scratchPtr("q", n * nTok * 2);
      const dp = mem.scratchPtr("d", (n * nTok) / 8);
      const sp = mem.scratchPtr("s", 2 * n * nTok);
      new Float32Array(mem.memory.buffer, xp, n * nTok).set(x);
      f(xp, n, nTok, qp, dp, sp);
      out.push([
        new Int16Array(mem.memory.buffer, qp, n * nTok).slice(),
        new Float32Array(mem.memory.buffer, dp, (n * nTok) / 32).slice(),
        new Uint8Array(mem.memory.buffer, sp, 2 * n * nTok).slice(),
      ]);
    }
    assert.deepEqual(out[0][0], out[1][0], "quants");
    assert.deepEqual(out[0][1], out[1][1], "scales");
    assert.deepEqual(out[0][2], out[1][2], "magnitudes and sign masks");
    for (let t = 0; t < nTok; t++) {
      for (let j = 0; j < n; j++) {
        const q = out[0][0][t * n + j];
        assert.equal(out[0][2][2 * t * n + j], Math.abs(q), "magnitude");
        assert.equal(out[0][2][2 * t * n + n + j], q < 0 ? 0xff : 0, "sign mask");
      }
    }
    const outI: Array<[Int8Array, Float32Array, Float32Array, Int32Array]> = [];
    for (const f of [e.quantize_q8i, e.quantize_q8i_generic]) {
      const xp = mem.scratchPtr("x", n * nTok * 4);
      const qp = mem.scratchPtr("qi", n * nTok);
      const dp = mem.scratchPtr("d", (n * nTok) / 8);
      const sp = mem.scratchPtr("si", (n * nTok) / 4);
      new Float32Array(mem.memory.buffer, xp, n * nTok).set(x);
      f(xp, n, nTok, qp, dp, sp);
      const pairs = new Float32Array(mem.memory.buffer, sp, (n * nTok) / 16);
      outI.push([
        new Int8Array(mem.memory.buffer, qp, n * nTok).slice(),
        new Float32Array(mem.memory.buffer, dp, (n * nTok) / 32).slice(),
        pairs.filter((_, i) => i % 2 === 0),
        new Int32Array(mem.memory.buffer, sp, (n * nTok) / 16).filter((_, i) => i % 2 === 1),
      ]);
    }
    assert.deepEqual(outI[0][0], outI[1][0], "int8 quants");
    assert.deepEqual(outI[0][1], outI[1][1], "int8 scales");
    assert.deepEqual(outI[0][2], outI[1][2], "int8 block sums");
    assert.deepEqual(outI[0][3], outI[1][3], "integer block sums");
    assert.deepEqual(Int16Array.from(outI[0][0]), out[0][0], "int8 quants == i16 quants");
    const isums = new Int32Array(outI[0][3].length);
    outI[0][0].forEach((v, i) => { isums[i >> 5] += v; });
    assert.deepEqual(outI[0][3], isums, "integer sums == Σ quants");
  }
});

// Fast (approximate) quantizers for Q4_K, Q5_K and Q6_K.
//
// NOT bit-exact with llama.cpp's quantize_row_*_ref (use quantizeRow for that); the output is
// ordinary, valid blocks of the same formats (llama.cpp's dequantize_row_* decodes them to exactly
// what our dequantizeRow gives), meant for bulk work where quantizer speed matters more than the
// last few percent of accuracy (e.g. `llmesh synth` at 1B scale).
//
// Scale search, per sub-block (instead of make_qkx2_quants' 16-21 candidate scales / make_qx_quants'
// 19 candidates, each with a weighted error evaluation):
//   Q4_K / Q5_K (32 elements, levels 0..nmax, x ≈ s*q - m): start from the sub-block's
//     [min(x, 0), max(x)] range, then REFINE_ITERS rounds of "nearest levels, then the unweighted
//     least-squares (s, m) for those levels" (m clamped so that the offset stays <= 0, as in
//     llama.cpp); each round can only lower the sub-block's squared error.
//   Q6_K (16 elements, levels -32..31, x ≈ s*q): start from s = -max_abs_signed/32 (the largest
//     magnitude maps onto -32, as llama.cpp does), then REFINE_ITERS rounds of least squares.
// Then, as in llama.cpp, the sub-block scales (and mins) are quantized against the super-block
// scale (6-bit for Q4_K/Q5_K, int8 for Q6_K) and the final levels are the nearest ones for the
// decoded (fp16 super-scale × quantized sub-scale) values. Plain double arithmetic, no allocation.
//
// Measured (node 24, one thread of a shared, heavily loaded 2-vCPU Xeon @ 2.5 GHz where a bare
// one-multiply-per-element loop runs at only ~180 M/s; an idle core is several times faster):
//   speed, M elements/s (fast / exact, best of repeated runs): Q4_K 29 / 1.3 (~22x),
//     Q5_K 25-39 / 1.5-2.3 (~17x), Q6_K 28-32 / 1.65-1.75 (~17x)
//   RMS error ratio fast/exact on N(0, σ²) data (σ = 0.02, 1, 30): Q4_K 1.038-1.042,
//     Q5_K 1.021-1.023, Q6_K 1.023-1.028; on uniform data (as `llmesh synth` makes):
//     Q4_K 1.045, Q5_K 1.025, Q6_K 1.053
// test/gguf/formats-fast.test.ts asserts the error ratio (<= 1.3) and prints both.

import { readF16, writeF16 } from "./float.ts";
import { QK_K } from "./k-common.ts";

const REFINE_ITERS = 2;

const Q4_K_BYTES = 144;
const Q5_K_BYTES = 176;
const Q6_K_BYTES = 210;

// Scratch (the quantizers are synchronous and non-reentrant).
const subScale = new Float64Array(16);
const subMin = new Float64Array(8);
const subInv = new Float64Array(16);
const subOff = new Float64Array(8);

/**
 * Per-sub-block (scale, min) search for one 32-element sub-block x[xo..xo+32) with levels 0..nmax;
 * writes subScale[j] and subMin[j] (the positive offset: x ≈ scale*q - min).
 */
function fitSubBlockAsym(x: Float32Array, xo: number, nmax: number, j: number): void {
  let mn = x[xo];
  let mx = mn;
  let sumX = 0;
  for (let i = 0; i < 32; i++) {
    const v = x[xo + i];
    if (v < mn) mn = v;
    if (v > mx) mx = v;
    sumX += v;
  }
  if (mn > 0) mn = 0;
  if (!(mx > mn)) {
    // constant sub-block (or NaNs): all levels 0, x = -min
    subScale[j] = 0;
    subMin[j] = mn === mn ? -mn : 0;
    return;
  }
  let scale = (mx - mn) / nmax;
  let off = mn; // x ≈ scale*q + off, off <= 0
  for (let it = 0; it < REFINE_ITERS; it++) {
    const inv = 1 / scale;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < 32; i++) {
      const v = x[xo + i];
      const t = (v - off) * inv + 0.5;
      const q = t >= nmax ? nmax : t > 0 ? t | 0 : 0;
      sumL += q;
      sumL2 += q * q;
      sumXL += q * v;
    }
    const D = 32 * sumL2 - sumL * sumL;
    if (!(D > 0)) break;
    let s = (32 * sumXL - sumX * sumL) / D;
    let m = (sumL2 * sumX - sumL * sumXL) / D;
    if (m > 0) {
      m = 0;
      s = sumXL / sumL2;
    }
    if (!(s > 0)) break;
    scale = s;
    off = m;
  }
  subScale[j] = scale;
  subMin[j] = -off;
}

/**
 * Shared part of Q4_K / Q5_K for the super-block at x[xo..xo+256): sub-block fits, 6-bit
 * scale/min packing into dst[o+4..o+16), fp16 d/dmin into dst[o..o+4); leaves the decoded
 * per-sub-block 1/scale (0 where the scale is 0) in subInv[] and offset in subOff[], so that the
 * level of x is clamp(floor((x + subOff[j]) * subInv[j] + 0.5), 0, nmax).
 */
function quantizeScalesAsym(x: Float32Array, xo: number, dst: Uint8Array, o: number, nmax: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    fitSubBlockAsym(x, xo + 32 * j, nmax, j);
    if (subScale[j] > maxScale) maxScale = subScale[j];
    if (subMin[j] > maxMin) maxMin = subMin[j];
  }
  writeF16(dst, o, maxScale / 63);
  writeF16(dst, o + 2, maxMin / 63);
  const dAll = readF16(dst, o);
  const mAll = readF16(dst, o + 2);
  const invD = dAll > 0 ? 1 / dAll : 0;
  const invM = mAll > 0 ? 1 / mAll : 0;
  const s = o + 4;
  for (let j = 0; j < 8; j++) {
    let t = subScale[j] * invD + 0.5;
    const ls = t >= 63 ? 63 : t > 0 ? t | 0 : 0;
    t = subMin[j] * invM + 0.5;
    const lm = t >= 63 ? 63 : t > 0 ? t | 0 : 0;
    if (j < 4) {
      dst[s + j] = ls;
      dst[s + j + 4] = lm;
    } else {
      dst[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      dst[s + j - 4] |= (ls >> 4) << 6;
      dst[s + j] |= (lm >> 4) << 6;
    }
    const d = dAll * ls;
    subInv[j] = d > 0 ? 1 / d : 0; // scale 0: every level 0 (the value decodes to -min)
    subOff[j] = mAll * lm;
  }
}

export function quantizeRowQ4_KFast(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_K_BYTES;
    const xo = i * QK_K;
    quantizeScalesAsym(src, xo, dst, o, 15);
    for (let c = 0; c < 4; c++) {
      const inv1 = subInv[2 * c];
      const off1 = subOff[2 * c];
      const inv2 = subInv[2 * c + 1];
      const off2 = subOff[2 * c + 1];
      const x1 = xo + 64 * c;
      const q = o + 16 + 32 * c;
      for (let l = 0; l < 32; l++) {
        const u1 = (src[x1 + l] + off1) * inv1 + 0.5;
        const u2 = (src[x1 + 32 + l] + off2) * inv2 + 0.5;
        const l1 = u1 >= 15 ? 15 : u1 > 0 ? u1 | 0 : 0;
        const l2 = u2 >= 15 ? 15 : u2 > 0 ? u2 | 0 : 0;
        dst[q + l] = l1 | (l2 << 4);
      }
    }
  }
}

export function quantizeRowQ5_KFast(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q5_K_BYTES;
    const xo = i * QK_K;
    quantizeScalesAsym(src, xo, dst, o, 31);
    const qh = o + 16;
    for (let l = 0; l < 32; l++) dst[qh + l] = 0;
    for (let c = 0; c < 4; c++) {
      const inv1 = subInv[2 * c];
      const off1 = subOff[2 * c];
      const inv2 = subInv[2 * c + 1];
      const off2 = subOff[2 * c + 1];
      const x1 = xo + 64 * c;
      const ql = o + 48 + 32 * c;
      const shift = 2 * c;
      for (let l = 0; l < 32; l++) {
        const u1 = (src[x1 + l] + off1) * inv1 + 0.5;
        const u2 = (src[x1 + 32 + l] + off2) * inv2 + 0.5;
        const l1 = u1 >= 31 ? 31 : u1 > 0 ? u1 | 0 : 0;
        const l2 = u2 >= 31 ? 31 : u2 > 0 ? u2 | 0 : 0;
        dst[ql + l] = (l1 & 0xf) | ((l2 & 0xf) << 4);
        dst[qh + l] |= ((l1 >> 4) | ((l2 >> 4) << 1)) << shift;
      }
    }
  }
}

/** Least-squares scale search for one 16-element Q6_K sub-block; writes subScale[j] (x ≈ s*q, q in -32..31). */
function fitSubBlockSym(x: Float32Array, xo: number, j: number): void {
  let amax = 0;
  let max = 0;
  for (let i = 0; i < 16; i++) {
    const v = x[xo + i];
    const a = v < 0 ? -v : v;
    if (a > amax) {
      amax = a;
      max = v;
    }
  }
  if (!(amax > 1e-15)) {
    subScale[j] = 0;
    return;
  }
  let scale = -max / 32;
  for (let it = 0; it < REFINE_ITERS; it++) {
    const inv = 1 / scale;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < 16; i++) {
      const v = x[xo + i];
      const t = v * inv + 32.5;
      const q = (t >= 63 ? 63 : t > 0 ? t | 0 : 0) - 32;
      sumL2 += q * q;
      sumXL += q * v;
    }
    if (!(sumL2 > 0)) break;
    const s = sumXL / sumL2;
    if (!(s !== 0 && s === s)) break;
    scale = s;
  }
  subScale[j] = scale;
}

export function quantizeRowQ6_KFast(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q6_K_BYTES;
    const x = i * QK_K;
    let maxScale = 0;
    let maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      fitSubBlockSym(src, x + 16 * ib, ib);
      const s = subScale[ib];
      const a = s < 0 ? -s : s;
      if (a > maxAbs) {
        maxAbs = a;
        maxScale = s;
      }
    }
    if (!(maxAbs > 1e-15)) {
      dst.fill(0, o, o + Q6_K_BYTES);
      continue;
    }
    writeF16(dst, o + 208, -maxScale / 128);
    const dAll = readF16(dst, o + 208);
    const invD = dAll !== 0 ? 1 / dAll : 0;
    for (let j = 0; j < 16; j++) {
      const t = subScale[j] * invD + 128.5;
      const sc = (t >= 255 ? 255 : t > 0 ? t | 0 : 0) - 128; // round, clamp to int8
      dst[o + 192 + j] = sc & 0xff;
      const d = dAll * sc;
      subInv[j] = d !== 0 && d === d ? 1 / d : 0; // scale 0: every level 32 (the value 0)
    }
    let ql = o;
    let qh = o + 128;
    for (let h = 0; h < 2; h++) {
      const xh = x + 128 * h;
      for (let l0 = 0; l0 < 32; l0 += 16) {
        // elements xh + l + 32k (k = 0..3) lie in sub-block 8h + 2k + l0/16
        const sb = 8 * h + (l0 >> 4);
        const inv1 = subInv[sb];
        const inv2 = subInv[sb + 2];
        const inv3 = subInv[sb + 4];
        const inv4 = subInv[sb + 6];
        for (let l = l0; l < l0 + 16; l++) {
          const u1 = src[xh + l] * inv1 + 32.5;
          const u2 = src[xh + l + 32] * inv2 + 32.5;
          const u3 = src[xh + l + 64] * inv3 + 32.5;
          const u4 = src[xh + l + 96] * inv4 + 32.5;
          const L1 = u1 >= 63 ? 63 : u1 > 0 ? u1 | 0 : 0;
          const L2 = u2 >= 63 ? 63 : u2 > 0 ? u2 | 0 : 0;
          const L3 = u3 >= 63 ? 63 : u3 > 0 ? u3 | 0 : 0;
          const L4 = u4 >= 63 ? 63 : u4 > 0 ? u4 | 0 : 0;
          dst[ql + l] = (L1 & 0xf) | ((L3 & 0xf) << 4);
          dst[ql + l + 32] = (L2 & 0xf) | ((L4 & 0xf) << 4);
          dst[qh + l] = (L1 >> 4) | ((L2 >> 4) << 2) | ((L3 >> 4) << 4) | ((L4 >> 4) << 6);
        }
      }
      ql += 64;
      qh += 32;
    }
  }
}

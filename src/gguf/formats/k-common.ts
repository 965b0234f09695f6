// Shared pieces of the K-quant super-block formats (QK_K = 256 elements per super-block).
//
// Reference (pinned): llama.cpp ggml/src/ggml-quants.c — get_scale_min_k4, make_qkx2_quants,
// make_qx_quants (rmse_type = 1, no importance weights) and the scale/min packing used by
// quantize_row_q4_K_ref / quantize_row_q5_K_ref. These are literal ports: every C float operation
// is a Math.fround, sums run in the same order, so the output is bit-identical to llama.cpp.
//
// 12-byte `scales` field of Q4_K / Q5_K (8 sub-blocks of 32, each with a 6-bit scale sc and a
// 6-bit min m):
//   j < 4 : sc = scales[j] & 63            m = scales[j + 4] & 63
//   j >= 4: sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4)
//           m  = (scales[j + 4] >> 4)  | ((scales[j]     >> 6) << 4)

import { nearestInt } from "./cmath.ts";
import { writeF16, readF16 } from "./float.ts";

export const QK_K = 256;
export const K_SCALE_SIZE = 12;

const fround = Math.fround;
const GROUP_MAX_EPS = Math.fround(1e-15);
const F_0_1 = Math.fround(0.1);

/** Decoded 6-bit scale of sub-block j (get_scale_min_k4's *d). */
export function kScale(src: Uint8Array, o: number, j: number): number {
  return j < 4 ? src[o + j] & 63 : (src[o + j + 4] & 0xf) | ((src[o + j - 4] >> 6) << 4);
}

/** Decoded 6-bit min of sub-block j (get_scale_min_k4's *m). */
export function kMin(src: Uint8Array, o: number, j: number): number {
  return j < 4 ? src[o + j + 4] & 63 : (src[o + j + 4] >> 4) | ((src[o + j] >> 6) << 4);
}

// Scratch buffers (the quantizers are synchronous and non-reentrant).
const lauxBuf = new Float64Array(32);
const weights = new Float32Array(32);
const subScales = new Float32Array(8);
const subMins = new Float32Array(8);
const xsBuf = new Float64Array(32); // the sub-block's x (float values held as doubles)
const wsBuf = new Float64Array(32); // its weights
const xmBuf = new Float64Array(32); // fround(x - min) for the current min
let qkx2Min = 0;

/**
 * make_qkx2_quants(n <= 32, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep,
 * use_mad = false). Returns the scale; the (negated) min is left in qkx2Min.
 *
 * One exact shortcut: a candidate whose levels equal the previous candidate's levels yields the
 * same sums, hence the same error, which can never beat the best error (it was either accepted
 * already or rejected), so its sums and error are not recomputed.
 */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array,
  L: Uint8Array, lo: number, rmin: number, rdelta: number, nstep: number,
): number {
  const xs = xsBuf;
  const ws = wsBuf;
  const xm = xmBuf;
  const laux = lauxBuf;
  for (let i = 0; i < n; i++) {
    xs[i] = x[xo + i];
    ws[i] = w[i];
  }
  let min = xs[0];
  let max = xs[0];
  let sumW = ws[0];
  let sumX = fround(sumW * xs[0]);
  for (let i = 1; i < n; i++) {
    const xi = xs[i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    sumW = fround(sumW + ws[i]);
    sumX = fround(sumX + fround(ws[i] * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    qkx2Min = -min;
    return 0;
  }
  for (let i = 0; i < n; i++) xm[i] = fround(xs[i] - min);
  let iscale = fround(nmax / fround(max - min));
  let scale = fround(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    let l = nearestInt(fround(iscale * xm[i]));
    l = l < nmax ? l : nmax;
    l = l > 0 ? l : 0;
    L[lo + i] = l;
    const diff = fround(fround(fround(scale * l) + min) - xs[i]);
    bestError = fround(bestError + fround(ws[i] * fround(diff * diff)));
  }
  if (nstep < 1) {
    qkx2Min = -min;
    return scale;
  }
  let havePrev = false;
  for (let is = 0; is <= nstep; is++) {
    // note: `min` may have been replaced by a better fit below, exactly as in C
    iscale = fround(fround(fround(rmin + fround(rdelta * is)) + nmax) / fround(max - min));
    let changed = !havePrev;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(fround(iscale * xm[i]));
      l = l < nmax ? l : nmax;
      l = l > 0 ? l : 0;
      if (l !== laux[i]) {
        laux[i] = l;
        changed = true;
      }
    }
    havePrev = true;
    if (!changed) continue;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = laux[i];
      const wl = fround(ws[i] * l);
      sumL = fround(sumL + wl);
      sumL2 = fround(sumL2 + fround(wl * l));
      sumXL = fround(sumXL + fround(wl * xs[i]));
    }
    const D = fround(fround(sumW * sumL2) - fround(sumL * sumL));
    if (D > 0) {
      let thisScale = fround(fround(fround(sumW * sumXL) - fround(sumX * sumL)) / D);
      let thisMin = fround(fround(fround(sumL2 * sumX) - fround(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fround(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = fround(fround(fround(thisScale * laux[i]) + thisMin) - xs[i]);
        curError = fround(curError + fround(ws[i] * fround(diff * diff)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = laux[i];
        bestError = curError;
        scale = thisScale;
        if (thisMin !== min) {
          min = thisMin;
          for (let i = 0; i < n; i++) xm[i] = fround(xs[i] - min);
        }
      }
    }
  }
  qkx2Min = -min;
  return scale;
}

/**
 * The shared first half of quantize_row_q4_K_ref / quantize_row_q5_K_ref for the super-block at
 * x[xo..xo+256): per-sub-block make_qkx2_quants, 6-bit scale/min packing into dst[o+4..o+16),
 * fp16 d/dmin into dst[o..o+4), then the final per-element levels (0..nmax) into L[0..256).
 */
export function quantizeScalesMinsK(
  x: Float32Array, xo: number, dst: Uint8Array, o: number, L: Uint8Array,
  nmax: number, rmin: number, nstep: number,
): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const base = xo + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fround(sumX2 + fround(x[base + l] * x[base + l]));
    const avX = fround(Math.sqrt(fround(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = fround(avX + Math.abs(x[base + l]));
    const scale = makeQkx2Quants(32, nmax, x, base, weights, L, 32 * j, rmin, F_0_1, nstep);
    subScales[j] = scale;
    subMins[j] = qkx2Min;
    if (scale > maxScale) maxScale = scale;
    if (qkx2Min > maxMin) maxMin = qkx2Min;
  }
  const invScale = maxScale > 0 ? fround(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fround(63 / maxMin) : 0;
  const s = o + 4;
  for (let j = 0; j < 8; j++) {
    let ls = nearestInt(fround(invScale * subScales[j])) & 0xff;
    let lm = nearestInt(fround(invMin * subMins[j])) & 0xff;
    ls = ls < 63 ? ls : 63;
    lm = lm < 63 ? lm : 63;
    if (j < 4) {
      dst[s + j] = ls;
      dst[s + j + 4] = lm;
    } else {
      dst[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      dst[s + j - 4] |= (ls >> 4) << 6;
      dst[s + j] |= (lm >> 4) << 6;
    }
  }
  writeF16(dst, o, fround(maxScale / 63));
  writeF16(dst, o + 2, fround(maxMin / 63));
  const dAll = readF16(dst, o);
  const mAll = readF16(dst, o + 2);
  for (let j = 0; j < 8; j++) {
    const d = fround(dAll * kScale(dst, s, j));
    if (d === 0) continue; // C `if (!d) continue;` (NaN does not skip)
    const dm = fround(mAll * kMin(dst, s, j));
    const base = xo + 32 * j;
    for (let ii = 0; ii < 32; ii++) {
      let l = nearestInt(fround(fround(x[base + ii] + dm) / d));
      l = l < nmax ? l : nmax;
      l = l > 0 ? l : 0;
      L[32 * j + ii] = l;
    }
  }
}

/**
 * make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL): L[i] = level + nmax in 0..2*nmax-1.
 * Returns the scale.
 */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = fround(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nearestInt(fround(iscale * xi));
    l = l < nmax - 1 ? l : nmax - 1;
    l = l > -nmax ? l : -nmax;
    L[lo + i] = l + nmax;
    const w = fround(xi * xi);
    sumlx = fround(sumlx + fround(fround(w * xi) * l));
    suml2 = fround(suml2 + fround(fround(w * l) * l));
  }
  let scale = suml2 !== 0 ? fround(sumlx / suml2) : 0;
  let best = fround(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fround(-fround(nmax + fround(F_0_1 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      let l = nearestInt(fround(iscale * xi));
      l = l < nmax - 1 ? l : nmax - 1;
      l = l > -nmax ? l : -nmax;
      const w = fround(xi * xi);
      sumlx = fround(sumlx + fround(fround(w * xi) * l));
      suml2 = fround(suml2 + fround(fround(w * l) * l));
    }
    if (suml2 > 0 && fround(sumlx * sumlx) > fround(best * suml2)) {
      for (let i = 0; i < n; i++) {
        let l = nearestInt(fround(iscale * x[xo + i]));
        l = l < nmax - 1 ? l : nmax - 1;
        l = l > -nmax ? l : -nmax;
        L[lo + i] = l + nmax;
      }
      scale = fround(sumlx / suml2);
      best = fround(scale * sumlx);
    }
  }
  return scale;
}

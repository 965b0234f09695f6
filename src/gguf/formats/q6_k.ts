// Q6_K: 256 elements per super-block, 210 bytes; 16 sub-blocks of 16 elements,
// x = (d * sc_j) * (q - 32), q in 0..63, sc_j int8.
//
//   byte 0..127    ql[128]    low 4 bits   } two halves of 128 elements; in half h (ql += 64h,
//   byte 128..191  qh[64]     high 2 bits  } qh += 32h), for l in 0..31:
//                               e(l)      = ql[l]      & 0xF | ((qh[l] >> 0) & 3) << 4
//                               e(l + 32) = ql[l + 32] & 0xF | ((qh[l] >> 2) & 3) << 4
//                               e(l + 64) = ql[l]      >> 4  | ((qh[l] >> 4) & 3) << 4
//                               e(l + 96) = ql[l + 32] >> 4  | ((qh[l] >> 6) & 3) << 4
//   byte 192..207  scales[16] int8 sub-block scales (element k uses scales[k / 16])
//   byte 208..209  d          fp16 super-block scale
//
// Reference (pinned): llama.cpp ggml/src/ggml-common.h block_q6_K;
// ggml/src/ggml-quants.c dequantize_row_q6_K, quantize_row_q6_K_ref. Both are bit-exact ports
// (the quantizer is make_qx_quants(16, 32, rmse_type 1) per sub-block).

import { readF16, writeF16 } from "./float.ts";
import { nearestInt } from "./cmath.ts";
import { QK_K, makeQxQuants } from "./k-common.ts";

export const Q6_K_BYTES = 210;

const fround = Math.fround;
const GROUP_MAX_EPS = Math.fround(1e-15);
const levels = new Uint8Array(QK_K);
const scales = new Float32Array(16);

export function dequantizeRowQ6_K(src: Uint8Array, dst: Float32Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q6_K_BYTES;
    const d = readF16(src, o + 208);
    let ql = o;
    let qh = o + 128;
    let sc = o + 192;
    let y = i * QK_K;
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const q1 = ((src[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        dst[y + l] = fround(fround(d * ((src[sc + is] << 24) >> 24)) * q1);
        dst[y + l + 32] = fround(fround(d * ((src[sc + is + 2] << 24) >> 24)) * q2);
        dst[y + l + 64] = fround(fround(d * ((src[sc + is + 4] << 24) >> 24)) * q3);
        dst[y + l + 96] = fround(fround(d * ((src[sc + is + 6] << 24) >> 24)) * q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

export function quantizeRowQ6_K(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q6_K_BYTES;
    const x = i * QK_K;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, src, x + 16 * ib, levels, 16 * ib);
      scales[ib] = scale;
      const absScale = Math.abs(scale);
      if (absScale > maxAbsScale) {
        maxAbsScale = absScale;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      dst.fill(0, o, o + Q6_K_BYTES);
      continue;
    }
    const iscale = fround(-128 / maxScale);
    writeF16(dst, o + 208, fround(1 / iscale));
    for (let ib = 0; ib < 16; ib++) {
      const v = nearestInt(fround(iscale * scales[ib]));
      dst[o + 192 + ib] = (v < 127 ? v : 127) & 0xff;
    }
    const dAll = readF16(dst, o + 208);
    for (let j = 0; j < 16; j++) {
      const d = fround(dAll * ((dst[o + 192 + j] << 24) >> 24));
      if (d === 0) continue; // C `if (!d) continue;` (NaN does not skip)
      for (let ii = 0; ii < 16; ii++) {
        let l = nearestInt(fround(src[x + 16 * j + ii] / d));
        l = l < 31 ? l : 31;
        l = l > -32 ? l : -32;
        levels[16 * j + ii] = l + 32;
      }
    }
    let ql = o;
    let qh = o + 128;
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        const L1 = levels[j + l];
        const L2 = levels[j + l + 32];
        const L3 = levels[j + l + 64];
        const L4 = levels[j + l + 96];
        dst[ql + l] = (L1 & 0xf) | ((L3 & 0xf) << 4);
        dst[ql + l + 32] = (L2 & 0xf) | ((L4 & 0xf) << 4);
        dst[qh + l] = (L1 >> 4) | ((L2 >> 4) << 2) | ((L3 >> 4) << 4) | ((L4 >> 4) << 6);
      }
      ql += 64;
      qh += 32;
    }
  }
}

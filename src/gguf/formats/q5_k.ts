// Q5_K: 256 elements per super-block, 176 bytes; 8 sub-blocks of 32 elements,
// x = (d * sc_j) * q - (dmin * m_j), q in 0..31, sc_j/m_j 6-bit (see k-common.ts for packing).
//
//   byte 0..1     d          fp16 super-scale of the sub-block scales
//   byte 2..3     dmin       fp16 super-scale of the sub-block mins
//   byte 4..15    scales[12] 6-bit scales and mins of the 8 sub-blocks
//   byte 16..47   qh[32]     high bits: element 64c + l has bit (2c) of qh[l],
//                            element 64c + 32 + l has bit (2c + 1) of qh[l]
//   byte 48..175  qs[128]    low nibbles, laid out like Q4_K's qs
//
// Reference (pinned): llama.cpp ggml/src/ggml-common.h block_q5_K;
// ggml/src/ggml-quants.c dequantize_row_q5_K, quantize_row_q5_K_ref. Both are bit-exact ports
// (the quantizer is make_qkx2_quants with nmax 31, rmin -0.5, rdelta 0.1, nstep 15).

import { readF16 } from "./float.ts";
import { QK_K, kMin, kScale, quantizeScalesMinsK } from "./k-common.ts";

export const Q5_K_BYTES = 176;

const fround = Math.fround;
const levels = new Uint8Array(QK_K);

export function dequantizeRowQ5_K(src: Uint8Array, dst: Float32Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q5_K_BYTES;
    const d = readF16(src, o);
    const min = readF16(src, o + 2);
    const s = o + 4;
    const qh = o + 16;
    let ql = o + 48;
    let y = i * QK_K;
    let u1 = 1;
    let u2 = 2;
    for (let is = 0; is < 8; is += 2) {
      const d1 = fround(d * kScale(src, s, is));
      const m1 = fround(min * kMin(src, s, is));
      const d2 = fround(d * kScale(src, s, is + 1));
      const m2 = fround(min * kMin(src, s, is + 1));
      for (let l = 0; l < 32; l++) {
        dst[y + l] = fround(fround(d1 * ((src[ql + l] & 0xf) + (src[qh + l] & u1 ? 16 : 0))) - m1);
      }
      for (let l = 0; l < 32; l++) {
        dst[y + 32 + l] = fround(fround(d2 * ((src[ql + l] >> 4) + (src[qh + l] & u2 ? 16 : 0))) - m2);
      }
      ql += 32;
      y += 64;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

export function quantizeRowQ5_K(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q5_K_BYTES;
    quantizeScalesMinsK(src, i * QK_K, dst, o, levels, 31, -0.5, 15);
    const qh = o + 16;
    let ql = o + 48;
    dst.fill(0, qh, qh + 32);
    let m1 = 1;
    let m2 = 2;
    for (let n0 = 0; n0 < QK_K; n0 += 64) {
      for (let j = 0; j < 32; j++) {
        let l1 = levels[n0 + j];
        if (l1 > 15) {
          l1 -= 16;
          dst[qh + j] |= m1;
        }
        let l2 = levels[n0 + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          dst[qh + j] |= m2;
        }
        dst[ql + j] = l1 | (l2 << 4);
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  }
}

// Q4_K: 256 elements per super-block, 144 bytes; 8 sub-blocks of 32 elements,
// x = (d * sc_j) * q - (dmin * m_j), q in 0..15, sc_j/m_j 6-bit (see k-common.ts for packing).
//
//   byte 0..1     d          fp16 super-scale of the sub-block scales
//   byte 2..3     dmin       fp16 super-scale of the sub-block mins
//   byte 4..15    scales[12] 6-bit scales and mins of the 8 sub-blocks
//   byte 16..143  qs[128]    4 chunks of 32 bytes; chunk c covers elements 64c..64c+63:
//                            element 64c + l = qs[32c + l] & 0xF, 64c + 32 + l = qs[32c + l] >> 4
//
// Reference (pinned): llama.cpp ggml/src/ggml-common.h block_q4_K;
// ggml/src/ggml-quants.c dequantize_row_q4_K, quantize_row_q4_K_ref. Both are bit-exact ports
// (the quantizer is make_qkx2_quants with nmax 15, rmin -1, rdelta 0.1, nstep 20).

import { readF16 } from "./float.ts";
import { QK_K, kMin, kScale, quantizeScalesMinsK } from "./k-common.ts";

export const Q4_K_BYTES = 144;

const fround = Math.fround;
const levels = new Uint8Array(QK_K);

export function dequantizeRowQ4_K(src: Uint8Array, dst: Float32Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_K_BYTES;
    const d = readF16(src, o);
    const min = readF16(src, o + 2);
    const s = o + 4;
    let q = o + 16;
    let y = i * QK_K;
    for (let is = 0; is < 8; is += 2) {
      const d1 = fround(d * kScale(src, s, is));
      const m1 = fround(min * kMin(src, s, is));
      const d2 = fround(d * kScale(src, s, is + 1));
      const m2 = fround(min * kMin(src, s, is + 1));
      for (let l = 0; l < 32; l++) dst[y + l] = fround(fround(d1 * (src[q + l] & 0xf)) - m1);
      for (let l = 0; l < 32; l++) dst[y + 32 + l] = fround(fround(d2 * (src[q + l] >> 4)) - m2);
      q += 32;
      y += 64;
    }
  }
}

export function quantizeRowQ4_K(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_K_BYTES;
    quantizeScalesMinsK(src, i * QK_K, dst, o, levels, 15, -1, 20);
    let q = o + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) dst[q + l] = levels[j + l] | (levels[j + l + 32] << 4);
      q += 32;
    }
  }
}

// Q5_0: 32 elements per block, 22 bytes, x = d * (q - 16), q in 0..31.
//
//   byte 0..1   d      fp16 scale
//   byte 2..5   qh     uint32 LE, bit j = 5th bit (0x10) of element j
//   byte 6..21  qs[16] low nibbles: element j (j < 16) = qs[j] & 0x0F, element j + 16 = qs[j] >> 4
//
// Reference (pinned): llama.cpp ggml/src/ggml-common.h block_q5_0;
// ggml/src/ggml-quants.c dequantize_row_q5_0, quantize_row_q5_0_ref. Both are bit-exact ports.

import { readF16, writeF16 } from "./float.ts";
import { toInt8 } from "./cmath.ts";

export const QK5_0 = 32;
export const Q5_0_BYTES = 22;

const fround = Math.fround;

export function dequantizeRowQ5_0(src: Uint8Array, dst: Float32Array, n: number): void {
  const nb = n / QK5_0;
  for (let i = 0; i < nb; i++) {
    const o = i * Q5_0_BYTES;
    const d = readF16(src, o);
    const qh = (src[o + 2] | (src[o + 3] << 8) | (src[o + 4] << 16) | (src[o + 5] << 24)) >>> 0;
    const y = i * QK5_0;
    for (let j = 0; j < 16; j++) {
      const b = src[o + 6 + j];
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      dst[y + j] = fround((((b & 0x0f) | xh0) - 16) * d);
      dst[y + j + 16] = fround((((b >> 4) | xh1) - 16) * d);
    }
  }
}

export function quantizeRowQ5_0(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK5_0;
  for (let i = 0; i < nb; i++) {
    const x = i * QK5_0;
    const o = i * Q5_0_BYTES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK5_0; j++) {
      const v = src[x + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fround(max / -16);
    const id = d !== 0 ? fround(1 / d) : 0; // C `d ? 1.0f/d : 0.0f` (NaN is truthy in C)
    writeF16(dst, o, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const x0 = fround(src[x + j] * id);
      const x1 = fround(src[x + 16 + j] * id);
      const xi0 = Math.min(31, toInt8(fround(x0 + 16.5))) & 0xff;
      const xi1 = Math.min(31, toInt8(fround(x1 + 16.5))) & 0xff;
      dst[o + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >> 4) << j;
      qh |= ((xi1 & 0x10) >> 4) << (j + 16);
    }
    dst[o + 2] = qh & 0xff;
    dst[o + 3] = (qh >>> 8) & 0xff;
    dst[o + 4] = (qh >>> 16) & 0xff;
    dst[o + 5] = (qh >>> 24) & 0xff;
  }
}

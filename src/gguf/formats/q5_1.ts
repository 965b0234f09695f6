// Q5_1: 32 elements per block, 24 bytes, x = d * q + m, q in 0..31.
//
//   byte 0..1   d      fp16 scale
//   byte 2..3   m      fp16 minimum
//   byte 4..7   qh     uint32 LE, bit j = 5th bit (0x10) of element j
//   byte 8..23  qs[16] low nibbles: element j (j < 16) = qs[j] & 0x0F, element j + 16 = qs[j] >> 4
//
// Reference (pinned): llama.cpp ggml/src/ggml-common.h block_q5_1;
// ggml/src/ggml-quants.c dequantize_row_q5_1, quantize_row_q5_1_ref. Both are bit-exact ports.

import { readF16, writeF16 } from "./float.ts";
import { toUint8 } from "./cmath.ts";

export const QK5_1 = 32;
export const Q5_1_BYTES = 24;

const fround = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

export function dequantizeRowQ5_1(src: Uint8Array, dst: Float32Array, n: number): void {
  const nb = n / QK5_1;
  for (let i = 0; i < nb; i++) {
    const o = i * Q5_1_BYTES;
    const d = readF16(src, o);
    const m = readF16(src, o + 2);
    const qh = (src[o + 4] | (src[o + 5] << 8) | (src[o + 6] << 16) | (src[o + 7] << 24)) >>> 0;
    const y = i * QK5_1;
    for (let j = 0; j < 16; j++) {
      const b = src[o + 8 + j];
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      dst[y + j] = fround(fround(((b & 0x0f) | xh0) * d) + m);
      dst[y + j + 16] = fround(fround(((b >> 4) | xh1) * d) + m);
    }
  }
}

export function quantizeRowQ5_1(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK5_1;
  for (let i = 0; i < nb; i++) {
    const x = i * QK5_1;
    const o = i * Q5_1_BYTES;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK5_1; j++) {
      const v = src[x + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fround(fround(max - min) / 31);
    const id = d !== 0 ? fround(1 / d) : 0; // C `d ? 1.0f/d : 0.0f` (NaN is truthy in C)
    writeF16(dst, o, d);
    writeF16(dst, o + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const x0 = fround(fround(src[x + j] - min) * id);
      const x1 = fround(fround(src[x + 16 + j] - min) * id);
      const xi0 = toUint8(fround(x0 + 0.5));
      const xi1 = toUint8(fround(x1 + 0.5));
      dst[o + 8 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >> 4) << j;
      qh |= ((xi1 & 0x10) >> 4) << (j + 16);
    }
    dst[o + 4] = qh & 0xff;
    dst[o + 5] = (qh >>> 8) & 0xff;
    dst[o + 6] = (qh >>> 16) & 0xff;
    dst[o + 7] = (qh >>> 24) & 0xff;
  }
}

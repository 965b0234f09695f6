// Q4_1: 32 elements per block, 20 bytes, x = d * q + m, q in 0..15.
//
//   byte 0..1   d      fp16 scale
//   byte 2..3   m      fp16 minimum
//   byte 4..19  qs[16] nibbles: element j (j < 16) = qs[j] & 0x0F, element j + 16 = qs[j] >> 4
//
// Reference (pinned): llama.cpp ggml/src/ggml-common.h block_q4_1;
// ggml/src/ggml-quants.c dequantize_row_q4_1, quantize_row_q4_1_ref. Both are bit-exact ports.

import { readF16, writeF16 } from "./float.ts";
import { toInt8 } from "./cmath.ts";

export const QK4_1 = 32;
export const Q4_1_BYTES = 20;

const fround = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

export function dequantizeRowQ4_1(src: Uint8Array, dst: Float32Array, n: number): void {
  const nb = n / QK4_1;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_1_BYTES;
    const d = readF16(src, o);
    const m = readF16(src, o + 2);
    const y = i * QK4_1;
    for (let j = 0; j < 16; j++) {
      const b = src[o + 4 + j];
      dst[y + j] = fround(fround((b & 0x0f) * d) + m);
      dst[y + j + 16] = fround(fround((b >> 4) * d) + m);
    }
  }
}

export function quantizeRowQ4_1(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK4_1;
  for (let i = 0; i < nb; i++) {
    const x = i * QK4_1;
    const o = i * Q4_1_BYTES;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK4_1; j++) {
      const v = src[x + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fround(fround(max - min) / 15);
    const id = d !== 0 ? fround(1 / d) : 0; // C `d ? 1.0f/d : 0.0f` (NaN is truthy in C)
    writeF16(dst, o, d);
    writeF16(dst, o + 2, min);
    for (let j = 0; j < 16; j++) {
      const x0 = fround(fround(src[x + j] - min) * id);
      const x1 = fround(fround(src[x + 16 + j] - min) * id);
      const xi0 = Math.min(15, toInt8(fround(x0 + 0.5))) & 0xff;
      const xi1 = Math.min(15, toInt8(fround(x1 + 0.5))) & 0xff;
      dst[o + 4 + j] = xi0 | (xi1 << 4);
    }
  }
}

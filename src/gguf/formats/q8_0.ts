// Q8_0: 32 elements per block, 34 bytes, x = d * q.
//
//   byte 0..1   d      fp16 scale
//   byte 2..33  qs[32] int8 quants, element j = qs[j]
//
// Reference (pinned): llama.cpp ggml/src/ggml-common.h block_q8_0;
// ggml/src/ggml-quants.c dequantize_row_q8_0, quantize_row_q8_0_ref. Both are bit-exact ports.

import { readF16, writeF16 } from "./float.ts";
import { roundf, toInt8 } from "./cmath.ts";

export const QK8_0 = 32;
export const Q8_0_BYTES = 34;

const fround = Math.fround;

export function dequantizeRowQ8_0(src: Uint8Array, dst: Float32Array, n: number): void {
  const nb = n / QK8_0;
  for (let i = 0; i < nb; i++) {
    const o = i * Q8_0_BYTES;
    const d = readF16(src, o);
    const y = i * QK8_0;
    for (let j = 0; j < QK8_0; j++) dst[y + j] = fround(((src[o + 2 + j] << 24) >> 24) * d);
  }
}

export function quantizeRowQ8_0(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK8_0;
  for (let i = 0; i < nb; i++) {
    const x = i * QK8_0;
    const o = i * Q8_0_BYTES;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(src[x + j]);
      amax = amax > a ? amax : a; // C MAX(amax, fabsf(v)), NaN behaviour included
    }
    const d = fround(amax / 127);
    const id = d !== 0 ? fround(1 / d) : 0; // C `d ? 1.0f/d : 0.0f` (NaN is truthy in C)
    writeF16(dst, o, d);
    for (let j = 0; j < QK8_0; j++) dst[o + 2 + j] = toInt8(roundf(fround(src[x + j] * id))) & 0xff;
  }
}

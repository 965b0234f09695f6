// Q4_0: 32 elements per block, 18 bytes, x = d * (q - 8), q in 0..15.
//
//   byte 0..1   d      fp16 scale
//   byte 2..17  qs[16] nibbles: element j (j < 16) = qs[j] & 0x0F, element j + 16 = qs[j] >> 4
//
// Reference (pinned): llama.cpp ggml/src/ggml-common.h block_q4_0;
// ggml/src/ggml-quants.c dequantize_row_q4_0, quantize_row_q4_0_ref. Both are bit-exact ports.

import { readF16, writeF16 } from "./float.ts";
import { toInt8 } from "./cmath.ts";

export const QK4_0 = 32;
export const Q4_0_BYTES = 18;

const fround = Math.fround;

export function dequantizeRowQ4_0(src: Uint8Array, dst: Float32Array, n: number): void {
  const nb = n / QK4_0;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_0_BYTES;
    const d = readF16(src, o);
    const y = i * QK4_0;
    for (let j = 0; j < 16; j++) {
      const b = src[o + 2 + j];
      dst[y + j] = fround(((b & 0x0f) - 8) * d);
      dst[y + j + 16] = fround(((b >> 4) - 8) * d);
    }
  }
}

export function quantizeRowQ4_0(src: Float32Array, dst: Uint8Array, n: number): void {
  const nb = n / QK4_0;
  for (let i = 0; i < nb; i++) {
    const x = i * QK4_0;
    const o = i * Q4_0_BYTES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = src[x + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fround(max / -8);
    const id = d !== 0 ? fround(1 / d) : 0; // C `d ? 1.0f/d : 0.0f` (NaN is truthy in C)
    writeF16(dst, o, d);
    for (let j = 0; j < 16; j++) {
      const x0 = fround(src[x + j] * id);
      const x1 = fround(src[x + 16 + j] * id);
      const xi0 = Math.min(15, toInt8(fround(x0 + 8.5))) & 0xff;
      const xi1 = Math.min(15, toInt8(fround(x1 + 8.5))) & 0xff;
      dst[o + 2 + j] = xi0 | (xi1 << 4);
    }
  }
}

// Scalar float formats: F32, F16 (IEEE binary16), BF16 (bfloat16), bit-exact with ggml.
//
// Layouts (little-endian, one element per "block"):
//   F32  : 4 bytes  [ s | e8 | m23 ]
//   F16  : 2 bytes  [ s | e5 | m10 ]
//   BF16 : 2 bytes  [ s | e8 | m7  ]   (the top half of an F32)
//
// Reference (pinned): llama.cpp ggml/src/ggml-impl.h
//   ggml_compute_fp16_to_fp32 / ggml_compute_fp32_to_fp16  (the Maratyszcza/FP16 float tricks)
//   ggml_compute_bf16_to_fp32 / ggml_compute_fp32_to_bf16
// and ggml/src/ggml.c ggml_fp16_to_fp32_row, ggml_fp32_to_fp16_row, ggml_bf16_to_fp32_row,
// ggml_fp32_to_bf16_row_ref.
//
// Behaviour pinned by those functions:
//   fp16 -> fp32 : exact; subnormals exact; NaN keeps its payload (shifted) and becomes quiet.
//   fp32 -> fp16 : round-to-nearest-even; overflow -> ±inf; results below half the smallest
//                  subnormal -> ±0; any NaN -> sign | 0x7E00 (payload dropped).
//   bf16 -> fp32 : bits << 16.
//   fp32 -> bf16 : round-to-nearest-even on the top 16 bits; NaN -> (bits >> 16) | 0x40 (quiet).
//
// All decoders write F32 *bits* (through a Uint32Array view of the destination) so that NaN
// payloads survive exactly as they do in C. The host is assumed little-endian, like GGUF.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fround = Math.fround;

function bitsToF32(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

function f32ToBits(v: number): number {
  f32[0] = v;
  return u32[0];
}

/** fp16 -> fp32 bits, a literal port of ggml_compute_fp16_to_fp32 (used to build the tables). */
function fp16ToF32BitsSlow(h: number): number {
  const w = (h << 16) >>> 0;
  const sign = (w & 0x80000000) >>> 0;
  const twoW = (w + w) >>> 0;
  const expOffset = (0xe0 << 23) >>> 0;
  const expScale = 2 ** -112;
  // fp32_from_bits(...) * exp_scale: the multiply happens in float; a NaN operand keeps its
  // payload and is made quiet (x86 SSE semantics), which we reproduce on the bits directly.
  const nBits = ((twoW >>> 4) + expOffset) >>> 0;
  let normalizedBits: number;
  if ((nBits & 0x7f800000) === 0x7f800000 && (nBits & 0x007fffff) !== 0) {
    normalizedBits = (nBits | 0x00400000) >>> 0;
  } else {
    normalizedBits = f32ToBits(fround(bitsToF32(nBits) * expScale));
  }
  const magicMask = (126 << 23) >>> 0;
  const denormalized = fround(bitsToF32(((twoW >>> 17) | magicMask) >>> 0) - 0.5);
  const denormalizedCutoff = (1 << 27) >>> 0;
  const result = (sign | (twoW < denormalizedCutoff ? f32ToBits(denormalized) : normalizedBits)) >>> 0;
  return result;
}

/** All 65536 fp16 patterns decoded to fp32 bits (exact, NaN payloads included). */
export const FP16_TO_F32_BITS: Uint32Array = new Uint32Array(65536);
/** All 65536 fp16 patterns decoded to fp32 values (for arithmetic; NaN payloads not meaningful). */
export const FP16_TO_F32: Float32Array = new Float32Array(FP16_TO_F32_BITS.buffer);
for (let h = 0; h < 65536; h++) FP16_TO_F32_BITS[h] = fp16ToF32BitsSlow(h);

/** Decode the fp16 stored little-endian at src[o], src[o+1]. */
export function readF16(src: Uint8Array, o: number): number {
  return FP16_TO_F32[src[o] | (src[o + 1] << 8)];
}

/** fp32 value -> fp16 bits; a literal port of ggml_compute_fp32_to_fp16. */
export function fp32ToFp16(f: number): number {
  f32[0] = f;
  return fp32BitsToFp16(u32[0]);
}

/** fp32 bits -> fp16 bits (ggml_compute_fp32_to_fp16 operating on the float's bit pattern). */
export function fp32BitsToFp16(w: number): number {
  const fv = bitsToF32(w);
  const scaleToInf = 2 ** 112;
  const scaleToZero = 2 ** -110;
  let base = fround(fround(Math.abs(fv) * scaleToInf) * scaleToZero);
  const shl1W = (w << 1) >>> 0;
  const sign = (w & 0x80000000) >>> 0;
  let bias = (shl1W & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = fround(bitsToF32(((bias >>> 1) + 0x07800000) >>> 0) + base);
  const bits = f32ToBits(base);
  const expBits = (bits >>> 13) & 0x00007c00;
  const mantissaBits = bits & 0x00000fff;
  const nonsign = expBits + mantissaBits;
  return ((sign >>> 16) | (shl1W > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

/** Write v as fp16 little-endian at dst[o]. */
export function writeF16(dst: Uint8Array, o: number, v: number): void {
  const h = fp32ToFp16(v);
  dst[o] = h & 0xff;
  dst[o + 1] = h >>> 8;
}

/** bf16 bits -> fp32 value. */
export function bf16ToFp32(h: number): number {
  return bitsToF32((h << 16) >>> 0);
}

/** fp32 bits -> bf16 bits, a port of ggml_compute_fp32_to_bf16. */
export function fp32BitsToBf16(w: number): number {
  if ((w & 0x7fffffff) > 0x7f800000) return ((w >>> 16) | 64) & 0xffff;
  return ((w + (0x7fff + ((w >>> 16) & 1))) >>> 16) & 0xffff;
}

/** fp32 value -> bf16 bits. */
export function fp32ToBf16(f: number): number {
  f32[0] = f;
  return fp32BitsToBf16(u32[0]);
}

function u32View(a: Float32Array, n: number): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, n);
}

export function dequantizeRowF32(src: Uint8Array, dst: Float32Array, n: number): void {
  new Uint8Array(dst.buffer, dst.byteOffset, n * 4).set(src.subarray(0, n * 4));
}

export function quantizeRowF32(src: Float32Array, dst: Uint8Array, n: number): void {
  dst.set(new Uint8Array(src.buffer, src.byteOffset, n * 4));
}

export function dequantizeRowF16(src: Uint8Array, dst: Float32Array, n: number): void {
  const out = u32View(dst, n);
  for (let i = 0, o = 0; i < n; i++, o += 2) out[i] = FP16_TO_F32_BITS[src[o] | (src[o + 1] << 8)];
}

export function quantizeRowF16(src: Float32Array, dst: Uint8Array, n: number): void {
  const inp = u32View(src, n);
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    const h = fp32BitsToFp16(inp[i]);
    dst[o] = h & 0xff;
    dst[o + 1] = h >>> 8;
  }
}

export function dequantizeRowBF16(src: Uint8Array, dst: Float32Array, n: number): void {
  const out = u32View(dst, n);
  for (let i = 0, o = 0; i < n; i++, o += 2) out[i] = ((src[o] | (src[o + 1] << 8)) << 16) >>> 0;
}

export function quantizeRowBF16(src: Float32Array, dst: Uint8Array, n: number): void {
  const inp = u32View(src, n);
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    const h = fp32BitsToBf16(inp[i]);
    dst[o] = h & 0xff;
    dst[o + 1] = h >>> 8;
  }
}

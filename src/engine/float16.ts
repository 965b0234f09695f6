// Rounding f32 values to fp16 / bf16 precision (the value, kept as a JS number / f32).
//
// Math.f16round exists in Node 24 but is a slow runtime call (~40 ns); this bit-level version
// (round to nearest even, like F16C's cvtps2ph and ggml's fp32→fp16) costs a few ns. The input is
// first rounded to f32, as in C where the value being converted is a float.

const fb = new Float32Array(1);
const ub = new Uint32Array(fb.buffer);
/** 1.5 * 2^28: adding and subtracting it rounds |x| < 2^-14 to a multiple of 2^-24 (fp16 subnormal step). */
const SUBNORMAL_MAGIC = 402653184;

/** The fp16 value nearest to f32(x) (ties to even; overflow to ±Infinity; NaN stays NaN). */
export function f16round(x: number): number {
  fb[0] = x;
  const u = ub[0];
  const a = u & 0x7fffffff;
  if (a < 0x38800000) {
    // |x| < 2^-14: fp16 subnormals (and zero) are the multiples of 2^-24
    const v = fb[0];
    const r = v + SUBNORMAL_MAGIC - SUBNORMAL_MAGIC;
    return r === 0 ? v * 0 : r; // keep the sign of zero
  }
  if (a >= 0x477ff000) {
    // |x| >= 65520 rounds past the largest fp16 (65504); NaN stays NaN
    if (a > 0x7f800000) return NaN;
    return u >>> 31 ? -Infinity : Infinity;
  }
  // normal: keep 10 of the 23 mantissa bits, round half to even (a carry may bump the exponent)
  ub[0] = (u + 0xfff + ((u >>> 13) & 1)) & 0xffffe000;
  return fb[0];
}

/** The bf16 value nearest to f32(x) (ties to even), as ggml_compute_fp32_to_bf16; NaN stays NaN. */
export function bf16round(x: number): number {
  fb[0] = x;
  const u = ub[0];
  if ((u & 0x7fffffff) > 0x7f800000) return NaN;
  ub[0] = ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) << 16;
  return fb[0];
}

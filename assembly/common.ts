// Helpers shared by the kernel families: scalar fp16 rounding, SIMD horizontal sums, the 4-row
// f64 → f32 store, the token tile's store, the token block and the unsigned-by-signed int8 pair
// dot. Not exported from the module.

// ---------------------------------------------------------------------------------------------
// Scalar helpers

// @ts-expect-error: AssemblyScript decorator
@inline
export function f16tof32(h: u32): f32 {
  return reinterpret<f32>(((h & 0x8000) << 16) | ((h & 0x7fff) << 13)) * reinterpret<f32>(0x77800000);
}

/** The fp16 value nearest to x (ties to even), as an f32 (src/engine/float16.ts f16round). */
export function f16round(x: f32): f32 {
  const u = reinterpret<u32>(x);
  const a = u & 0x7fffffff;
  if (a < 0x38800000) {
    const r = <f32>((<f64>x + 402653184.0) - 402653184.0);
    return r == 0 ? x * 0 : r;
  }
  if (a >= 0x477ff000) {
    if (a > 0x7f800000) return NaN;
    return u >> 31 ? -Infinity : Infinity;
  }
  return reinterpret<f32>((u + 0xfff + ((u >> 13) & 1)) & 0xffffe000);
}

// @ts-expect-error: AssemblyScript decorator
@inline
export function q8i(v: f32): i32 {
  return <i32>nearest<f32>(v);
}


// ---------------------------------------------------------------------------------------------
// SIMD building blocks

// @ts-expect-error: AssemblyScript decorator
@inline
export function hsum4(s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  // [Σs0, Σs1, Σs2, Σs3]
  const a = i32x4.add(v128.shuffle<i32>(s0, s1, 0, 4, 1, 5), v128.shuffle<i32>(s0, s1, 2, 6, 3, 7));
  const c = i32x4.add(v128.shuffle<i32>(s2, s3, 0, 4, 1, 5), v128.shuffle<i32>(s2, s3, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(a, c, 0, 1, 4, 5), v128.shuffle<i32>(a, c, 2, 3, 6, 7));
}

// @ts-expect-error: AssemblyScript decorator
@inline
export function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}


// ---------------------------------------------------------------------------------------------
// Matmul building blocks

// @ts-expect-error: AssemblyScript decorator
@inline
export function dotU8(w: v128, x: v128, R: bool): v128 {
  // i16x8 sums of adjacent products of 16 unsigned 7-bit weights w and 16 int8 activations x
  if (R) return i16x8.relaxed_dot_i8x16_i7x16_s(x, w);
  const lo = i16x8.mul(i16x8.extend_low_i8x16_u(w), i16x8.extend_low_i8x16_s(x));
  const hi = i16x8.mul(i16x8.extend_high_i8x16_u(w), i16x8.extend_high_i8x16_s(x));
  return i16x8.add(v128.shuffle<i16>(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14), v128.shuffle<i16>(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15));
}

/** [Σ_j m_kj·(bs_2j + bs_2j+1)] for rows k = 0..3: mins at mp (u8 [4][8]), the 16 activation sums at bs. */
// @ts-expect-error: AssemblyScript decorator
@inline
export function kMins4(mp: usize, bs: usize, ones: v128): v128 {
  const b = i16x8.narrow_i32x4_s(i32x4.dot_i16x8_s(v128.load(bs), ones), i32x4.dot_i16x8_s(v128.load(bs, 16), ones));
  return hsum4(
    i32x4.dot_i16x8_s(v128.load8x8_u(mp), b),
    i32x4.dot_i16x8_s(v128.load8x8_u(mp, 8), b),
    i32x4.dot_i16x8_s(v128.load8x8_u(mp, 16), b),
    i32x4.dot_i16x8_s(v128.load8x8_u(mp, 24), b),
  );
}

/** acc + (d·d_x)·f32(isum) for the 4 rows (d their scales, dx the token's d_x splatted), in f32. */
// @ts-expect-error: AssemblyScript decorator
@inline
export function kAcc4(acc: v128, d: v128, dx: v128, s: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.mul(d, dx), f32x4.convert_i32x4_s(s)));
}

/** A token tile's outputs: T tokens (1, 2, 4) × rows 4g..4g+3 (one f32x4 per token) at y. */
// @ts-expect-error: AssemblyScript decorator
@inline
export function storeTile(T: i32, y: usize, ys: i32, t0: i32, g: i32, a0: v128, a1: v128, a2: v128, a3: v128): void {
  const yp = y + (<usize>(t0 * ys + g * 4) << 2);
  const yr = <usize>ys << 2;
  v128.store(yp, a0);
  if (T > 1) v128.store(yp + yr, a1);
  if (T > 2) {
    v128.store(yp + 2 * yr, a2);
    v128.store(yp + 3 * yr, a3);
  }
}

/**
 * Tokens per block of a token-tiled matmul (a multiple of 4): the tiled kernels take the tokens a
 * block at a time and every row group of their range within each block, so the block's activations
 * (~256 KiB at bytesPerToken each) stay in L2 while the weights stream past; one pass over all the
 * tokens per row group re-read every activation from L3 for each group of 4 rows.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
export function tokenBlock(bytesPerToken: i32): i32 {
  return max(4, (262144 / bytesPerToken) & ~3);
}

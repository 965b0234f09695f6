import { dotU8, hsum } from "./common";

// Start-up probes of the runtime's relaxed SIMD, and the memory bandwidth probe of the benchmarks.

/** 1 if i16x8.relaxed_dot_i8x16_i7x16_s gives the exact pair sums for int8 × 7-bit unsigned operands. */
export function relaxed_dot_probe(): i32 {
  // every int8 against 0, 1, 63, 127 and a few in between, both lanes of a pair
  for (let a = -128; a < 128; a += 1) {
    for (let k = 0; k < 8; k++) {
      const bv = k == 0 ? 0 : k == 1 ? 1 : k == 2 ? 63 : k == 3 ? 127 : k * 13 + 7;
      const x = i8x16.replace_lane(i8x16.splat(<i8>a), 1, <i8>(-1 - a));
      const w = i8x16.replace_lane(i8x16.splat(<i8>bv), 1, <i8>(127 - bv));
      const want = a * bv + (-1 - a) * (127 - bv);
      const r = i16x8.relaxed_dot_i8x16_i7x16_s(x, w);
      if (<i32>i16x8.extract_lane_s(r, 0) != want) return 0;
      if (<i32>i16x8.extract_lane_s(dotU8(w, x, false), 0) != want) return 0;
    }
  }
  return 1;
}

/** 1 if f32x4.relaxed_madd is fused on this machine (one rounding), else 0. */
export function fma_probe(): i32 {
  const a = f32x4.splat(<f32>1 + <f32>1 / 4096); // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: the 2^-24 is lost when rounded first
  const r = f32x4.relaxed_madd(a, a, f32x4.splat(-(<f32>1 + <f32>1 / 2048)));
  return f32x4.extract_lane(r, 0) != 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Memory bandwidth probe (bench): sum of n bytes at p as u32 lanes, 64 bytes per iteration.

export function stream_sum(p: usize, n: i32): i32 {
  let a = i32x4.splat(0);
  let b = i32x4.splat(0);
  let c = i32x4.splat(0);
  let d = i32x4.splat(0);
  const end = p + <usize>n;
  for (let q = p; q < end; q += 64) {
    a = i32x4.add(a, v128.load(q));
    b = i32x4.add(b, v128.load(q, 16));
    c = i32x4.add(c, v128.load(q, 32));
    d = i32x4.add(d, v128.load(q, 48));
  }
  return hsum(i32x4.add(i32x4.add(a, b), i32x4.add(c, d)));
}

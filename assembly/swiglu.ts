import { expNeg2 } from "./exp";

// ---------------------------------------------------------------------------------------------
// SwiGLU (src/engine/ops.ts swiglu): g = f32(g / f32(1 + f32(exp(-g)))) · u, with exp the fdlibm
// algorithm that V8's Math.exp runs (src/base/ieee754.cc), so that the kernel gives the
// TypeScript function's bits (test/kernels/swiglu.test.ts compares them).

/** fdlibm's __ieee754_exp (as in V8's base::ieee754::exp). */
function fdexp(x: f64): f64 {
  const bits = reinterpret<u64>(x);
  let hx = <u32>(bits >> 32);
  const xsb = <i32>(hx >> 31);
  hx &= 0x7fffffff;
  let hi: f64 = 0;
  let lo: f64 = 0;
  let k: i32 = 0;
  if (hx >= 0x40862e42) {
    // |x| >= 709.78...
    if (hx >= 0x7ff00000) {
      if (((hx & 0xfffff) | <u32>bits) != 0) return x + x; // NaN
      return xsb == 0 ? x : 0.0; // exp(±inf) = inf, 0
    }
    if (x > 7.09782712893383973096e+02) return Infinity;
    if (x < -7.45133219101941108420e+02) return 0;
  }
  if (hx > 0x3fd62e42) {
    // |x| > 0.5 ln2
    if (hx < 0x3ff0a2b2) {
      // and |x| < 1.5 ln2
      if (x == 1.0) return 2.718281828459045;
      hi = x - (xsb == 0 ? 6.93147180369123816490e-01 : -6.93147180369123816490e-01);
      lo = xsb == 0 ? 1.90821492927058770002e-10 : -1.90821492927058770002e-10;
      k = 1 - xsb - xsb;
    } else {
      k = <i32>(1.44269504088896338700e+00 * x + (xsb == 0 ? 0.5 : -0.5));
      const t = <f64>k;
      hi = x - t * 6.93147180369123816490e-01;
      lo = t * 1.90821492927058770002e-10;
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    // |x| < 2^-28
    return 1 + x;
  } else {
    k = 0;
  }
  const t = x * x;
  const twopk = k >= -1021
    ? reinterpret<f64>(<u64>(0x3ff00000 + (k << 20)) << 32)
    : reinterpret<f64>(<u64>(0x3ff00000 + ((k + 1000) << 20)) << 32);
  const c = x - t * (1.66666666666666019037e-01 + t * (-2.77777777770155933842e-03 + t * (6.61375632143793436117e-05 + t * (-1.65339022054652515390e-06 + t * 4.13813679705723846039e-08))));
  if (k == 0) return 1 - ((x * c) / (c - 2.0) - x);
  const y = 1 - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * 8.988465674311579539e307;
    return y * twopk;
  }
  return y * twopk * 9.33263618503218878990e-302;
}

/** exp for the tests: fdexp(x). */
export function fd_exp(x: f64): f64 {
  return fdexp(x);
}

/** For swiglu's vector path: [-87, 88.5] (f32), the near-tie bias and window (i64), f32 1. */
const SWIGLU_CONSTS = memory.data<u32>([
  0xc2ae0000, 0xc2ae0000, 0xc2ae0000, 0xc2ae0000, 0x42b10000, 0x42b10000, 0x42b10000, 0x42b10000,
  0x0ffffff8, 0, 0x0ffffff8, 0, 0x1fffffff, 0, 0x1fffffff, 0, 0x10, 0, 0x10, 0, 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
]);

/**
 * f32(fdexp(y)) on 4 lanes: musl's f64 exp core (expNeg2, < 0.51 ulp) where its f32 rounding cannot
 * differ from fdexp's (< 1 ulp): both lie within 2 f64 ulps of exp(y), so they round to the same f32
 * unless exp(y) is within a few f64 ulps of a midpoint between two f32 — detected in the 29 bits the
 * rounding drops (window ±8 ulps) and, with lanes outside [-87, 88.5] (results outside f32's normal
 * range) or NaN, left to fdexp itself, lane by lane.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function expF32x4(y: v128): v128 {
  const c = SWIGLU_CONSTS;
  const ok = v128.and(f32x4.ge(y, v128.load(c)), f32x4.le(y, v128.load(c, 16)));
  if (i32x4.all_true(ok)) {
    const lo = expNeg2(f64x2.promote_low_f32x4(y));
    const hi = expNeg2(f64x2.promote_low_f32x4(v128.shuffle<f32>(y, y, 2, 3, 2, 3)));
    const bias = v128.load(c, 32);
    const mask = v128.load(c, 48);
    const win = v128.load(c, 64);
    const tie = v128.or(
      i64x2.lt_s(v128.and(i64x2.sub(lo, bias), mask), win),
      i64x2.lt_s(v128.and(i64x2.sub(hi, bias), mask), win),
    );
    if (!v128.any_true(tie)) return v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
  }
  let r = f32x4.replace_lane(y, 0, <f32>fdexp(<f64>f32x4.extract_lane(y, 0)));
  r = f32x4.replace_lane(r, 1, <f32>fdexp(<f64>f32x4.extract_lane(y, 1)));
  r = f32x4.replace_lane(r, 2, <f32>fdexp(<f64>f32x4.extract_lane(y, 2)));
  return f32x4.replace_lane(r, 3, <f32>fdexp(<f64>f32x4.extract_lane(y, 3)));
}

/** g[0..n) = silu(g)·u = (g / (1 + f32(exp(−g))))·u in f32, 4 at a time (expF32x4), as swiglu_generic. */
export function swiglu(g: usize, u: usize, n: i32): void {
  const one = v128.load(SWIGLU_CONSTS, 80);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = g + (<usize>i << 2);
    const x = v128.load(p);
    const e = expF32x4(f32x4.neg(x));
    v128.store(p, f32x4.mul(f32x4.div(x, f32x4.add(one, e)), v128.load(u + (<usize>i << 2))));
  }
  swiglu_generic(g + (<usize>i << 2), u + (<usize>i << 2), n - i);
}

/** swiglu's scalar twin: fdexp (fdlibm's exp, V8's Math.exp) per element. */
export function swiglu_generic(g: usize, u: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = g + (<usize>i << 2);
    const x = load<f32>(p);
    const e = <f32>fdexp(-<f64>x);
    store<f32>(p, (x / (<f32>1 + e)) * load<f32>(u + (<usize>i << 2)));
  }
}

/** swiglu on elements [r0, r1), in the pool's uniform kernel signature (g at w, u at xq). */
export function swiglu_mt(g: usize, _c: i32, r0: i32, r1: i32, u: usize, _xd: usize, _xs: usize, _t: i32, _y: usize, _ys: i32): void {
  swiglu(g + (<usize>r0 << 2), u + (<usize>r0 << 2), r1 - r0);
}

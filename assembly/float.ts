import { f16tof32 } from "./common";

// ---------------------------------------------------------------------------------------------
// Float weights (F32, F16, BF16), row after row, against f32 activations (already rounded to the
// weight's precision for F16/BF16). Products are exact in f64; four f64 accumulators
// (lanes i%4), combined as (a0 + a1) + (a2 + a3), then the tail in order.

// @ts-expect-error: AssemblyScript decorator
@inline
function f16x4(h: v128): v128 {
  // four fp16 (low halves of i32 lanes) → f32x4
  const bits = v128.or(i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16), i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13));
  return f32x4.mul(bits, f32x4.splat(reinterpret<f32>(0x77800000)));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function fma4(a01: v128, a23: v128, wv: v128, xv: v128, hi: bool): v128 {
  return hi
    ? f64x2.add(a23, f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<i32>(wv, wv, 2, 3, 0, 1)), f64x2.promote_low_f32x4(v128.shuffle<i32>(xv, xv, 2, 3, 0, 1))))
    : f64x2.add(a01, f64x2.mul(f64x2.promote_low_f32x4(wv), f64x2.promote_low_f32x4(xv)));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function floatW(kind: i32, wr: usize, i: i32): f32 {
  if (kind == 0) return load<f32>(wr + (i << 2));
  if (kind == 1) return f16tof32(<u32>load<u16>(wr + (i << 1)));
  return reinterpret<f32>(<u32>load<u16>(wr + (i << 1)) << 16);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function floatAcc(kind: i32, a01: v128, a23: v128, wv: v128, xv: v128, hi: bool): v128 {
  // F16 weights × fp16-rounded activations: the product of two fp16 values is exact in f32 (22
  // significant bits, no overflow or underflow), so one f32x4.mul gives the same f64 products
  if (kind == 1) {
    const p = f32x4.mul(wv, xv);
    return hi ? f64x2.add(a23, f64x2.promote_low_f32x4(v128.shuffle<i32>(p, p, 2, 3, 0, 1))) : f64x2.add(a01, f64x2.promote_low_f32x4(p));
  }
  return fma4(a01, a23, wv, xv, hi);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function floatLoad(kind: i32, wr: usize, i: i32): v128 {
  if (kind == 0) return v128.load(wr + (i << 2));
  if (kind == 1) return f16x4(v128.load16x4_u(wr + (i << 1)));
  return i32x4.shl(v128.load16x4_u(wr + (i << 1)), 16);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function floatStore(kind: i32, a01: v128, a23: v128, wr: usize, x: usize, n4: i32, nCols: i32, y: usize): void {
  let s = (f64x2.extract_lane(a01, 0) + f64x2.extract_lane(a01, 1)) + (f64x2.extract_lane(a23, 0) + f64x2.extract_lane(a23, 1));
  for (let i = n4; i < nCols; i++) s += <f64>floatW(kind, wr, i) * <f64>load<f32>(x + (i << 2));
  store<f32>(y, <f32>s);
}

/**
 * Rows r (weights at wr) and, when R = 2, rB (at w1) × tokens [t0, t0 + T) (R, T = 1, 2): each weight
 * vector is loaded and converted once per tile, and the R·T outputs' f64 add chains are independent
 * (one output's two chains are latency-bound on their own). Token tiles take adjacent rows; one token
 * (decode) takes rows from the two halves of the range, two sequential streams (as q8rTwo).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function floatTile(kind: i32, R: i32, T: i32, wr: usize, w1: usize, nCols: i32, x: usize, t0: i32, y: usize, ys: i32, r: i32, rB: i32): void {
  const n4 = nCols & ~3;
  const x0 = x + (<usize>(t0 * nCols) << 2);
  const x1 = x0 + (<usize>nCols << 2);
  let a01 = f64x2.splat(0), a23 = a01, b01 = a01, b23 = a01, c01 = a01, c23 = a01, d01 = a01, d23 = a01;
  for (let i = 0; i < n4; i += 4) {
    const wv = floatLoad(kind, wr, i);
    const xv = v128.load(x0 + (i << 2));
    a01 = floatAcc(kind, a01, a23, wv, xv, false);
    a23 = floatAcc(kind, a01, a23, wv, xv, true);
    if (T > 1) {
      const xw = v128.load(x1 + (i << 2));
      b01 = floatAcc(kind, b01, b23, wv, xw, false);
      b23 = floatAcc(kind, b01, b23, wv, xw, true);
      if (R > 1) {
        const wv1 = floatLoad(kind, w1, i);
        c01 = floatAcc(kind, c01, c23, wv1, xv, false);
        c23 = floatAcc(kind, c01, c23, wv1, xv, true);
        d01 = floatAcc(kind, d01, d23, wv1, xw, false);
        d23 = floatAcc(kind, d01, d23, wv1, xw, true);
      }
    } else if (R > 1) {
      const wv1 = floatLoad(kind, w1, i);
      c01 = floatAcc(kind, c01, c23, wv1, xv, false);
      c23 = floatAcc(kind, c01, c23, wv1, xv, true);
    }
  }
  const yp = y + (<usize>(t0 * ys + r) << 2);
  const yt = <usize>ys << 2;
  floatStore(kind, a01, a23, wr, x0, n4, nCols, yp);
  if (T > 1) floatStore(kind, b01, b23, wr, x1, n4, nCols, yp + yt);
  if (R > 1) {
    const yb = y + (<usize>(t0 * ys + rB) << 2);
    floatStore(kind, c01, c23, w1, x0, n4, nCols, yb);
    if (T > 1) floatStore(kind, d01, d23, w1, x1, n4, nCols, yb + yt);
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function floatRows(kind: i32, R: i32, wr: usize, rowBytes: usize, nCols: i32, x: usize, nTok: i32, y: usize, ys: i32, r: i32): void {
  let t = 0;
  for (; t + 2 <= nTok; t += 2) floatTile(kind, R, 2, wr, wr + rowBytes, nCols, x, t, y, ys, r, r + 1);
  if (t < nTok) floatTile(kind, R, 1, wr, wr + rowBytes, nCols, x, t, y, ys, r, r + 1);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmFloat(kind: i32, w: usize, nCols: i32, r0: i32, r1: i32, x: usize, nTok: i32, y: usize, ys: i32): void {
  const rowBytes = <usize>nCols * <usize>(kind == 0 ? 4 : 2);
  if (nTok == 1) {
    const half = (r1 - r0) >> 1;
    for (let r = r0; r < r0 + half; r++) floatTile(kind, 2, 1, w + <usize>r * rowBytes, w + <usize>(r + half) * rowBytes, nCols, x, 0, y, ys, r, r + half);
    if ((r1 - r0) & 1) floatTile(kind, 1, 1, w + <usize>(r1 - 1) * rowBytes, 0, nCols, x, 0, y, ys, r1 - 1, r1 - 1);
    return;
  }
  let r = r0;
  for (; r + 2 <= r1; r += 2) floatRows(kind, 2, w + <usize>r * rowBytes, rowBytes, nCols, x, nTok, y, ys, r);
  if (r < r1) floatRows(kind, 1, w + <usize>r * rowBytes, rowBytes, nCols, x, nTok, y, ys, r);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmFloatGeneric(kind: i32, w: usize, nCols: i32, r0: i32, r1: i32, x: usize, nTok: i32, y: usize, ys: i32): void {
  const es: usize = kind == 0 ? 4 : 2;
  const n4 = nCols & ~3;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * <usize>nCols * es;
    for (let t = 0; t < nTok; t++) {
      const xr = x + (<usize>(t * nCols) << 2);
      let a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0;
      for (let i = 0; i < n4; i += 4) {
        a0 += <f64>floatW(kind, wr, i) * <f64>load<f32>(xr + (i << 2));
        a1 += <f64>floatW(kind, wr, i + 1) * <f64>load<f32>(xr + ((i + 1) << 2));
        a2 += <f64>floatW(kind, wr, i + 2) * <f64>load<f32>(xr + ((i + 2) << 2));
        a3 += <f64>floatW(kind, wr, i + 3) * <f64>load<f32>(xr + ((i + 3) << 2));
      }
      let s = (a0 + a1) + (a2 + a3);
      for (let i = n4; i < nCols; i++) s += <f64>floatW(kind, wr, i) * <f64>load<f32>(xr + (i << 2));
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>s);
    }
  }
}

export function mm_f32(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, _xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmFloat(0, w, nCols, r0, r1, xq, nTok, y, ys);
}
export function mm_f32_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, _xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmFloatGeneric(0, w, nCols, r0, r1, xq, nTok, y, ys);
}
export function mm_f16(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, _xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmFloat(1, w, nCols, r0, r1, xq, nTok, y, ys);
}
export function mm_f16_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, _xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmFloatGeneric(1, w, nCols, r0, r1, xq, nTok, y, ys);
}
export function mm_bf16(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, _xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmFloat(2, w, nCols, r0, r1, xq, nTok, y, ys);
}
export function mm_bf16_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, _xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmFloatGeneric(2, w, nCols, r0, r1, xq, nTok, y, ys);
}

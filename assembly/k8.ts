import { dotU8, hsum4, tokenBlock } from "./common";

// ---------------------------------------------------------------------------------------------
// K8: Q5_K widened to one byte per quant at load time, 336 bytes per 256 elements, row after row:
// f32 d, f32 dmin, 8 bytes pad, i16 sc[16] (scale of each 16 elements), i16 m[16] (offset of each
// 16), u8 q[256]: q 0..31, m = the 6-bit min of the 32-element sub-block, x = d·sc·q − dmin·m.
// (Q6_K has its own layout at its own size: q6k.ts.)

/** acc (f64x2 [a, m] of one token) += [d·d_x·isum, dmin·d_x·msum] (lanes 0-1 of s: [isum, msum]). */
// @ts-expect-error: AssemblyScript decorator
@inline
function kAcc(acc: v128, s: v128, dd: v128, dx: f32): v128 {
  return f64x2.add(acc, f64x2.mul(f64x2.mul(dd, f64x2.splat(<f64>dx)), f64x2.convert_low_i32x4_s(s)));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function kStore(acc0: v128, acc1: v128, acc2: v128, acc3: v128, T: i32, y: usize, ys: i32, t0: i32, r: i32): void {
  const yp = y + (<usize>(t0 * ys + r) << 2);
  const yr = <usize>ys << 2;
  store<f32>(yp, <f32>(f64x2.extract_lane(acc0, 0) - f64x2.extract_lane(acc0, 1)));
  if (T > 1) store<f32>(yp + yr, <f32>(f64x2.extract_lane(acc1, 0) - f64x2.extract_lane(acc1, 1)));
  if (T > 2) {
    store<f32>(yp + 2 * yr, <f32>(f64x2.extract_lane(acc2, 0) - f64x2.extract_lane(acc2, 1)));
    store<f32>(yp + 3 * yr, <f32>(f64x2.extract_lane(acc3, 0) - f64x2.extract_lane(acc3, 1)));
  }
}


// @ts-expect-error: AssemblyScript decorator
@inline
function k8Sub(bp: usize, x: usize, k: i32, R: bool): v128 {
  // sub-blocks k, k+1 (32 quants at bp + 80 + 16k) · activations at x, scaled by sc[k], sc[k+1]
  const p0 = dotU8(v128.load(bp + 80 + (k << 4)), v128.load(x), R);
  const p1 = dotU8(v128.load(bp + 96 + (k << 4)), v128.load(x, 16), R);
  return i32x4.add(i32x4.dot_i16x8_s(p0, v128.load16_splat(bp + 16 + (k << 1))), i32x4.dot_i16x8_s(p1, v128.load16_splat(bp + 18 + (k << 1))));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function k8Tile(R: bool, T: i32, wr: usize, nsb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, t0: i32, y: usize, ys: i32, r: i32): void {
  const xr = <usize>nCols;
  const dr = <usize>nsb << 2;
  const br = <usize>nCols >> 3;
  let acc0 = f64x2.splat(0); // [a, m] of token t0
  let acc1 = acc0;
  let acc2 = acc0;
  let acc3 = acc0;
  for (let sb = 0; sb < nsb; sb++) {
    const bp = wr + <usize>sb * 336;
    const xp = xq + <usize>t0 * xr + (<usize>sb << 8);
    let v0 = i32x4.splat(0);
    let v1 = v0;
    let v2 = v0;
    let v3 = v0;
    for (let k = 0; k < 16; k += 2) {
      const x = xp + (<usize>k << 4);
      v0 = i32x4.add(v0, k8Sub(bp, x, k, R));
      if (T > 1) v1 = i32x4.add(v1, k8Sub(bp, x + xr, k, R));
      if (T > 2) {
        v2 = i32x4.add(v2, k8Sub(bp, x + 2 * xr, k, R));
        v3 = i32x4.add(v3, k8Sub(bp, x + 3 * xr, k, R));
      }
    }
    const mLo = v128.load(bp, 48);
    const mHi = v128.load(bp, 64);
    const bs = xs + <usize>t0 * br + (<usize>sb << 5);
    const d = load<f32>(bp);
    const dmin = load<f32>(bp, 4);
    const dd = f64x2.replace_lane(f64x2.splat(<f64>d), 1, <f64>dmin);
    const dx = xd + <usize>t0 * dr + (<usize>sb << 2);
    const m0 = i32x4.add(i32x4.dot_i16x8_s(v128.load(bs), mLo), i32x4.dot_i16x8_s(v128.load(bs, 16), mHi));
    let m1 = m0;
    if (T > 1) m1 = i32x4.add(i32x4.dot_i16x8_s(v128.load(bs + br), mLo), i32x4.dot_i16x8_s(v128.load(bs + br, 16), mHi));
    const h01 = hsum4(v0, m0, v1, m1);
    acc0 = kAcc(acc0, h01, dd, load<f32>(dx));
    if (T > 1) acc1 = kAcc(acc1, v128.shuffle<i32>(h01, h01, 2, 3, 0, 1), dd, load<f32>(dx + dr));
    if (T > 2) {
      const m2 = i32x4.add(i32x4.dot_i16x8_s(v128.load(bs + 2 * br), mLo), i32x4.dot_i16x8_s(v128.load(bs + 2 * br, 16), mHi));
      const m3 = i32x4.add(i32x4.dot_i16x8_s(v128.load(bs + 3 * br), mLo), i32x4.dot_i16x8_s(v128.load(bs + 3 * br, 16), mHi));
      const h23 = hsum4(v2, m2, v3, m3);
      acc2 = kAcc(acc2, h23, dd, load<f32>(dx + 2 * dr));
      acc3 = kAcc(acc3, v128.shuffle<i32>(h23, h23, 2, 3, 0, 1), dd, load<f32>(dx + 3 * dr));
    }
  }
  kStore(acc0, acc1, acc2, acc3, T, y, ys, t0, r);
}

/**
 * Two rows · one token, super-block by super-block in lockstep: rows far apart (the two halves of the
 * row range) make two sequential streams, and each activation load serves both (as q8rTwo). The same
 * operations per output as k8Tile with T = 1.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function k8Two(R: bool, wA: usize, wB: usize, nsb: i32, xq: usize, xd: usize, xs: usize, yA: usize, yB: usize): void {
  let accA = f64x2.splat(0); // [a, m]
  let accB = accA;
  for (let sb = 0; sb < nsb; sb++) {
    const pa = wA + <usize>sb * 336;
    const pb = wB + <usize>sb * 336;
    const xp = xq + (<usize>sb << 8);
    let va = i32x4.splat(0);
    let vb = va;
    for (let k = 0; k < 16; k += 2) {
      const x = xp + (<usize>k << 4);
      const x0 = v128.load(x);
      const x1 = v128.load(x, 16);
      const o = <usize>k << 4;
      const s = <usize>k << 1;
      va = i32x4.add(va, i32x4.add(
        i32x4.dot_i16x8_s(dotU8(v128.load(pa + 80 + o), x0, R), v128.load16_splat(pa + 16 + s)),
        i32x4.dot_i16x8_s(dotU8(v128.load(pa + 96 + o), x1, R), v128.load16_splat(pa + 18 + s)),
      ));
      vb = i32x4.add(vb, i32x4.add(
        i32x4.dot_i16x8_s(dotU8(v128.load(pb + 80 + o), x0, R), v128.load16_splat(pb + 16 + s)),
        i32x4.dot_i16x8_s(dotU8(v128.load(pb + 96 + o), x1, R), v128.load16_splat(pb + 18 + s)),
      ));
    }
    const bs = xs + (<usize>sb << 5);
    const b0 = v128.load(bs);
    const b1 = v128.load(bs, 16);
    const ma = i32x4.add(i32x4.dot_i16x8_s(b0, v128.load(pa, 48)), i32x4.dot_i16x8_s(b1, v128.load(pa, 64)));
    const mb = i32x4.add(i32x4.dot_i16x8_s(b0, v128.load(pb, 48)), i32x4.dot_i16x8_s(b1, v128.load(pb, 64)));
    const h = hsum4(va, ma, vb, mb);
    const dx = load<f32>(xd + (<usize>sb << 2));
    const ddA = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(pa)), 1, <f64>load<f32>(pa, 4));
    const ddB = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(pb)), 1, <f64>load<f32>(pb, 4));
    accA = kAcc(accA, h, ddA, dx);
    accB = kAcc(accB, v128.shuffle<i32>(h, h, 2, 3, 0, 1), ddB, dx);
  }
  store<f32>(yA, <f32>(f64x2.extract_lane(accA, 0) - f64x2.extract_lane(accA, 1)));
  store<f32>(yB, <f32>(f64x2.extract_lane(accB, 0) - f64x2.extract_lane(accB, 1)));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmK8(R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const rowBytes = <usize>nsb * 336;
  if (nTok == 1) {
    // decode: the two halves of the row range as two streams (k8Two)
    const half = (r1 - r0) >> 1;
    for (let r = r0; r < r0 + half; r++) {
      k8Two(R, w + <usize>r * rowBytes, w + <usize>(r + half) * rowBytes, nsb, xq, xd, xs, y + (<usize>r << 2), y + (<usize>(r + half) << 2));
    }
    if ((r1 - r0) & 1) k8Tile(R, 1, w + <usize>(r1 - 1) * rowBytes, nsb, xq, xd, xs, nCols, 0, y, ys, r1 - 1);
    return;
  }
  const tb = tokenBlock(nCols);
  for (let ta = 0; ta < nTok; ta += tb) {
    const tz = min(ta + tb, nTok);
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * rowBytes;
      let t = ta;
      for (; t + 4 <= tz; t += 4) k8Tile(R, 4, wr, nsb, xq, xd, xs, nCols, t, y, ys, r);
      if (t + 2 <= tz) {
        k8Tile(R, 2, wr, nsb, xq, xd, xs, nCols, t, y, ys, r);
        t += 2;
      }
      if (t < tz) k8Tile(R, 1, wr, nsb, xq, xd, xs, nCols, t, y, ys, r);
    }
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmK8Generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const rowBytes = <usize>nsb * 336;
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      let a: f64 = 0;
      let m: f64 = 0;
      for (let sb = 0; sb < nsb; sb++) {
        const bp = w + <usize>r * rowBytes + <usize>sb * 336;
        const xp = xq + <usize>(t * nCols + sb * 256);
        const bs = xs + (<usize>((t * nCols + sb * 256) >> 4) << 1);
        let isum = 0;
        let msum = 0;
        for (let k = 0; k < 16; k++) {
          let p = 0;
          for (let l = 0; l < 16; l++) p += <i32>load<u8>(bp + 80 + 16 * k + l) * <i32>load<i8>(xp + 16 * k + l);
          isum += p * <i32>load<i16>(bp + 16 + (k << 1));
          msum += <i32>load<i16>(bp + 48 + (k << 1)) * <i32>load<i16>(bs + (k << 1));
        }
        const dx = <f64>load<f32>(xd + (<usize>(t * nsb + sb) << 2));
        a = a + (<f64>load<f32>(bp) * dx) * <f64>isum;
        m = m + (<f64>load<f32>(bp, 4) * dx) * <f64>msum;
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>(a - m));
    }
  }
}

export function mm_k8(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8(true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_k8_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8(false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_k8_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8Generic(w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}

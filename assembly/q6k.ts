import { dotU8, tokenBlock } from "./common";

// ---------------------------------------------------------------------------------------------
// Q6KR: Q6_K at its own size (6.625 bits per weight against GGUF's 6.5625), rows interleaved 4 at a
// time (layout.ts q6kr), against Q8_K activations as int8 (xq, xd, xs as for Q4_K, see q4k.ts).
// Per group of 4 rows and super-block of 256 columns, 848 bytes: f32 d[4], then 8 units u = 2c + h
// (chunk c of 64 columns, half h) of 8 scale bytes each (offset 16 + 8u), then 8 units of 96 quant
// bytes each (offset 80 + 96u). Unit u covers the 16 columns 64c + 16h + l (l < 16, sub-block
// 4c + h, "low") and the 16 columns 32 further (sub-block 4c + 2 + h, "high"):
//   scales  16 + 8u + 2k + e: row k's scale (int8) of the low (e = 0) or high (e = 1) sub-block
//   ql      80 + 96u + 16·(l >> 2) + 4k + (l & 3): row k, low nibble = the low 4 bits of low column
//           l, high nibble = those of high column l (as q4kr)
//   qh      80 + 96u + 64 + 16·(l >> 3) + 4k + (l & 3): the top 2 bits of the same two columns, at
//           bit 4·((l >> 2) & 1) (low column) and 2 above it (high column)
// q is the GGUF quant + 32 (0..63: a 7-bit unsigned operand of the relaxed dot, like Q4_K's nibbles).
// One qh load completes two ql loads: (w & 15) | ((h << 4) & 48), ((w >> 4) & 15) | ((h << 2) & 48)
// for the first, (h & 48) and ((h >> 2) & 48) for the second (16-bit shifts: the mask drops
// whatever crossed a byte). Dotted with 4 activations splatted, each gives the 4 rows' i16 pair
// sums (≤ 2·63·127, so two of one sub-block still fit i16), scaled by pmaddwd against the rows'
// scales: i32 isum = Σ_j sc_j·Σ q·x. The offset is taken off in integers as ggml does:
// msum = 32·Σ_j sc_j·bs_j (bs: the activations' sums of 16), one pmaddwd per unit and token.
// Then, per row, in f64 (the numerics of the byte-per-quant layout this replaced, bit for bit):
//   a = a + (d·d_x)·f64(isum − msum);   y = f32(a)
// (That layout widened Q6_K to a byte per quant, 10.5 bits per weight: 1.6× the file in memory and in
// decode's weight traffic.)

/** Row k's low-sub-block scale in lanes 2k, 2k+1 (s: a unit's scales widened to i16). */
// @ts-expect-error: AssemblyScript decorator
@inline
function lowScales(s: v128): v128 {
  return v128.shuffle<i16>(s, s, 0, 0, 2, 2, 4, 4, 6, 6);
}
/** Row k's high-sub-block scale in lanes 2k, 2k+1. */
// @ts-expect-error: AssemblyScript decorator
@inline
function highScales(s: v128): v128 {
  return v128.shuffle<i16>(s, s, 1, 1, 3, 3, 5, 5, 7, 7);
}

/** msum/32 of the 4 rows for one token: Σ_u pmaddwd(unit u's scales, [bs_low, bs_high] of u). */
// @ts-expect-error: AssemblyScript decorator
@inline
function q6kMins(sp: usize, bs: usize): v128 {
  let m = i32x4.splat(0);
  for (let c = 0; c < 4; c++) {
    const b = v128.load64_splat(bs + (<usize>c << 3)); // bs of sub-blocks 4c..4c+3
    const p = sp + (<usize>c << 4);
    m = i32x4.add(m, i32x4.dot_i16x8_s(v128.load8x8_s(p), v128.shuffle<i16>(b, b, 0, 2, 0, 2, 0, 2, 0, 2)));
    m = i32x4.add(m, i32x4.dot_i16x8_s(v128.load8x8_s(p, 8), v128.shuffle<i16>(b, b, 1, 3, 1, 3, 1, 3, 1, 3)));
  }
  return m;
}

/** acc (f64x2 of 2 rows) + (d·d_x)·f64(v) for rows [0, 1] (H = false) or [2, 3] (H = true) of d and v. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q6kAcc(acc: v128, d: v128, dx: f32, v: v128, H: bool): v128 {
  const dd = H ? f64x2.promote_low_f32x4(v128.shuffle<i32>(d, d, 2, 3, 2, 3)) : f64x2.promote_low_f32x4(d);
  const vv = H ? f64x2.convert_low_i32x4_s(v128.shuffle<i32>(v, v, 2, 3, 2, 3)) : f64x2.convert_low_i32x4_s(v);
  return f64x2.add(acc, f64x2.mul(f64x2.mul(dd, f64x2.splat(<f64>dx)), vv));
}

/** [f32(lo[0]), f32(lo[1]), f32(hi[0]), f32(hi[1])] stored at p. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q6kStore(p: usize, lo: v128, hi: v128): void {
  const a = f32x4.demote_f64x2_zero(lo);
  const b = f32x4.demote_f64x2_zero(hi);
  v128.store(p, v128.shuffle<i32>(a, b, 0, 1, 4, 5));
}

/** One token's i32 Σ sc·Σ q·x over one ql pair (8 low and 8 high columns of the 4 rows). */
// @ts-expect-error: AssemblyScript decorator
@inline
function q6kTok(v: v128, lo0: v128, hi0: v128, lo1: v128, hi1: v128, x: usize, sl: v128, sh: v128, R: bool): v128 {
  const pl = i16x8.add(dotU8(lo0, v128.load32_splat(x), R), dotU8(lo1, v128.load32_splat(x, 4), R));
  const ph = i16x8.add(dotU8(hi0, v128.load32_splat(x, 32), R), dotU8(hi1, v128.load32_splat(x, 36), R));
  return i32x4.add(v, i32x4.add(i32x4.dot_i16x8_s(pl, sl), i32x4.dot_i16x8_s(ph, sh)));
}

/** One group of 4 rows × tokens [t0, t0 + T) (T = 1, 2, 4) → y. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q6krTile(R: bool, T: i32, wg: usize, nsb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, t0: i32, y: usize, ys: i32, g: i32): void {
  // constants from a runtime value: V8 would rematerialize a constant at each use
  const m4 = i8x16.splat(<i8>(0x0f | (nCols >>> 31)));
  const m48 = i8x16.splat(<i8>(0x30 | (nCols >>> 31)));
  const xr = <usize>nCols; // bytes per token of xq
  const dr = <usize>nsb << 2; // bytes per token of xd
  const br = <usize>nCols >> 3; // bytes per token of xs (i16 per 16)
  let a0 = f64x2.splat(0); // token t0, rows 0-1
  let b0 = a0; // token t0, rows 2-3
  let a1 = a0;
  let b1 = a0;
  let a2 = a0;
  let b2 = a0;
  let a3 = a0;
  let b3 = a0;
  for (let sb = 0; sb < nsb; sb++) {
    const bp = wg + <usize>sb * 848;
    const xp = xq + <usize>t0 * xr + (<usize>sb << 8);
    let v0 = i32x4.splat(0); // Σ sc·Σ q·x of the 4 rows, token t0
    let v1 = v0;
    let v2 = v0;
    let v3 = v0;
    // a loop over the 8 units with running pointers (V8 spills a fully unrolled tile, see q4k.ts),
    // a unit's two ql pairs unrolled
    for (let u = 0, qp = bp + 80, sp = bp + 16; u < 8; u++, qp += 96, sp += 8) {
      const s = v128.load8x8_s(sp);
      const sl = lowScales(s);
      const sh = highScales(s);
      const x = xp + (<usize>(u >> 1) << 6) + (<usize>(u & 1) << 4);
      for (let i = 0; i < 2; i++) {
        const w0 = v128.load(qp + (<usize>i << 5));
        const w1 = v128.load(qp + (<usize>i << 5), 16);
        const h = v128.load(qp + 64 + (<usize>i << 4));
        const lo0 = v128.or(v128.and(w0, m4), v128.and(i16x8.shl(h, 4), m48));
        const hi0 = v128.or(v128.and(i16x8.shr_u(w0, 4), m4), v128.and(i16x8.shl(h, 2), m48));
        const lo1 = v128.or(v128.and(w1, m4), v128.and(h, m48));
        const hi1 = v128.or(v128.and(i16x8.shr_u(w1, 4), m4), v128.and(i16x8.shr_u(h, 2), m48));
        const xi = x + (<usize>i << 3);
        v0 = q6kTok(v0, lo0, hi0, lo1, hi1, xi, sl, sh, R);
        if (T > 1) v1 = q6kTok(v1, lo0, hi0, lo1, hi1, xi + xr, sl, sh, R);
        if (T > 2) {
          v2 = q6kTok(v2, lo0, hi0, lo1, hi1, xi + 2 * xr, sl, sh, R);
          v3 = q6kTok(v3, lo0, hi0, lo1, hi1, xi + 3 * xr, sl, sh, R);
        }
      }
    }
    const d = v128.load(bp);
    const bs = xs + <usize>t0 * br + (<usize>sb << 5);
    const dx = xd + <usize>t0 * dr + (<usize>sb << 2);
    v0 = i32x4.sub(v0, i32x4.shl(q6kMins(bp + 16, bs), 5));
    a0 = q6kAcc(a0, d, load<f32>(dx), v0, false);
    b0 = q6kAcc(b0, d, load<f32>(dx), v0, true);
    if (T > 1) {
      v1 = i32x4.sub(v1, i32x4.shl(q6kMins(bp + 16, bs + br), 5));
      a1 = q6kAcc(a1, d, load<f32>(dx + dr), v1, false);
      b1 = q6kAcc(b1, d, load<f32>(dx + dr), v1, true);
    }
    if (T > 2) {
      v2 = i32x4.sub(v2, i32x4.shl(q6kMins(bp + 16, bs + 2 * br), 5));
      a2 = q6kAcc(a2, d, load<f32>(dx + 2 * dr), v2, false);
      b2 = q6kAcc(b2, d, load<f32>(dx + 2 * dr), v2, true);
      v3 = i32x4.sub(v3, i32x4.shl(q6kMins(bp + 16, bs + 3 * br), 5));
      a3 = q6kAcc(a3, d, load<f32>(dx + 3 * dr), v3, false);
      b3 = q6kAcc(b3, d, load<f32>(dx + 3 * dr), v3, true);
    }
  }
  const yp = y + (<usize>(t0 * ys + g * 4) << 2);
  const yr = <usize>ys << 2;
  q6kStore(yp, a0, b0);
  if (T > 1) q6kStore(yp + yr, a1, b1);
  if (T > 2) {
    q6kStore(yp + 2 * yr, a2, b2);
    q6kStore(yp + 3 * yr, a3, b3);
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ6K(R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const groupBytes = <usize>nsb * 848;
  const tb = nTok == 1 ? 1 : tokenBlock(nCols);
  for (let ta = 0; ta < nTok; ta += tb) {
    const tz = min(ta + tb, nTok);
    for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
      const wg = w + <usize>g * groupBytes;
      let t = ta;
      for (; t + 4 <= tz; t += 4) q6krTile(R, 4, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
      if (t + 2 <= tz) {
        q6krTile(R, 2, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
        t += 2;
      }
      if (t < tz) q6krTile(R, 1, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
    }
  }
}

export function mm_q6k(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ6K(true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q6k_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ6K(false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}

/** mm_q6k's scalar twin. */
export function mm_q6k_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  for (let r = r0; r < r1; r++) {
    const k = <usize>(r & 3);
    for (let t = 0; t < nTok; t++) {
      let a: f64 = 0;
      for (let sb = 0; sb < nsb; sb++) {
        const bp = w + (<usize>(r >> 2) * <usize>nsb + <usize>sb) * 848;
        const xp = xq + <usize>(t * nCols + sb * 256);
        const bs = xs + (<usize>((t * nCols + sb * 256) >> 4) << 1);
        let isum = 0;
        let msum = 0;
        for (let j = 0; j < 16; j++) {
          // sub-block j: chunk c = j >> 2, unit u = 2c + (j & 1), low (j & 2 == 0) or high columns
          const e = (j >> 1) & 1;
          const u = 2 * (j >> 2) + (j & 1);
          const sc = <i32>load<i8>(bp + 16 + 8 * u + 2 * k + e);
          let p = 0;
          for (let l = 0; l < 16; l++) {
            const b = <i32>load<u8>(bp + 80 + 96 * u + 16 * (l >> 2) + 4 * k + (l & 3));
            const h = <i32>load<u8>(bp + 80 + 96 * u + 64 + 16 * (l >> 3) + 4 * k + (l & 3));
            const q = (e != 0 ? b >> 4 : b & 15) | (((h >> (4 * ((l >> 2) & 1) + 2 * e)) & 3) << 4);
            p += q * <i32>load<i8>(xp + 16 * j + l);
          }
          isum += p * sc;
          msum += sc * <i32>load<i16>(bs + (j << 1));
        }
        const dx = <f64>load<f32>(xd + (<usize>(t * nsb + sb) << 2));
        a = a + (<f64>load<f32>(bp + 4 * k) * dx) * <f64>(isum - 32 * msum);
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>a);
    }
  }
}

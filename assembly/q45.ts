import { dotU8, storeTile, tokenBlock } from "./common";

// Q4R / Q8U: Q4_0, Q4_1 at nearly their own size (Q4R) and Q5_0, Q5_1 widened to a byte per quant
// (Q8U), rows interleaved 4 at a time (layout.ts), against int8 activations (quantize_q8i: xs =
// pairs [Q8_1 block sum s_x, Σq_x]). Per group of 4 rows and 32-column block: a header of f32 d[4]
// (hdr 16), or d[4] then m[4] for the _1 types (hdr 32); then the quants of the 4 rows interleaved
// by 4: Q4R keeps GGUF's nibble pairs (hdr + 16·(j >> 2) + 4k + (j & 3), j < 16: row k, low nibble =
// column j, high nibble = column j + 16; 64 bytes, 5 / 6 bits per weight against GGUF's 4.5 / 5),
// Q8U one byte per quant (hdr + 16·(j >> 2) + 4k + (j & 3), j < 32; 128 bytes, 8.5 / 10 bits per
// weight against 5.5 / 6). (A Q5 layout with the 5th bits in their own vector, joined in registers
// as q5k.ts does, read 6 / 7 bits per weight but lost 10-40% to the extra shifts and masks: Q5_0 is
// what llama.cpp's Q4_K files hold for rows not a multiple of 256, most of a 576- or 896-wide model.)
// The unsigned quants (0..15 / 0..31) are dotted with the activations by
// i16x8.relaxed_dot_i8x16_i7x16_s (dotU8); the offset comes off in integers:
//   isum = Σ q·x − off·Σx (exactly ggml's Σ(q − off)·x);  acc = acc + (d_w·d_x)·isum [+ m_w·s_x] in f32
// (ggml's scalar order, one f32x4 for the 4 rows), the same operations on every path.

/**
 * Half a block (nibble vectors 2s, 2s + 1: columns 8s..8s+7 and 16 further, rows 0-3) · one
 * token's activations at x (the block's column 8s) → i32x4 row sums. The 4 pair-sum vectors are
 * summed in i16 (≤ 4·2·31·127 < 2^15), widened by pmaddwd against ones (a register).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q45Half(W8: bool, lo0: v128, lo1: v128, hi0: v128, hi1: v128, x: usize, R: bool, ones: v128): v128 {
  // W8: 4 vectors of 16 consecutive columns; nibbles: columns x..x+7 and 16 further
  const lo = i16x8.add(dotU8(lo0, v128.load32_splat(x), R), dotU8(lo1, v128.load32_splat(x, 4), R));
  const hi = W8
    ? i16x8.add(dotU8(hi0, v128.load32_splat(x, 8), R), dotU8(hi1, v128.load32_splat(x, 12), R))
    : i16x8.add(dotU8(hi0, v128.load32_splat(x, 16), R), dotU8(hi1, v128.load32_splat(x, 20), R));
  const a = i16x8.add(lo, hi);
  return i32x4.dot_i16x8_s(a, ones);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function q45Acc(hdr: i32, OFF: i32, acc: v128, dw: v128, mw: v128, sums: v128, dx: usize, sx: usize): v128 {
  // acc + (d_w·d_x)·isum [+ m_w·s_x] for the 4 rows in f32 (dw, mw their scales and mins); f32(isum)
  // is exact (|isum| ≤ 32·31·128 < 2^24)
  let isum = sums;
  if (OFF != 0) isum = i32x4.sub(isum, i32x4.splat(OFF * load<i32>(sx, 4)));
  let r = f32x4.mul(f32x4.mul(dw, v128.load32_splat(dx)), f32x4.convert_i32x4_s(isum));
  if (hdr == 32) r = f32x4.add(r, f32x4.mul(mw, v128.load32_splat(sx)));
  return f32x4.add(acc, r);
}

/**
 * One group of 4 rows × tokens [t0, t0 + T) (T = 1, 2, 4): per block, two halves of two nibble
 * vectors each, unpacked once for the tile (a loop: V8 schedules an unrolled tile token after token
 * and spills the weights).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q45Tile(hdr: i32, W8: bool, OFF: i32, R: bool, T: i32, wg: usize, nb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, t0: i32, y: usize, ys: i32, g: i32): void {
  // constants from a runtime value: V8 would rematerialize a constant at each use
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  const m4 = i8x16.splat(<i8>(0x0f | (nCols >>> 31)));
  const gbb = <usize>(hdr + (W8 ? 128 : 64));
  const xr = <usize>nCols; // bytes per token of xq
  const dr = <usize>nb << 2; // bytes per token of xd
  const sr = <usize>nb << 3; // bytes per token of xs
  const x0 = xq + <usize>t0 * xr;
  const d0 = xd + <usize>t0 * dr;
  const s0 = xs + <usize>t0 * sr;
  let a0 = f32x4.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  for (let b = 0; b < nb; b++) {
    const wp = wg + <usize>b * gbb;
    const q = wp + <usize>hdr;
    let sums0 = i32x4.splat(0);
    let sums1 = sums0;
    let sums2 = sums0;
    let sums3 = sums0;
    // running pointers: V8 folds no address arithmetic into the loads
    for (let s = 0, qs = q, x = x0 + (<usize>b << 5); s < 2; s++, qs += W8 ? 64 : 32, x += W8 ? 16 : 8) {
      let lo0: v128, lo1: v128, hi0: v128, hi1: v128;
      if (W8) {
        // columns 16s..16s+15, as they are
        lo0 = v128.load(qs);
        lo1 = v128.load(qs, 16);
        hi0 = v128.load(qs, 32);
        hi1 = v128.load(qs, 48);
      } else {
        const w0 = v128.load(qs);
        const w1 = v128.load(qs, 16);
        lo0 = v128.and(w0, m4);
        hi0 = v128.and(i16x8.shr_u(w0, 4), m4);
        lo1 = v128.and(w1, m4);
        hi1 = v128.and(i16x8.shr_u(w1, 4), m4);
      }
      sums0 = i32x4.add(sums0, q45Half(W8, lo0, lo1, hi0, hi1, x, R, ones));
      if (T > 1) sums1 = i32x4.add(sums1, q45Half(W8, lo0, lo1, hi0, hi1, x + xr, R, ones));
      if (T > 2) {
        sums2 = i32x4.add(sums2, q45Half(W8, lo0, lo1, hi0, hi1, x + 2 * xr, R, ones));
        sums3 = i32x4.add(sums3, q45Half(W8, lo0, lo1, hi0, hi1, x + 3 * xr, R, ones));
      }
    }
    const bo = <usize>b << 2;
    const so = <usize>b << 3;
    const dw = v128.load(wp);
    const mw = hdr == 32 ? v128.load(wp, 16) : dw;
    a0 = q45Acc(hdr, OFF, a0, dw, mw, sums0, d0 + bo, s0 + so);
    if (T > 1) a1 = q45Acc(hdr, OFF, a1, dw, mw, sums1, d0 + dr + bo, s0 + sr + so);
    if (T > 2) {
      a2 = q45Acc(hdr, OFF, a2, dw, mw, sums2, d0 + 2 * dr + bo, s0 + 2 * sr + so);
      a3 = q45Acc(hdr, OFF, a3, dw, mw, sums3, d0 + 3 * dr + bo, s0 + 3 * sr + so);
    }
  }
  storeTile(T, y, ys, t0, g, a0, a1, a2, a3);
}

/** q45Half with the 4 splatted activation words given (one load serving two row groups). */
// @ts-expect-error: AssemblyScript decorator
@inline
function q45HalfS(lo0: v128, lo1: v128, hi0: v128, hi1: v128, x0: v128, x1: v128, x2: v128, x3: v128, R: bool, ones: v128): v128 {
  const a = i16x8.add(i16x8.add(dotU8(lo0, x0, R), dotU8(lo1, x1, R)), i16x8.add(dotU8(hi0, x2, R), dotU8(hi1, x3, R)));
  return i32x4.dot_i16x8_s(a, ones);
}

/**
 * Two groups of 4 rows · one token, block by block in lockstep: groups far apart in memory (the two
 * halves of the row range) make two sequential streams, and each activation load serves both (as
 * q8rTwo). The same operations per output as q45Tile with T = 1.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q45Two(hdr: i32, W8: bool, OFF: i32, R: bool, wA: usize, wB: usize, nb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, yA: usize, yB: usize): void {
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  const m4 = i8x16.splat(<i8>(0x0f | (nCols >>> 31)));
  const gbb = <usize>(hdr + (W8 ? 128 : 64));
  let accA = f32x4.splat(0);
  let accB = accA;
  for (let b = 0; b < nb; b++) {
    const pa = wA + <usize>b * gbb;
    const pb = wB + <usize>b * gbb;
    const qa = pa + <usize>hdr;
    const qb = pb + <usize>hdr;
    const xp = xq + (<usize>b << 5);
    let sa = i32x4.splat(0);
    let sb = sa;
    for (let s = 0; s < 2; s++) {
      const o = <usize>s << 5;
      const x = xp + (<usize>s << 3);
      const x0 = v128.load32_splat(x);
      const x1 = v128.load32_splat(x, 4);
      const x2 = v128.load32_splat(x, 16);
      const x3 = v128.load32_splat(x, 20);
      if (W8) {
        sa = i32x4.add(sa, q45HalfS(v128.load(qa + o), v128.load(qa + o, 16), v128.load(qa + o, 64), v128.load(qa + o, 80), x0, x1, x2, x3, R, ones));
        sb = i32x4.add(sb, q45HalfS(v128.load(qb + o), v128.load(qb + o, 16), v128.load(qb + o, 64), v128.load(qb + o, 80), x0, x1, x2, x3, R, ones));
      } else {
        const a0 = v128.load(qa + o);
        const a1 = v128.load(qa + o, 16);
        sa = i32x4.add(sa, q45HalfS(v128.and(a0, m4), v128.and(a1, m4), v128.and(i16x8.shr_u(a0, 4), m4), v128.and(i16x8.shr_u(a1, 4), m4), x0, x1, x2, x3, R, ones));
        const b0 = v128.load(qb + o);
        const b1 = v128.load(qb + o, 16);
        sb = i32x4.add(sb, q45HalfS(v128.and(b0, m4), v128.and(b1, m4), v128.and(i16x8.shr_u(b0, 4), m4), v128.and(i16x8.shr_u(b1, 4), m4), x0, x1, x2, x3, R, ones));
      }
    }
    const dx = xd + (<usize>b << 2);
    const sx = xs + (<usize>b << 3);
    const dwa = v128.load(pa);
    const dwb = v128.load(pb);
    accA = q45Acc(hdr, OFF, accA, dwa, hdr == 32 ? v128.load(pa, 16) : dwa, sa, dx, sx);
    accB = q45Acc(hdr, OFF, accB, dwb, hdr == 32 ? v128.load(pb, 16) : dwb, sb, dx, sx);
  }
  v128.store(yA, accA);
  v128.store(yB, accB);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ45(hdr: i32, W8: bool, OFF: i32, R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * <usize>(hdr + (W8 ? 128 : 64));
  if (nTok == 1) {
    // decode: the two halves of the row range as two streams (q45Two)
    const g0 = r0 >> 2;
    const g1 = (r1 + 3) >> 2;
    const half = (g1 - g0) >> 1;
    for (let g = g0; g < g0 + half; g++) {
      q45Two(hdr, W8, OFF, R, w + <usize>g * gb, w + <usize>(g + half) * gb, nb, xq, xd, xs, nCols, y + (<usize>(g << 2) << 2), y + (<usize>((g + half) << 2) << 2));
    }
    if ((g1 - g0) & 1) q45Tile(hdr, W8, OFF, R, 1, w + <usize>(g1 - 1) * gb, nb, xq, xd, xs, nCols, 0, y, ys, g1 - 1);
    return;
  }
  const tb = tokenBlock(nCols);
  for (let ta = 0; ta < nTok; ta += tb) {
    const tz = min(ta + tb, nTok);
    for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
      const wg = w + <usize>g * gb;
      let t = ta;
      for (; t + 4 <= tz; t += 4) q45Tile(hdr, W8, OFF, R, 4, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
      if (t + 2 <= tz) {
        q45Tile(hdr, W8, OFF, R, 2, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
        t += 2;
      }
      if (t < tz) q45Tile(hdr, W8, OFF, R, 1, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
    }
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ45Generic(hdr: i32, W8: bool, OFF: i32, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gbb = <usize>(hdr + (W8 ? 128 : 64));
  const gb = <usize>nb * gbb;
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    for (let k = 0; k < 4; k++) {
      for (let t = 0; t < nTok; t++) {
        let acc: f32 = 0;
        for (let b = 0; b < nb; b++) {
          const wp = w + <usize>g * gb + <usize>b * gbb;
          const xp = xq + <usize>(t * nCols + b * 32);
          const sp = xs + (<usize>(t * nb + b) << 3);
          let isum = 0;
          for (let j = 0; j < 32; j++) {
            let q: i32;
            if (W8) q = <i32>load<u8>(wp + hdr + 16 * (j >> 2) + 4 * k + (j & 3));
            else {
              const v = <i32>load<u8>(wp + hdr + 16 * ((j & 15) >> 2) + 4 * k + (j & 3));
              q = j < 16 ? v & 15 : v >> 4;
            }
            isum += q * <i32>load<i8>(xp + j);
          }
          isum -= OFF * load<i32>(sp, 4);
          let sc = (load<f32>(wp + 4 * k) * load<f32>(xd + (<usize>(t * nb + b) << 2))) * <f32>isum;
          if (hdr == 32) sc = sc + load<f32>(wp + 16 + 4 * k) * load<f32>(sp);
          acc = acc + sc;
        }
        store<f32>(y + (<usize>(t * ys + g * 4 + k) << 2), acc);
      }
    }
  }
}

export function mm_q40(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45(16, false, 8, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q40_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45(16, false, 8, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q40_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45Generic(16, false, 8, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q41(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45(32, false, 0, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q41_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45(32, false, 0, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q41_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45Generic(32, false, 0, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q50(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45(16, true, 16, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q50_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45(16, true, 16, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q50_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45Generic(16, true, 16, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q51(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45(32, true, 0, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q51_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45(32, true, 0, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q51_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ45Generic(32, true, 0, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}

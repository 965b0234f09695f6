import { dotU8, storeTile, tokenBlock } from "./common";

// Q8U / Q8R1: Q4_0 / Q5_0 (Q8U: 144 bytes per group-block, f32 d[4], 4×32 quants stored unsigned,
// 0..15 / 0..31, x = d·(q − off), off = 8 / 16) and Q4_1 / Q5_1 (Q8R1: 160 bytes, f32 d[4], f32 m[4],
// 4×32 quants 0..15 / 0..31, x = d·q + m) — the quants of the 4 rows interleaved by chunks of 4
// columns (see q8uTile), against int8 activations (quantize_q8i: xs = pairs [Q8_1
// block sum s_x, Σq_x]). The unsigned quants are dotted with the activations by
// i16x8.relaxed_dot_i8x16_i7x16_s (see dotU8 below); the offset comes off in integers:
//   isum = Σ q·x − off·Σx (exactly ggml's Σ(q − off)·x);  acc = acc + (d_w·d_x)·isum [+ m_w·s_x] in f32
// (ggml's scalar order, one f32x4 for the 4 rows), the same operations on every path.

// @ts-expect-error: AssemblyScript decorator
@inline
function q8uDot(w: usize, x: usize, R: bool, ones: v128): v128 {
  // 32 columns of the 4 rows → [Σ r0, Σ r1, Σ r2, Σ r3]
  const a = q8uHalf(v128.load(w), v128.load(w, 16), v128.load(w, 32), v128.load(w, 48), x, R, ones);
  return i32x4.add(a, q8uHalf(v128.load(w, 64), v128.load(w, 80), v128.load(w, 96), v128.load(w, 112), x + 16, R, ones));
}

/**
 * 16 columns (4 chunks w0..w3, each columns c..c+3 of rows 0..3) · the token's int8 activations at
 * x, 4 at a time splatted to the 4 lanes → i32x4 row sums (the 4 chunks summed in i16: ≤ 4·2·31·127 < 2^15; pairs widened by pmaddwd against ones, a register:
 * extadd_pairwise loads a constant each time).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q8uHalf(w0: v128, w1: v128, w2: v128, w3: v128, x: usize, R: bool, ones: v128): v128 {
  const a = i16x8.add(
    i16x8.add(dotU8(w0, v128.load32_splat(x), R), dotU8(w1, v128.load32_splat(x, 4), R)),
    i16x8.add(dotU8(w2, v128.load32_splat(x, 8), R), dotU8(w3, v128.load32_splat(x, 12), R)),
  );
  return i32x4.dot_i16x8_s(a, ones);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function q8uAcc(hdr: i32, OFF: i32, acc: v128, dw: v128, mw: v128, sums: v128, dx: usize, sx: usize): v128 {
  // acc + (d_w·d_x)·isum [+ m_w·s_x] for the 4 rows in f32 (dw, mw their scales and mins); f32(isum)
  // is exact (|isum| ≤ 32·31·128 < 2^24)
  let isum = sums;
  if (OFF != 0) isum = i32x4.sub(isum, i32x4.splat(OFF * load<i32>(sx, 4)));
  let r = f32x4.mul(f32x4.mul(dw, v128.load32_splat(dx)), f32x4.convert_i32x4_s(isum));
  if (hdr == 32) r = f32x4.add(r, f32x4.mul(mw, v128.load32_splat(sx)));
  return f32x4.add(acc, r);
}

/**
 * One group of 4 rows × tokens [t0, t0 + T) (T = 1, 2, 4). The 128 quant bytes of a group-block
 * hold the 4 rows by chunks of 4 columns (byte 16·(j >> 2) + 4·k + (j & 3): row k, column j).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q8uTile(hdr: i32, OFF: i32, R: bool, T: i32, wg: usize, nb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, t0: i32, y: usize, ys: i32, g: i32): void {
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31))); // a runtime value: V8 would rematerialize a constant
  const gbb = <usize>(hdr + 128);
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
    const xp = x0 + (<usize>b << 5);
    const q = wp + <usize>hdr;
    const bo = <usize>b << 2;
    const so = <usize>b << 3;
    let sums0 = i32x4.splat(0);
    let sums1 = sums0;
    let sums2 = sums0;
    let sums3 = sums0;
    if (T == 1) sums0 = q8uDot(q, xp, R, ones);
    else {
      // tiles: a loop over the block's two halves (unrolled, V8 schedules token after token and
      // spills the weights)
      let qh = q;
      let x = xp;
      for (let h = 0; h < 2; h++) {
        const w0 = v128.load(qh);
        const w1 = v128.load(qh, 16);
        const w2 = v128.load(qh, 32);
        const w3 = v128.load(qh, 48);
        sums0 = i32x4.add(sums0, q8uHalf(w0, w1, w2, w3, x, R, ones));
        sums1 = i32x4.add(sums1, q8uHalf(w0, w1, w2, w3, x + xr, R, ones));
        if (T > 2) {
          sums2 = i32x4.add(sums2, q8uHalf(w0, w1, w2, w3, x + 2 * xr, R, ones));
          sums3 = i32x4.add(sums3, q8uHalf(w0, w1, w2, w3, x + 3 * xr, R, ones));
        }
        qh += 64;
        x += 16;
      }
    }
    const dw = v128.load(wp);
    const mw = hdr == 32 ? v128.load(wp, 16) : dw;
    a0 = q8uAcc(hdr, OFF, a0, dw, mw, sums0, d0 + bo, s0 + so);
    if (T > 1) a1 = q8uAcc(hdr, OFF, a1, dw, mw, sums1, d0 + dr + bo, s0 + sr + so);
    if (T > 2) {
      a2 = q8uAcc(hdr, OFF, a2, dw, mw, sums2, d0 + 2 * dr + bo, s0 + 2 * sr + so);
      a3 = q8uAcc(hdr, OFF, a3, dw, mw, sums3, d0 + 3 * dr + bo, s0 + 3 * sr + so);
    }
  }
  storeTile(T, y, ys, t0, g, a0, a1, a2, a3);
}

/**
 * Two groups of 4 rows · one token, block by block in lockstep: groups far apart in memory (the two
 * halves of the row range) make two sequential streams, and each activation load serves both (as
 * q8rTwo). The same operations per output as q8uTile with T = 1.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q8uTwo(hdr: i32, OFF: i32, R: bool, wA: usize, wB: usize, nb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, yA: usize, yB: usize): void {
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  const gbb = <usize>(hdr + 128);
  let accA = f32x4.splat(0);
  let accB = accA;
  for (let b = 0; b < nb; b++) {
    const pa = wA + <usize>b * gbb;
    const pb = wB + <usize>b * gbb;
    const qa = pa + <usize>hdr;
    const qb = pb + <usize>hdr;
    const xp = xq + (<usize>b << 5);
    const x00 = v128.load32_splat(xp, 0);
    const x01 = v128.load32_splat(xp, 4);
    const x02 = v128.load32_splat(xp, 8);
    const x03 = v128.load32_splat(xp, 12);
    const a0 = i32x4.dot_i16x8_s(i16x8.add(
      i16x8.add(dotU8(v128.load(qa, 0), x00, R), dotU8(v128.load(qa, 16), x01, R)),
      i16x8.add(dotU8(v128.load(qa, 32), x02, R), dotU8(v128.load(qa, 48), x03, R)),
    ), ones);
    const b0 = i32x4.dot_i16x8_s(i16x8.add(
      i16x8.add(dotU8(v128.load(qb, 0), x00, R), dotU8(v128.load(qb, 16), x01, R)),
      i16x8.add(dotU8(v128.load(qb, 32), x02, R), dotU8(v128.load(qb, 48), x03, R)),
    ), ones);
    const x10 = v128.load32_splat(xp, 16);
    const x11 = v128.load32_splat(xp, 20);
    const x12 = v128.load32_splat(xp, 24);
    const x13 = v128.load32_splat(xp, 28);
    const a1 = i32x4.dot_i16x8_s(i16x8.add(
      i16x8.add(dotU8(v128.load(qa, 64), x10, R), dotU8(v128.load(qa, 80), x11, R)),
      i16x8.add(dotU8(v128.load(qa, 96), x12, R), dotU8(v128.load(qa, 112), x13, R)),
    ), ones);
    const b1 = i32x4.dot_i16x8_s(i16x8.add(
      i16x8.add(dotU8(v128.load(qb, 64), x10, R), dotU8(v128.load(qb, 80), x11, R)),
      i16x8.add(dotU8(v128.load(qb, 96), x12, R), dotU8(v128.load(qb, 112), x13, R)),
    ), ones);
    const sa = i32x4.add(a0, a1);
    const sb = i32x4.add(b0, b1);
    const dx = xd + (<usize>b << 2);
    const sx = xs + (<usize>b << 3);
    const dwa = v128.load(pa);
    const dwb = v128.load(pb);
    accA = q8uAcc(hdr, OFF, accA, dwa, hdr == 32 ? v128.load(pa, 16) : dwa, sa, dx, sx);
    accB = q8uAcc(hdr, OFF, accB, dwb, hdr == 32 ? v128.load(pb, 16) : dwb, sb, dx, sx);
  }
  v128.store(yA, accA);
  v128.store(yB, accB);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ8U(hdr: i32, OFF: i32, R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * <usize>(hdr + 128);
  if (nTok == 1) {
    // decode: the two halves of the row range as two streams (q8uTwo)
    const g0 = r0 >> 2;
    const g1 = (r1 + 3) >> 2;
    const half = (g1 - g0) >> 1;
    for (let g = g0; g < g0 + half; g++) {
      q8uTwo(hdr, OFF, R, w + <usize>g * gb, w + <usize>(g + half) * gb, nb, xq, xd, xs, nCols, y + (<usize>(g << 2) << 2), y + (<usize>((g + half) << 2) << 2));
    }
    if ((g1 - g0) & 1) q8uTile(hdr, OFF, R, 1, w + <usize>(g1 - 1) * gb, nb, xq, xd, xs, nCols, 0, y, ys, g1 - 1);
    return;
  }
  const tb = tokenBlock(nCols);
  for (let ta = 0; ta < nTok; ta += tb) {
    const tz = min(ta + tb, nTok);
    for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
      const wg = w + <usize>g * gb;
      let t = ta;
      for (; t + 4 <= tz; t += 4) q8uTile(hdr, OFF, R, 4, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
      if (t + 2 <= tz) {
        q8uTile(hdr, OFF, R, 2, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
        t += 2;
      }
      if (t < tz) q8uTile(hdr, OFF, R, 1, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
    }
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ8UGeneric(hdr: i32, OFF: i32, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gbb = <usize>(hdr + 128);
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
          for (let j = 0; j < 32; j++) isum += <i32>load<u8>(wp + hdr + ((j >> 2) << 4) + 4 * k + (j & 3)) * <i32>load<i8>(xp + j);
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
  mmQ8U(16, 8, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q40_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8U(16, 8, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q40_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8UGeneric(16, 8, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q50(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8U(16, 16, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q50_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8U(16, 16, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q50_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8UGeneric(16, 16, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q8r1(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8U(32, 0, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q8r1_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8U(32, 0, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q8r1_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8UGeneric(32, 0, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}

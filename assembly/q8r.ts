import { storeTile, tokenBlock } from "./common";

// ---------------------------------------------------------------------------------------------
// Q8R: Q8_0, 4-row interleaved int8 blocks. Group g = rows 4g..4g+3; block b of the group, 144
// bytes: f32 d[4], then the 4 rows' 32 int8 quants interleaved by chunks of 4 columns (byte
// 16 + 16·(j >> 2) + 4·k + (j & 3) holds row k's column j), so one 16-byte load holds columns
// c..c+3 of the 4 rows and a dot product against those 4 activations gives the 4 rows' sums.
//
// Activations (quantize_q8): i16 quants q, and per token row of 2·n bytes the int8 magnitudes |q|
// then the sign masks (q < 0 ? -1 : 0).
//  - One token (decode, the hot path), relaxed: |q| is a 7-bit unsigned operand, so
//    i16x8.relaxed_dot_i8x16_i7x16_s(w ⊙ sign(q), |q|) (one pmaddubsw on x86) gives exact pair
//    sums, widened by one pmaddwd against ones: 8 µops per 16 weights against 11 for the i16 path.
//    w ⊙ sign(q) = (w ^ m) − m overflows only for w = −128, which ggml's quantizer never writes;
//    a tensor holding one is packed with kernel mm_q8r_x (layout.ts).
//  - Token tiles (prefill, batches) and the `_x` variant: the weights widened to i16 once per tile,
//    i32x4.dot_i16x8_s against the token's 4 activations (c..c+3, splatted to both halves).
// Every output is the same sequence of operations whatever the path or tile: the exact integer sum
// of a block, then acc = acc + (d_w·d_x)·isum in f32 (ggml's scalar order), block after block — so
// a batch of sequences gives exactly the logits of each sequence alone. (An f64 sum takes two f64x2
// halves per token: ~12 vector ops per block and token against ~5 for one f32x4, in a tile whose
// dot products take ~32.)
//
// (V8 schedules a fully unrolled token tile token after token and spills the widened weights; a
// loop over chunk pairs keeps each chunk's weights in registers while every token uses them.
// Decoding two adjacent row groups at a time, sharing the activation loads, was slower from L3: the
// two streams a group apart defeat the prefetcher for narrow matrices. Two groups from the two
// halves of the row range, far apart, are faster (q8rTwo, and likewise q4krTwo): ×1.2 from
// DRAM at one token in bench:ab — one thread keeps two sequential streams in flight.)

// @ts-expect-error: AssemblyScript decorator
@inline
function q8Acc(acc: v128, dw: v128, dx: v128, isum: v128): v128 {
  // acc + (d_w·d_x)·isum for the 4 rows (dw their scales, dx the token's splatted), in f32 as ggml's
  // scalar ggml_vec_dot_q8_0_q8_0 (sumf += sumi·(d_x·d_w)); f32(isum) is exact (|isum| < 2^24)
  return f32x4.add(acc, f32x4.mul(f32x4.mul(dw, dx), f32x4.convert_i32x4_s(isum)));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function q8aChunk(s: v128, w: v128, a: v128, m: v128, ones: v128): v128 {
  // s + the 4 rows' sums over 4 columns: w (16 int8 weights), a = |q| and m = sign masks splatted
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.sub(v128.xor(w, m), m), a), ones));
}

/** One group of 4 rows · one token (relaxed int8 path) → its 4 outputs at y. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q8rOne(wg: usize, nb: i32, xa: usize, xm: usize, xd: usize, ones: v128, y: usize): void {
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wp = wg + <usize>b * 144;
    const a = xa + (<usize>b << 5);
    const m = xm + (<usize>b << 5);
    // 8 chunks, unrolled with immediate offsets (an address add per load costs as much as the work)
    let s = q8aChunk(i32x4.splat(0), v128.load(wp, 16), v128.load32_splat(a), v128.load32_splat(m), ones);
    s = q8aChunk(s, v128.load(wp, 32), v128.load32_splat(a, 4), v128.load32_splat(m, 4), ones);
    s = q8aChunk(s, v128.load(wp, 48), v128.load32_splat(a, 8), v128.load32_splat(m, 8), ones);
    s = q8aChunk(s, v128.load(wp, 64), v128.load32_splat(a, 12), v128.load32_splat(m, 12), ones);
    s = q8aChunk(s, v128.load(wp, 80), v128.load32_splat(a, 16), v128.load32_splat(m, 16), ones);
    s = q8aChunk(s, v128.load(wp, 96), v128.load32_splat(a, 20), v128.load32_splat(m, 20), ones);
    s = q8aChunk(s, v128.load(wp, 112), v128.load32_splat(a, 24), v128.load32_splat(m, 24), ones);
    s = q8aChunk(s, v128.load(wp, 128), v128.load32_splat(a, 28), v128.load32_splat(m, 28), ones);
    acc = q8Acc(acc, v128.load(wp), v128.load32_splat(xd + (<usize>b << 2)), s);
  }
  v128.store(y, acc);
}

/**
 * Two groups of 4 rows · one token (relaxed int8 path), block by block in lockstep: groups far apart
 * in memory (the two halves of the row range) make two sequential streams, and each activation
 * load serves both. The same operations per output as q8rOne.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q8rTwo(wA: usize, wB: usize, nb: i32, xa: usize, xm: usize, xd: usize, ones: v128, yA: usize, yB: usize): void {
  let accA = f32x4.splat(0);
  let accB = accA;
  for (let b = 0; b < nb; b++) {
    const pa = wA + <usize>b * 144;
    const pb = wB + <usize>b * 144;
    const a = xa + (<usize>b << 5);
    const m = xm + (<usize>b << 5);
    let x = v128.load32_splat(a);
    let n = v128.load32_splat(m);
    let s = q8aChunk(i32x4.splat(0), v128.load(pa, 16), x, n, ones);
    let t = q8aChunk(i32x4.splat(0), v128.load(pb, 16), x, n, ones);
    x = v128.load32_splat(a, 4);
    n = v128.load32_splat(m, 4);
    s = q8aChunk(s, v128.load(pa, 32), x, n, ones);
    t = q8aChunk(t, v128.load(pb, 32), x, n, ones);
    x = v128.load32_splat(a, 8);
    n = v128.load32_splat(m, 8);
    s = q8aChunk(s, v128.load(pa, 48), x, n, ones);
    t = q8aChunk(t, v128.load(pb, 48), x, n, ones);
    x = v128.load32_splat(a, 12);
    n = v128.load32_splat(m, 12);
    s = q8aChunk(s, v128.load(pa, 64), x, n, ones);
    t = q8aChunk(t, v128.load(pb, 64), x, n, ones);
    x = v128.load32_splat(a, 16);
    n = v128.load32_splat(m, 16);
    s = q8aChunk(s, v128.load(pa, 80), x, n, ones);
    t = q8aChunk(t, v128.load(pb, 80), x, n, ones);
    x = v128.load32_splat(a, 20);
    n = v128.load32_splat(m, 20);
    s = q8aChunk(s, v128.load(pa, 96), x, n, ones);
    t = q8aChunk(t, v128.load(pb, 96), x, n, ones);
    x = v128.load32_splat(a, 24);
    n = v128.load32_splat(m, 24);
    s = q8aChunk(s, v128.load(pa, 112), x, n, ones);
    t = q8aChunk(t, v128.load(pb, 112), x, n, ones);
    x = v128.load32_splat(a, 28);
    n = v128.load32_splat(m, 28);
    s = q8aChunk(s, v128.load(pa, 128), x, n, ones);
    t = q8aChunk(t, v128.load(pb, 128), x, n, ones);
    const dx = v128.load32_splat(xd + (<usize>b << 2));
    accA = q8Acc(accA, v128.load(pa), dx, s);
    accB = q8Acc(accB, v128.load(pb), dx, t);
  }
  v128.store(yA, accA);
  v128.store(yB, accB);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function q8Fold(l: v128, h: v128): v128 {
  // l = [r0 (c, c+1), r0 (c+2, c+3), r1 .., r1 ..], h the same for r2, r3 → [Σr0, Σr1, Σr2, Σr3]
  return i32x4.add(v128.shuffle<i32>(l, h, 0, 2, 4, 6), v128.shuffle<i32>(l, h, 1, 3, 5, 7));
}

/**
 * One group of 4 rows × tokens [t0, t0 + T) (T = 1, 2, 4; a constant after inlining), i16 path:
 * each 16-byte chunk widened once (low half rows 0-1, high half rows 2-3) and dotted with each
 * token's 4 activations splatted to both halves.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q8rTile(T: i32, wg: usize, nb: i32, xq: usize, xd: usize, nCols: i32, t0: i32, y: usize, ys: i32, g: i32): void {
  const xr = <usize>nCols << 1; // bytes per token of xq
  const dr = <usize>nb << 2; // bytes per token of xd
  const d0 = xd + <usize>t0 * dr;
  let a0 = f32x4.splat(0); // token t0, rows 0-3
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  for (let b = 0; b < nb; b++) {
    const wp = wg + <usize>b * 144;
    let x = xq + <usize>t0 * xr + (<usize>b << 6);
    let l0 = i32x4.splat(0);
    let h0 = l0;
    let l1 = l0;
    let h1 = l0;
    let l2 = l0;
    let h2 = l0;
    let l3 = l0;
    let h3 = l0;
    for (let q = wp + 16; q < wp + 144; q += 32) {
      let wl = v128.load8x8_s(q);
      let wh = v128.load8x8_s(q, 8);
      let xv = v128.load64_splat(x);
      l0 = i32x4.add(l0, i32x4.dot_i16x8_s(wl, xv));
      h0 = i32x4.add(h0, i32x4.dot_i16x8_s(wh, xv));
      if (T > 1) {
        xv = v128.load64_splat(x + xr);
        l1 = i32x4.add(l1, i32x4.dot_i16x8_s(wl, xv));
        h1 = i32x4.add(h1, i32x4.dot_i16x8_s(wh, xv));
      }
      if (T > 2) {
        xv = v128.load64_splat(x + 2 * xr);
        l2 = i32x4.add(l2, i32x4.dot_i16x8_s(wl, xv));
        h2 = i32x4.add(h2, i32x4.dot_i16x8_s(wh, xv));
        xv = v128.load64_splat(x + 3 * xr);
        l3 = i32x4.add(l3, i32x4.dot_i16x8_s(wl, xv));
        h3 = i32x4.add(h3, i32x4.dot_i16x8_s(wh, xv));
      }
      wl = v128.load8x8_s(q, 16);
      wh = v128.load8x8_s(q, 24);
      xv = v128.load64_splat(x, 8);
      l0 = i32x4.add(l0, i32x4.dot_i16x8_s(wl, xv));
      h0 = i32x4.add(h0, i32x4.dot_i16x8_s(wh, xv));
      if (T > 1) {
        xv = v128.load64_splat(x + xr, 8);
        l1 = i32x4.add(l1, i32x4.dot_i16x8_s(wl, xv));
        h1 = i32x4.add(h1, i32x4.dot_i16x8_s(wh, xv));
      }
      if (T > 2) {
        xv = v128.load64_splat(x + 2 * xr, 8);
        l2 = i32x4.add(l2, i32x4.dot_i16x8_s(wl, xv));
        h2 = i32x4.add(h2, i32x4.dot_i16x8_s(wh, xv));
        xv = v128.load64_splat(x + 3 * xr, 8);
        l3 = i32x4.add(l3, i32x4.dot_i16x8_s(wl, xv));
        h3 = i32x4.add(h3, i32x4.dot_i16x8_s(wh, xv));
      }
      x += 16;
    }
    const dw = v128.load(wp);
    const dp = d0 + (<usize>b << 2);
    a0 = q8Acc(a0, dw, v128.load32_splat(dp), q8Fold(l0, h0));
    if (T > 1) a1 = q8Acc(a1, dw, v128.load32_splat(dp + dr), q8Fold(l1, h1));
    if (T > 2) {
      a2 = q8Acc(a2, dw, v128.load32_splat(dp + 2 * dr), q8Fold(l2, h2));
      a3 = q8Acc(a3, dw, v128.load32_splat(dp + 3 * dr), q8Fold(l3, h3));
    }
  }
  storeTile(T, y, ys, t0, g, a0, a1, a2, a3);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ8R(R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * 144;
  // pmaddwd's all-ones operand, from a runtime value: V8 would rematerialize a constant at every use
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  if (R && nTok == 1) {
    // decode: the two halves of the row range as two streams (q8rTwo)
    const g0 = r0 >> 2;
    const g1 = (r1 + 3) >> 2;
    const half = (g1 - g0) >> 1;
    for (let g = g0; g < g0 + half; g++) {
      q8rTwo(w + <usize>g * gb, w + <usize>(g + half) * gb, nb, xs, xs + <usize>nCols, xd, ones, y + (<usize>(g * 4) << 2), y + (<usize>((g + half) * 4) << 2));
    }
    if ((g1 - g0) & 1) q8rOne(w + <usize>(g1 - 1) * gb, nb, xs, xs + <usize>nCols, xd, ones, y + (<usize>((g1 - 1) * 4) << 2));
    return;
  }
  const tb = tokenBlock(nCols << 1);
  for (let ta = 0; ta < nTok; ta += tb) {
    const tz = min(ta + tb, nTok);
    for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
      const wg = w + <usize>g * gb;
      let t = ta;
      for (; t + 4 <= tz; t += 4) q8rTile(4, wg, nb, xq, xd, nCols, t, y, ys, g);
      if (t + 2 <= tz) {
        q8rTile(2, wg, nb, xq, xd, nCols, t, y, ys, g);
        t += 2;
      }
      if (t < tz) {
        if (R) {
          const xa = xs + <usize>t * (<usize>nCols << 1);
          q8rOne(wg, nb, xa, xa + <usize>nCols, xd + <usize>t * (<usize>nb << 2), ones, y + (<usize>(t * ys + g * 4) << 2));
        } else q8rTile(1, wg, nb, xq, xd, nCols, t, y, ys, g);
      }
    }
  }
}

export function mm_q8r(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8R(true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
/** mm_q8r without relaxed SIMD (and for tensors holding the quant −128). */
export function mm_q8r_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ8R(false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}

/** mm_q8r's scalar twin. */
export function mm_q8r_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * 144;
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    for (let k = 0; k < 4; k++) {
      for (let t = 0; t < nTok; t++) {
        let acc: f32 = 0;
        for (let b = 0; b < nb; b++) {
          const wp = w + <usize>g * gb + <usize>b * 144;
          const xp = xq + (<usize>(t * nCols + b * 32) << 1);
          let isum = 0;
          for (let j = 0; j < 32; j++) isum += <i32>load<i8>(wp + 16 + ((j >> 2) << 4) + 4 * k + (j & 3)) * <i32>load<i16>(xp + (j << 1));
          acc += (load<f32>(wp + 4 * k) * load<f32>(xd + (<usize>(t * nb + b) << 2))) * <f32>isum;
        }
        store<f32>(y + (<usize>(t * ys + g * 4 + k) << 2), acc);
      }
    }
  }
}

import { dotU8, kAcc4, kMins4, storeTile, tokenBlock } from "./common";

// ---------------------------------------------------------------------------------------------
// K-quants against Q8_K activations as int8 (xq: i8 (nTok, nCols), xd: f32 per 256, xs: i16 sums
// of 16 quants). The weights' quants are unsigned (0..15, 0..31, 0..63), so 16 of them are dotted
// with 16 int8 activations by one i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw on x86, sdot on ARM:
// exact for a 7-bit unsigned operand, no saturation at these magnitudes) — relaxed_dot_probe()
// checks it at start-up; the `_x` kernels compute the same i16 pair sums with exact SIMD ops.
// Per super-block of 256: isum = Σ_j sc_j·Σ q·x, msum = Σ_k m_k·bsum_k (exact integers), and in
// f32 (Q4_K below; one f32x4 for the 4 rows of a group), the min term in its own accumulator as in
// ggml's AVX2 code:   a = a + (d·d_x)·f32(isum);  m = m + (dmin·d_x)·f32(msum);  y = a − m
// (Q5_K, q5k.ts, shares this; Q6_K, q6k.ts, keeps f64 sums). Token tiling as for Q8R (T = 4, 2, 1 tokens per pass over a row).

// Q4KR: Q4_K, 4 rows interleaved (layout.ts q4kr), 608 bytes per group and super-block of 256
// columns: f32 d[4], f32 dmin[4], u8 scales (32 + 4j + k: sub-block j, row k), u8 mins (64 + 8k +
// j), then per 64-column chunk c 128 quant bytes (96 + 128c + 16·(l >> 2) + 4k + (l & 3): row k, low
// nibble column 64c + l, high nibble column 64c + 32 + l). One 16-byte load W holds 4 columns'
// low nibbles (sub-block 2c) and 4 columns' high nibbles (2c + 1) of the 4 rows; dotted with the
// 4 activations splatted, it gives i16 lanes [r0, r0, r1, r1, r2, r2, r3, r3] of pair sums, so
// the rows never need a horizontal sum. A sub-block's 8 such dots are summed in i16 (≤ 8·2·15·127
// < 2^15), then scaled by pmaddwd against [s0, s0, s1, s1, ..] (its 4 rows' scales, widened from
// 4 bytes and duplicated by an unpack): i32x4 of the 4 rows' Σ sc·Σ q·x.
// The mins: msum_k = Σ_j m_kj·(bs_2j + bs_2j+1) by one pmaddwd per row against the pair sums of the
// 16-column activation sums. Then a and m as above, in the generic twin's order on every path.
// Tokens go through 4, 2 or 1 at a time: a chunk's nibbles are unpacked once for the tile (4 tokens:
// 8 i16 accumulators, 12-13 live registers of x64's 16; x1.12-1.18 over pairs at 4-16 tokens in
// bench:ab). (f64 sums took 16 f64x2 accumulators at 4 tokens, [a, m] × rows 0-1, 2-3 × token, and
// ~24 vector ops per token and super-block against 8 in f32.) The 1- and 2-token paths are unrolled
// with one base pointer per token; the 4-token path loops over a sub-block's chunks (see there).

// @ts-expect-error: AssemblyScript decorator
@inline
function q4kW(s: v128, q: v128, x: usize, R: bool): v128 {
  // s + the 4 rows' pair sums of one nibble half (q: 16 bytes of 0..15) · 4 activations at x
  return i16x8.add(s, dotU8(q, v128.load32_splat(x), R));
}

/** One group of 4 rows × tokens [t0, t0 + T) (T = 1, 2, 4) → y. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q4krTile(R: bool, T: i32, wg: usize, nsb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, t0: i32, y: usize, ys: i32, g: i32): void {
  // constants from a runtime value: V8 would rematerialize a constant at each use
  const mask = i8x16.splat(<i8>(0x0f | (nCols >>> 31)));
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  const xr = <usize>nCols; // bytes per token of xq
  const dr = <usize>nsb << 2; // bytes per token of xd
  const br = <usize>nCols >> 3; // bytes per token of xs (i16 per 16)
  let a0 = f32x4.splat(0); // a of the 4 rows, token t0
  let m0 = a0; // m of the 4 rows, token t0
  let a1 = a0; // token t0 + 1
  let m1 = a0;
  let a2 = a0; // tokens t0 + 2, t0 + 3 (T = 4)
  let m2 = a0;
  let a3 = a0;
  let m3 = a0;
  for (let sb = 0; sb < nsb; sb++) {
    const bp = wg + <usize>sb * 608;
    const xp = xq + <usize>t0 * xr + (<usize>sb << 8);
    let v0 = i32x4.splat(0); // Σ sc·Σ q·x of the 4 rows, token t0
    let v1 = v0; // token t0 + 1
    let v2 = v0; // tokens t0 + 2, t0 + 3 (T = 4)
    let v3 = v0;
    for (let c = 0; c < 4; c++) {
      const qp = bp + 96 + (<usize>c << 7);
      const x = xp + (<usize>c << 6);
      let l0 = i16x8.splat(0); // sub-block 2c (low nibbles), token t0
      let h0 = l0; // sub-block 2c + 1 (high nibbles)
      let l1 = l0;
      let h1 = l0;
      let l2 = l0;
      let h2 = l0;
      let l3 = l0;
      let h3 = l0;
      if (T == 1) {
        // unrolled: immediate offsets (V8 does not fold an address add into a load)
        let w = v128.load(qp);
        l0 = q4kW(l0, v128.and(w, mask), x, R);
        h0 = q4kW(h0, v128.and(i16x8.shr_u(w, 4), mask), x + 32, R);
        w = v128.load(qp, 16);
        l0 = q4kW(l0, v128.and(w, mask), x + 4, R);
        h0 = q4kW(h0, v128.and(i16x8.shr_u(w, 4), mask), x + 36, R);
        w = v128.load(qp, 32);
        l0 = q4kW(l0, v128.and(w, mask), x + 8, R);
        h0 = q4kW(h0, v128.and(i16x8.shr_u(w, 4), mask), x + 40, R);
        w = v128.load(qp, 48);
        l0 = q4kW(l0, v128.and(w, mask), x + 12, R);
        h0 = q4kW(h0, v128.and(i16x8.shr_u(w, 4), mask), x + 44, R);
        w = v128.load(qp, 64);
        l0 = q4kW(l0, v128.and(w, mask), x + 16, R);
        h0 = q4kW(h0, v128.and(i16x8.shr_u(w, 4), mask), x + 48, R);
        w = v128.load(qp, 80);
        l0 = q4kW(l0, v128.and(w, mask), x + 20, R);
        h0 = q4kW(h0, v128.and(i16x8.shr_u(w, 4), mask), x + 52, R);
        w = v128.load(qp, 96);
        l0 = q4kW(l0, v128.and(w, mask), x + 24, R);
        h0 = q4kW(h0, v128.and(i16x8.shr_u(w, 4), mask), x + 56, R);
        w = v128.load(qp, 112);
        l0 = q4kW(l0, v128.and(w, mask), x + 28, R);
        h0 = q4kW(h0, v128.and(i16x8.shr_u(w, 4), mask), x + 60, R);
      } else if (T == 2) {
        // unrolled as T == 1, the second token from its own base pointer (immediate offsets)
        const x1 = x + xr;
        let w = v128.load(qp);
        let lo = v128.and(w, mask);
        let hi = v128.and(i16x8.shr_u(w, 4), mask);
        l0 = q4kW(l0, lo, x, R);
        h0 = q4kW(h0, hi, x + 32, R);
        l1 = q4kW(l1, lo, x1, R);
        h1 = q4kW(h1, hi, x1 + 32, R);
        w = v128.load(qp, 16);
        lo = v128.and(w, mask);
        hi = v128.and(i16x8.shr_u(w, 4), mask);
        l0 = q4kW(l0, lo, x + 4, R);
        h0 = q4kW(h0, hi, x + 36, R);
        l1 = q4kW(l1, lo, x1 + 4, R);
        h1 = q4kW(h1, hi, x1 + 36, R);
        w = v128.load(qp, 32);
        lo = v128.and(w, mask);
        hi = v128.and(i16x8.shr_u(w, 4), mask);
        l0 = q4kW(l0, lo, x + 8, R);
        h0 = q4kW(h0, hi, x + 40, R);
        l1 = q4kW(l1, lo, x1 + 8, R);
        h1 = q4kW(h1, hi, x1 + 40, R);
        w = v128.load(qp, 48);
        lo = v128.and(w, mask);
        hi = v128.and(i16x8.shr_u(w, 4), mask);
        l0 = q4kW(l0, lo, x + 12, R);
        h0 = q4kW(h0, hi, x + 44, R);
        l1 = q4kW(l1, lo, x1 + 12, R);
        h1 = q4kW(h1, hi, x1 + 44, R);
        w = v128.load(qp, 64);
        lo = v128.and(w, mask);
        hi = v128.and(i16x8.shr_u(w, 4), mask);
        l0 = q4kW(l0, lo, x + 16, R);
        h0 = q4kW(h0, hi, x + 48, R);
        l1 = q4kW(l1, lo, x1 + 16, R);
        h1 = q4kW(h1, hi, x1 + 48, R);
        w = v128.load(qp, 80);
        lo = v128.and(w, mask);
        hi = v128.and(i16x8.shr_u(w, 4), mask);
        l0 = q4kW(l0, lo, x + 20, R);
        h0 = q4kW(h0, hi, x + 52, R);
        l1 = q4kW(l1, lo, x1 + 20, R);
        h1 = q4kW(h1, hi, x1 + 52, R);
        w = v128.load(qp, 96);
        lo = v128.and(w, mask);
        hi = v128.and(i16x8.shr_u(w, 4), mask);
        l0 = q4kW(l0, lo, x + 24, R);
        h0 = q4kW(h0, hi, x + 56, R);
        l1 = q4kW(l1, lo, x1 + 24, R);
        h1 = q4kW(h1, hi, x1 + 56, R);
        w = v128.load(qp, 112);
        lo = v128.and(w, mask);
        hi = v128.and(i16x8.shr_u(w, 4), mask);
        l0 = q4kW(l0, lo, x + 28, R);
        h0 = q4kW(h0, hi, x + 60, R);
        l1 = q4kW(l1, lo, x1 + 28, R);
        h1 = q4kW(h1, hi, x1 + 60, R);
      } else {
        // T == 4: a loop over the 8 chunks, two per iteration, each chunk's nibbles unpacked once for
        // the four tokens. (V8 schedules a fully unrolled tile token after token and spills the
        // unpacked nibbles: 16 of them live at once. The loop keeps all 8 accumulators and a chunk in
        // registers. Running pointers and two chunks per iteration (immediate offsets) halve the
        // loop's address and control work: ×1.07-1.13 in bench:ab at 4-64 tokens; four per
        // iteration lost ~5%.)
        for (let wq = qp, xk0 = x; wq < qp + 128; wq += 32, xk0 += 8) {
          const xk1 = xk0 + xr;
          const xk2 = xk1 + xr;
          const xk3 = xk2 + xr;
          let w: v128, lo: v128, hi: v128;
          w = v128.load(wq);
          lo = v128.and(w, mask);
          hi = v128.and(i16x8.shr_u(w, 4), mask);
          l0 = i16x8.add(l0, dotU8(lo, v128.load32_splat(xk0), R));
          h0 = i16x8.add(h0, dotU8(hi, v128.load32_splat(xk0, 32), R));
          l1 = i16x8.add(l1, dotU8(lo, v128.load32_splat(xk1), R));
          h1 = i16x8.add(h1, dotU8(hi, v128.load32_splat(xk1, 32), R));
          l2 = i16x8.add(l2, dotU8(lo, v128.load32_splat(xk2), R));
          h2 = i16x8.add(h2, dotU8(hi, v128.load32_splat(xk2, 32), R));
          l3 = i16x8.add(l3, dotU8(lo, v128.load32_splat(xk3), R));
          h3 = i16x8.add(h3, dotU8(hi, v128.load32_splat(xk3, 32), R));
          w = v128.load(wq, 16);
          lo = v128.and(w, mask);
          hi = v128.and(i16x8.shr_u(w, 4), mask);
          l0 = i16x8.add(l0, dotU8(lo, v128.load32_splat(xk0, 4), R));
          h0 = i16x8.add(h0, dotU8(hi, v128.load32_splat(xk0, 36), R));
          l1 = i16x8.add(l1, dotU8(lo, v128.load32_splat(xk1, 4), R));
          h1 = i16x8.add(h1, dotU8(hi, v128.load32_splat(xk1, 36), R));
          l2 = i16x8.add(l2, dotU8(lo, v128.load32_splat(xk2, 4), R));
          h2 = i16x8.add(h2, dotU8(hi, v128.load32_splat(xk2, 36), R));
          l3 = i16x8.add(l3, dotU8(lo, v128.load32_splat(xk3, 4), R));
          h3 = i16x8.add(h3, dotU8(hi, v128.load32_splat(xk3, 36), R));
        }
      }
      // the chunk's scales: 8 bytes [sub 2c: rows 0-3, sub 2c+1: rows 0-3] → i16 pairs per row
      const sc = v128.load8x8_u(bp + 32 + (<usize>c << 3));
      const sl = v128.shuffle<i16>(sc, sc, 0, 0, 1, 1, 2, 2, 3, 3);
      const sh = v128.shuffle<i16>(sc, sc, 4, 4, 5, 5, 6, 6, 7, 7);
      v0 = i32x4.add(v0, i32x4.add(i32x4.dot_i16x8_s(l0, sl), i32x4.dot_i16x8_s(h0, sh)));
      if (T >= 2) v1 = i32x4.add(v1, i32x4.add(i32x4.dot_i16x8_s(l1, sl), i32x4.dot_i16x8_s(h1, sh)));
      if (T == 4) {
        v2 = i32x4.add(v2, i32x4.add(i32x4.dot_i16x8_s(l2, sl), i32x4.dot_i16x8_s(h2, sh)));
        v3 = i32x4.add(v3, i32x4.add(i32x4.dot_i16x8_s(l3, sl), i32x4.dot_i16x8_s(h3, sh)));
      }
    }
    const d = v128.load(bp);
    const dmin = v128.load(bp, 16);
    const bs = xs + <usize>t0 * br + (<usize>sb << 5);
    const dx = xd + <usize>t0 * dr + (<usize>sb << 2);
    a0 = kAcc4(a0, d, v128.load32_splat(dx), v0);
    m0 = kAcc4(m0, dmin, v128.load32_splat(dx), kMins4(bp + 64, bs, ones));
    if (T >= 2) {
      a1 = kAcc4(a1, d, v128.load32_splat(dx + dr), v1);
      m1 = kAcc4(m1, dmin, v128.load32_splat(dx + dr), kMins4(bp + 64, bs + br, ones));
    }
    if (T == 4) {
      a2 = kAcc4(a2, d, v128.load32_splat(dx + 2 * dr), v2);
      m2 = kAcc4(m2, dmin, v128.load32_splat(dx + 2 * dr), kMins4(bp + 64, bs + 2 * br, ones));
      a3 = kAcc4(a3, d, v128.load32_splat(dx + 3 * dr), v3);
      m3 = kAcc4(m3, dmin, v128.load32_splat(dx + 3 * dr), kMins4(bp + 64, bs + 3 * br, ones));
    }
  }
  storeTile(T, y, ys, t0, g, f32x4.sub(a0, m0), f32x4.sub(a1, m1), f32x4.sub(a2, m2), f32x4.sub(a3, m3));
}

/**
 * Two groups of 4 rows · one token, super-block by super-block in lockstep: groups far apart in
 * memory (the two halves of the row range) make two sequential streams, and each activation load
 * serves both (as q8rTwo). The same operations per output as q4krTile with T = 1.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function q4krTwo(R: bool, wA: usize, wB: usize, nsb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, yA: usize, yB: usize): void {
  const mask = i8x16.splat(<i8>(0x0f | (nCols >>> 31)));
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  let aA = f32x4.splat(0); // group A: a and m of the 4 rows
  let mA = aA;
  let aB = aA; // group B
  let mB = aA;
  for (let sb = 0; sb < nsb; sb++) {
    const pa = wA + <usize>sb * 608;
    const pb = wB + <usize>sb * 608;
    const xp = xq + (<usize>sb << 8);
    let va = i32x4.splat(0);
    let vb = va;
    for (let c = 0; c < 4; c++) {
      const qa = pa + 96 + (<usize>c << 7);
      const qb = pb + 96 + (<usize>c << 7);
      const x = xp + (<usize>c << 6);
      let la = i16x8.splat(0);
      let ha = la;
      let lb = la;
      let hb = la;
      let w = v128.load(qa);
      let u = v128.load(qb);
      let xl = v128.load32_splat(x);
      let xh = v128.load32_splat(x, 32);
      la = i16x8.add(la, dotU8(v128.and(w, mask), xl, R));
      ha = i16x8.add(ha, dotU8(v128.and(i16x8.shr_u(w, 4), mask), xh, R));
      lb = i16x8.add(lb, dotU8(v128.and(u, mask), xl, R));
      hb = i16x8.add(hb, dotU8(v128.and(i16x8.shr_u(u, 4), mask), xh, R));
      w = v128.load(qa, 16);
      u = v128.load(qb, 16);
      xl = v128.load32_splat(x, 4);
      xh = v128.load32_splat(x, 36);
      la = i16x8.add(la, dotU8(v128.and(w, mask), xl, R));
      ha = i16x8.add(ha, dotU8(v128.and(i16x8.shr_u(w, 4), mask), xh, R));
      lb = i16x8.add(lb, dotU8(v128.and(u, mask), xl, R));
      hb = i16x8.add(hb, dotU8(v128.and(i16x8.shr_u(u, 4), mask), xh, R));
      w = v128.load(qa, 32);
      u = v128.load(qb, 32);
      xl = v128.load32_splat(x, 8);
      xh = v128.load32_splat(x, 40);
      la = i16x8.add(la, dotU8(v128.and(w, mask), xl, R));
      ha = i16x8.add(ha, dotU8(v128.and(i16x8.shr_u(w, 4), mask), xh, R));
      lb = i16x8.add(lb, dotU8(v128.and(u, mask), xl, R));
      hb = i16x8.add(hb, dotU8(v128.and(i16x8.shr_u(u, 4), mask), xh, R));
      w = v128.load(qa, 48);
      u = v128.load(qb, 48);
      xl = v128.load32_splat(x, 12);
      xh = v128.load32_splat(x, 44);
      la = i16x8.add(la, dotU8(v128.and(w, mask), xl, R));
      ha = i16x8.add(ha, dotU8(v128.and(i16x8.shr_u(w, 4), mask), xh, R));
      lb = i16x8.add(lb, dotU8(v128.and(u, mask), xl, R));
      hb = i16x8.add(hb, dotU8(v128.and(i16x8.shr_u(u, 4), mask), xh, R));
      w = v128.load(qa, 64);
      u = v128.load(qb, 64);
      xl = v128.load32_splat(x, 16);
      xh = v128.load32_splat(x, 48);
      la = i16x8.add(la, dotU8(v128.and(w, mask), xl, R));
      ha = i16x8.add(ha, dotU8(v128.and(i16x8.shr_u(w, 4), mask), xh, R));
      lb = i16x8.add(lb, dotU8(v128.and(u, mask), xl, R));
      hb = i16x8.add(hb, dotU8(v128.and(i16x8.shr_u(u, 4), mask), xh, R));
      w = v128.load(qa, 80);
      u = v128.load(qb, 80);
      xl = v128.load32_splat(x, 20);
      xh = v128.load32_splat(x, 52);
      la = i16x8.add(la, dotU8(v128.and(w, mask), xl, R));
      ha = i16x8.add(ha, dotU8(v128.and(i16x8.shr_u(w, 4), mask), xh, R));
      lb = i16x8.add(lb, dotU8(v128.and(u, mask), xl, R));
      hb = i16x8.add(hb, dotU8(v128.and(i16x8.shr_u(u, 4), mask), xh, R));
      w = v128.load(qa, 96);
      u = v128.load(qb, 96);
      xl = v128.load32_splat(x, 24);
      xh = v128.load32_splat(x, 56);
      la = i16x8.add(la, dotU8(v128.and(w, mask), xl, R));
      ha = i16x8.add(ha, dotU8(v128.and(i16x8.shr_u(w, 4), mask), xh, R));
      lb = i16x8.add(lb, dotU8(v128.and(u, mask), xl, R));
      hb = i16x8.add(hb, dotU8(v128.and(i16x8.shr_u(u, 4), mask), xh, R));
      w = v128.load(qa, 112);
      u = v128.load(qb, 112);
      xl = v128.load32_splat(x, 28);
      xh = v128.load32_splat(x, 60);
      la = i16x8.add(la, dotU8(v128.and(w, mask), xl, R));
      ha = i16x8.add(ha, dotU8(v128.and(i16x8.shr_u(w, 4), mask), xh, R));
      lb = i16x8.add(lb, dotU8(v128.and(u, mask), xl, R));
      hb = i16x8.add(hb, dotU8(v128.and(i16x8.shr_u(u, 4), mask), xh, R));
      const sa = v128.load8x8_u(pa + 32 + (<usize>c << 3));
      va = i32x4.add(va, i32x4.add(i32x4.dot_i16x8_s(la, v128.shuffle<i16>(sa, sa, 0, 0, 1, 1, 2, 2, 3, 3)), i32x4.dot_i16x8_s(ha, v128.shuffle<i16>(sa, sa, 4, 4, 5, 5, 6, 6, 7, 7))));
      const sbb = v128.load8x8_u(pb + 32 + (<usize>c << 3));
      vb = i32x4.add(vb, i32x4.add(i32x4.dot_i16x8_s(lb, v128.shuffle<i16>(sbb, sbb, 0, 0, 1, 1, 2, 2, 3, 3)), i32x4.dot_i16x8_s(hb, v128.shuffle<i16>(sbb, sbb, 4, 4, 5, 5, 6, 6, 7, 7))));
    }
    const bs = xs + (<usize>sb << 5);
    const dx = v128.load32_splat(xd + (<usize>sb << 2));
    aA = kAcc4(aA, v128.load(pa), dx, va);
    mA = kAcc4(mA, v128.load(pa, 16), dx, kMins4(pa + 64, bs, ones));
    aB = kAcc4(aB, v128.load(pb), dx, vb);
    mB = kAcc4(mB, v128.load(pb, 16), dx, kMins4(pb + 64, bs, ones));
  }
  v128.store(yA, f32x4.sub(aA, mA));
  v128.store(yB, f32x4.sub(aB, mB));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ4K(R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const groupBytes = <usize>nsb * 608;
  if (nTok == 1) {
    // decode: the two halves of the row range as two streams (q4krTwo)
    const g0 = r0 >> 2;
    const g1 = (r1 + 3) >> 2;
    const half = (g1 - g0) >> 1;
    for (let g = g0; g < g0 + half; g++) {
      q4krTwo(R, w + <usize>g * groupBytes, w + <usize>(g + half) * groupBytes, nsb, xq, xd, xs, nCols, y + (<usize>(g << 2) << 2), y + (<usize>((g + half) << 2) << 2));
    }
    if ((g1 - g0) & 1) q4krTile(R, 1, w + <usize>(g1 - 1) * groupBytes, nsb, xq, xd, xs, nCols, 0, y, ys, g1 - 1);
    return;
  }
  const tb = tokenBlock(nCols);
  for (let ta = 0; ta < nTok; ta += tb) {
    const tz = min(ta + tb, nTok);
    for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
      const wg = w + <usize>g * groupBytes;
      let t = ta;
      for (; t + 4 <= tz; t += 4) q4krTile(R, 4, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
      if (t + 2 <= tz) {
        q4krTile(R, 2, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
        t += 2;
      }
      if (t < tz) q4krTile(R, 1, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
    }
  }
}

export function mm_q4k(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ4K(true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q4k_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ4K(false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}

export function mm_q4k_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  for (let r = r0; r < r1; r++) {
    const k = <usize>(r & 3);
    for (let t = 0; t < nTok; t++) {
      let a: f32 = 0;
      let m: f32 = 0;
      for (let sb = 0; sb < nsb; sb++) {
        const bp = w + (<usize>(r >> 2) * <usize>nsb + <usize>sb) * 608;
        const xp = xq + <usize>(t * nCols + sb * 256);
        const bs = xs + (<usize>((t * nCols + sb * 256) >> 4) << 1);
        let isum = 0;
        let msum = 0;
        for (let j = 0; j < 8; j++) {
          let p = 0;
          for (let l = 0; l < 32; l++) {
            const b = <i32>load<u8>(bp + 96 + 128 * (j >> 1) + 16 * (l >> 2) + 4 * k + (l & 3));
            p += ((j & 1) != 0 ? b >> 4 : b & 15) * <i32>load<i8>(xp + 32 * j + l);
          }
          isum += p * <i32>load<u8>(bp + 32 + 4 * j + k);
          msum += <i32>load<u8>(bp + 64 + 8 * k + j) * (<i32>load<i16>(bs + (j << 2)) + <i32>load<i16>(bs + (j << 2) + 2));
        }
        const dx = load<f32>(xd + (<usize>(t * nsb + sb) << 2));
        a = a + (load<f32>(bp + 4 * k) * dx) * <f32>isum;
        m = m + (load<f32>(bp + 16 + 4 * k) * dx) * <f32>msum;
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), a - m);
    }
  }
}


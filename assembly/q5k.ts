import { dotU8, kAcc4, kMins4, storeTile, tokenBlock } from "./common";

// ---------------------------------------------------------------------------------------------
// Q5KR: Q5_K at nearly its own size (5.75 bits per weight against GGUF's 5.5), rows interleaved 4
// at a time (layout.ts q5kr), against Q8_K activations as int8 (xq, xd, xs as for Q4_K, q4k.ts).
// Per group of 4 rows and super-block of 256 columns, 736 bytes: q4kr's header (f32 d[4], f32
// dmin[4], u8 scales at 32 + 4j + k, u8 mins at 64 + 8k + j), then per 64-column chunk c, 160
// bytes at 96 + 160c: the low 4 bits of the 5-bit quants as q4kr's nibble pairs (16·i + 4k +
// (l & 3), i = l >> 2, l < 32: low nibble = column 64c + l, high nibble = column 64c + 32 + l),
// then their 5th bits in two 16-byte vectors, each for 4 nibble vectors (128 + 16·(i >> 2) + 4k +
// (l & 3), bit 2·(i & 3) for the low column, the next bit for the high one).
// A quarter of a chunk (4 nibble vectors, one bit vector) goes two nibble vectors at a time: the
// bits sit at 0-3 of each byte, (h << 4, 3, 2, 1) & 16 puts each at bit 4 (16-bit shifts: the
// mask drops whatever crossed a byte), OR'd onto its nibbles, then h >>= 4 for the next two. The
// 5-bit q (0..31) is the 7-bit unsigned operand of the relaxed dot; a quarter's 4 pair sums of one
// sub-block fit i16 (4·2·31·127 < 2^15), then pmaddwd against the scales, as q4k.ts does per chunk.
// Mins and the f32 accumulation exactly as Q4_K (kMins4, kAcc4), as ggml's AVX2 code:
//   a = a + (d·d_x)·f32(isum);  m = m + (dmin·d_x)·f32(msum);  y = a − m
// (The layout this replaced widened Q5_K to a byte per quant with f64 sums: 10.5 bits per weight,
// 1.9× the file in memory and in decode's weight traffic.)

/** One group of 4 rows × tokens [t0, t0 + T) (T = 1, 2, 4) → y. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q5krTile(R: bool, T: i32, wg: usize, nsb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, t0: i32, y: usize, ys: i32, g: i32): void {
  // constants from a runtime value: V8 would rematerialize a constant at each use
  const m4 = i8x16.splat(<i8>(0x0f | (nCols >>> 31)));
  const m16 = i8x16.splat(<i8>(0x10 | (nCols >>> 31)));
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  const xr = <usize>nCols; // bytes per token of xq
  const dr = <usize>nsb << 2; // bytes per token of xd
  const br = <usize>nCols >> 3; // bytes per token of xs (i16 per 16)
  let a0 = f32x4.splat(0); // a of the 4 rows, token t0
  let m0 = a0; // m of the 4 rows, token t0
  let a1 = a0;
  let m1 = a0;
  let a2 = a0;
  let m2 = a0;
  let a3 = a0;
  let m3 = a0;
  for (let sb = 0; sb < nsb; sb++) {
    const bp = wg + <usize>sb * 736;
    const xp = xq + <usize>t0 * xr + (<usize>sb << 8);
    let v0 = i32x4.splat(0); // Σ sc·Σ q·x of the 4 rows, token t0
    let v1 = v0;
    let v2 = v0;
    let v3 = v0;
    // a loop over the 8 quarters (chunk c = q >> 1), each two steps of two nibble vectors
    for (let q = 0; q < 8; q++) {
      const c = <usize>(q >> 1);
      const np = bp + 96 + c * 160 + (<usize>(q & 1) << 6);
      const x = xp + (c << 6) + (<usize>(q & 1) << 4);
      let h = v128.load(bp + 96 + c * 160 + 128 + (<usize>(q & 1) << 4));
      let l0 = i16x8.splat(0); // sub-block 2c (low nibbles), token t0
      let h0 = l0; // sub-block 2c + 1 (high nibbles)
      let l1 = l0;
      let h1 = l0;
      let l2 = l0;
      let h2 = l0;
      let l3 = l0;
      let h3 = l0;
      for (let s = 0; s < 2; s++) {
        const w0 = v128.load(np + (<usize>s << 5));
        const w1 = v128.load(np + (<usize>s << 5), 16);
        const lo0 = v128.or(v128.and(w0, m4), v128.and(i16x8.shl(h, 4), m16));
        const hi0 = v128.or(v128.and(i16x8.shr_u(w0, 4), m4), v128.and(i16x8.shl(h, 3), m16));
        const lo1 = v128.or(v128.and(w1, m4), v128.and(i16x8.shl(h, 2), m16));
        const hi1 = v128.or(v128.and(i16x8.shr_u(w1, 4), m4), v128.and(i16x8.shl(h, 1), m16));
        h = i16x8.shr_u(h, 4);
        const xk = x + (<usize>s << 3);
        l0 = i16x8.add(l0, i16x8.add(dotU8(lo0, v128.load32_splat(xk), R), dotU8(lo1, v128.load32_splat(xk, 4), R)));
        h0 = i16x8.add(h0, i16x8.add(dotU8(hi0, v128.load32_splat(xk, 32), R), dotU8(hi1, v128.load32_splat(xk, 36), R)));
        if (T > 1) {
          const xk1 = xk + xr;
          l1 = i16x8.add(l1, i16x8.add(dotU8(lo0, v128.load32_splat(xk1), R), dotU8(lo1, v128.load32_splat(xk1, 4), R)));
          h1 = i16x8.add(h1, i16x8.add(dotU8(hi0, v128.load32_splat(xk1, 32), R), dotU8(hi1, v128.load32_splat(xk1, 36), R)));
        }
        if (T > 2) {
          const xk2 = xk + 2 * xr;
          const xk3 = xk + 3 * xr;
          l2 = i16x8.add(l2, i16x8.add(dotU8(lo0, v128.load32_splat(xk2), R), dotU8(lo1, v128.load32_splat(xk2, 4), R)));
          h2 = i16x8.add(h2, i16x8.add(dotU8(hi0, v128.load32_splat(xk2, 32), R), dotU8(hi1, v128.load32_splat(xk2, 36), R)));
          l3 = i16x8.add(l3, i16x8.add(dotU8(lo0, v128.load32_splat(xk3), R), dotU8(lo1, v128.load32_splat(xk3, 4), R)));
          h3 = i16x8.add(h3, i16x8.add(dotU8(hi0, v128.load32_splat(xk3, 32), R), dotU8(hi1, v128.load32_splat(xk3, 36), R)));
        }
      }
      // the chunk's scales: 8 bytes [sub 2c: rows 0-3, sub 2c+1: rows 0-3] → i16 pairs per row
      const sc = v128.load8x8_u(bp + 32 + (c << 3));
      const sl = v128.shuffle<i16>(sc, sc, 0, 0, 1, 1, 2, 2, 3, 3);
      const sh = v128.shuffle<i16>(sc, sc, 4, 4, 5, 5, 6, 6, 7, 7);
      v0 = i32x4.add(v0, i32x4.add(i32x4.dot_i16x8_s(l0, sl), i32x4.dot_i16x8_s(h0, sh)));
      if (T > 1) v1 = i32x4.add(v1, i32x4.add(i32x4.dot_i16x8_s(l1, sl), i32x4.dot_i16x8_s(h1, sh)));
      if (T > 2) {
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
    if (T > 1) {
      a1 = kAcc4(a1, d, v128.load32_splat(dx + dr), v1);
      m1 = kAcc4(m1, dmin, v128.load32_splat(dx + dr), kMins4(bp + 64, bs + br, ones));
    }
    if (T > 2) {
      a2 = kAcc4(a2, d, v128.load32_splat(dx + 2 * dr), v2);
      m2 = kAcc4(m2, dmin, v128.load32_splat(dx + 2 * dr), kMins4(bp + 64, bs + 2 * br, ones));
      a3 = kAcc4(a3, d, v128.load32_splat(dx + 3 * dr), v3);
      m3 = kAcc4(m3, dmin, v128.load32_splat(dx + 3 * dr), kMins4(bp + 64, bs + 3 * br, ones));
    }
  }
  storeTile(T, y, ys, t0, g, f32x4.sub(a0, m0), f32x4.sub(a1, m1), f32x4.sub(a2, m2), f32x4.sub(a3, m3));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ5K(R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const groupBytes = <usize>nsb * 736;
  const tb = nTok == 1 ? 1 : tokenBlock(nCols);
  for (let ta = 0; ta < nTok; ta += tb) {
    const tz = min(ta + tb, nTok);
    for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
      const wg = w + <usize>g * groupBytes;
      let t = ta;
      for (; t + 4 <= tz; t += 4) q5krTile(R, 4, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
      if (t + 2 <= tz) {
        q5krTile(R, 2, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
        t += 2;
      }
      if (t < tz) q5krTile(R, 1, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
    }
  }
}

export function mm_q5k(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ5K(true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_q5k_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmQ5K(false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}

/** mm_q5k's scalar twin. */
export function mm_q5k_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  for (let r = r0; r < r1; r++) {
    const k = <usize>(r & 3);
    for (let t = 0; t < nTok; t++) {
      let a: f32 = 0;
      let m: f32 = 0;
      for (let sb = 0; sb < nsb; sb++) {
        const bp = w + (<usize>(r >> 2) * <usize>nsb + <usize>sb) * 736;
        const xp = xq + <usize>(t * nCols + sb * 256);
        const bs = xs + (<usize>((t * nCols + sb * 256) >> 4) << 1);
        let isum = 0;
        let msum = 0;
        for (let j = 0; j < 8; j++) {
          const cp = bp + 96 + 160 * (j >> 1); // chunk j >> 1; sub-block j = its low (even j) or high nibbles
          let p = 0;
          for (let l = 0; l < 32; l++) {
            const i = l >> 2;
            const b = <i32>load<u8>(cp + 16 * i + 4 * k + (l & 3));
            const h = <i32>load<u8>(cp + 128 + 16 * (i >> 2) + 4 * k + (l & 3));
            const q = ((j & 1) != 0 ? b >> 4 : b & 15) | (((h >> (2 * (i & 3) + (j & 1))) & 1) << 4);
            p += q * <i32>load<i8>(xp + 32 * j + l);
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

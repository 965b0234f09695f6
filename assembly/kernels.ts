// Hot kernels of the engine, in AssemblyScript, compiled to WebAssembly with SIMD (build: npm run build).
//
// Every kernel works on raw addresses in one (shared) linear memory that the TypeScript side
// manages (src/kernels/). No allocation, no runtime: a kernel reads its inputs and writes its
// outputs, so any number of threads may run kernels on disjoint output ranges at once.
//
// Each SIMD kernel `name` has a scalar twin `name_generic` with exactly the same arithmetic (the
// same integer block sums, the same f64 operations in the same order): test/kernels/ checks the
// pairs against each other and against a float64 reference, like ggml's test-backend-ops.
//
// Matmul numerics are ggml-cpu's: the activation row is quantized once (Q8_0 / Q8_1 / Q8_K, the
// weight type's vec_dot_type, values exactly as src/engine/matmul-input.ts rounds them), each
// weight block is dotted with it in integers, and the integer sum is scaled by d_w·d_x. Block
// results are accumulated in f64 (the products d_w·d_x·isum are exact in f64), so the result is
// the float64 value of ggml's integer formula, rounded to f32 once. (ggml accumulates in f32; that
// is faster, but its extra rounding flips quantized activations of later layers against the
// engine's reference path far more often — test/engine/reference-vs-fast.test.ts.) Matmuls are
// tiled over tokens (each weight block is loaded and widened once for up to 4 tokens) without
// changing any output's sequence of operations: results never depend on how many tokens share a call.
//
// V8 (TurboFan) habits the code works around, found in its generated x64 (--print-wasm-code):
// a SIMD constant is rematerialized at every use (2-3 instructions), so hot loops derive theirs
// from a runtime value; a fully unrolled token tile is scheduled token after token, spilling the
// weights every token shares, so tiles loop over the chunks of a block; an address add is not
// folded into a load, so the one-token paths are unrolled with immediate offsets.
//
// Uniform matmul signature (so that worker threads can dispatch any of them by index):
//   mm_X(w, nCols, r0, r1, xq, xd, xs, nTok, y, ys)
//     w      weights (layout per kernel, see src/kernels/layout.ts)
//     nCols  elements per weight row
//     r0,r1  the output rows to compute (multiples of 4 for the 4-row interleaved layouts)
//     xq     activations: Q8_0 quants as i16 (quantize_q8, for Q8_0 weights) or int8 (quantize_q8i,
//            for Q4_0/Q5_0/Q4_1/Q5_1), Q8_K quants as int8 (quantize_q8k), all (nTok, nCols); or f32
//            values (nTok, nCols) for float weights
//     xd     f32 block scales of the activations (nTok, nCols/32 or nCols/256)
//     xs     quantize_q8: per token |q| then the sign masks (nTok × 2·nCols bytes); quantize_q8i:
//            [f32 Q8_1 block sum, i32 Σq] (nTok × nCols/32 pairs); quantize_q8k: i16 sums of 16
//            quants (nTok × nCols/16)
//   Kernels with a `_x` variant use i16x8.relaxed_dot_i8x16_i7x16_s (see dotU8); `_x` computes the
//   same integers without it, for machines where relaxed_dot_probe() fails.
//     y, ys  f32 output, element (t, r) at y + 4·(t·ys + r)

// ---------------------------------------------------------------------------------------------
// Scalar helpers

// @ts-expect-error: AssemblyScript decorator
@inline
function f16tof32(h: u32): f32 {
  return reinterpret<f32>(((h & 0x8000) << 16) | ((h & 0x7fff) << 13)) * reinterpret<f32>(0x77800000);
}

/** The fp16 value nearest to x (ties to even), as an f32 (src/engine/float16.ts f16round). */
function f16round(x: f32): f32 {
  const u = reinterpret<u32>(x);
  const a = u & 0x7fffffff;
  if (a < 0x38800000) {
    const r = <f32>((<f64>x + 402653184.0) - 402653184.0);
    return r == 0 ? x * 0 : r;
  }
  if (a >= 0x477ff000) {
    if (a > 0x7f800000) return NaN;
    return u >> 31 ? -Infinity : Infinity;
  }
  return reinterpret<f32>((u + 0xfff + ((u >> 13) & 1)) & 0xffffe000);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function q8i(v: f32): i32 {
  return <i32>nearest<f32>(v);
}

// ---------------------------------------------------------------------------------------------
// Activation quantization

/**
 * Q8_0 activations: x f32 (nTok, n) → q i16 (nTok, n), d f32 (nTok, n/32) = fp16(amax/127), and
 * s u8 (nTok, 2n): per token the magnitudes |q| (n bytes) then the sign masks q < 0 ? 0xff : 0 (n
 * bytes), mm_q8r's relaxed one-token operands.
 * quantize_q8i: the same quants as int8, and s as pairs [f32 fp16(d·Σq), i32 Σq] (nTok × n/32 × 8
 * bytes: the Q8_1 block sums).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function quantizeQ8(I8: bool, x: usize, n: i32, nTok: i32, q: usize, d: usize, s: usize): void {
  const nb = n >> 5;
  const absMask = i32x4.splat(0x7fffffff);
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const xp = x + (<usize>(t * n + b * 32) << 2);
      const qp = q + (<usize>(t * n + b * 32) << (I8 ? 0 : 1));
      // amax: pmax(m, a) = m < a ? a : m, like the scalar `if (a > amax) amax = a` (NaN never wins)
      let m = f32x4.splat(0);
      for (let j = 0; j < 32; j += 4) m = f32x4.pmax(m, v128.and(v128.load(xp + (j << 2)), absMask));
      let amax: f32 = 0;
      for (let l = 0; l < 4; l++) {
        const a = l == 0 ? f32x4.extract_lane(m, 0) : l == 1 ? f32x4.extract_lane(m, 1) : l == 2 ? f32x4.extract_lane(m, 2) : f32x4.extract_lane(m, 3);
        if (a > amax) amax = a;
      }
      const dr: f32 = amax / 127;
      const id = f32x4.splat(amax != 0 ? <f32>127 / amax : 0);
      let sum = i32x4.splat(0);
      for (let j = 0; j < 32; j += 16) {
        const v0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp + (j << 2)), id)));
        const v1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp + (j << 2), 16), id)));
        const v2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp + (j << 2), 32), id)));
        const v3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp + (j << 2), 48), id)));
        sum = i32x4.add(sum, i32x4.add(i32x4.add(v0, v1), i32x4.add(v2, v3)));
        const w01 = i16x8.narrow_i32x4_s(v0, v1);
        const w23 = i16x8.narrow_i32x4_s(v2, v3);
        const q8 = i8x16.narrow_i16x8_s(w01, w23);
        if (I8) v128.store(qp + j, q8);
        else {
          v128.store(qp + (j << 1), w01);
          v128.store(qp + (j << 1), w23, 16);
          const sp = s + <usize>(2 * t * n + b * 32 + j);
          v128.store(sp, i8x16.abs(q8));
          v128.store(sp + <usize>n, i8x16.lt_s(q8, i8x16.splat(0)));
        }
      }
      store<f32>(d + (<usize>(t * nb + b) << 2), f16round(dr));
      const isum = hsum(sum);
      if (I8) {
        store<f32>(s + (<usize>(t * nb + b) << 3), f16round(dr * <f32>isum));
        store<i32>(s + (<usize>(t * nb + b) << 3), isum, 4);
      }
    }
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function quantizeQ8Generic(I8: bool, x: usize, n: i32, nTok: i32, q: usize, d: usize, s: usize): void {
  const nb = n >> 5;
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const xp = x + (<usize>(t * n + b * 32) << 2);
      const qp = q + (<usize>(t * n + b * 32) << (I8 ? 0 : 1));
      let amax: f32 = 0;
      for (let j = 0; j < 32; j++) {
        const a = abs<f32>(load<f32>(xp + (j << 2)));
        if (a > amax) amax = a;
      }
      const dr: f32 = amax / 127;
      const id: f32 = amax != 0 ? <f32>127 / amax : 0;
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const v = q8i(load<f32>(xp + (j << 2)) * id);
        if (I8) store<i8>(qp + j, <i8>v);
        else {
          store<i16>(qp + (j << 1), <i16>v);
          const sp = s + <usize>(2 * t * n + b * 32 + j);
          store<u8>(sp, <u8>abs<i32>(v));
          store<u8>(sp + <usize>n, v < 0 ? 0xff : 0);
        }
        sum += v;
      }
      store<f32>(d + (<usize>(t * nb + b) << 2), f16round(dr));
      if (I8) {
        store<f32>(s + (<usize>(t * nb + b) << 3), f16round(dr * <f32>sum));
        store<i32>(s + (<usize>(t * nb + b) << 3), sum, 4);
      }
    }
  }
}

export function quantize_q8(x: usize, n: i32, nTok: i32, q: usize, d: usize, s: usize): void {
  quantizeQ8(false, x, n, nTok, q, d, s);
}
/** quantize_q8's scalar twin. */
export function quantize_q8_generic(x: usize, n: i32, nTok: i32, q: usize, d: usize, s: usize): void {
  quantizeQ8Generic(false, x, n, nTok, q, d, s);
}
export function quantize_q8i(x: usize, n: i32, nTok: i32, q: usize, d: usize, s: usize): void {
  quantizeQ8(true, x, n, nTok, q, d, s);
}
/** quantize_q8i's scalar twin. */
export function quantize_q8i_generic(x: usize, n: i32, nTok: i32, q: usize, d: usize, s: usize): void {
  quantizeQ8Generic(true, x, n, nTok, q, d, s);
}

/**
 * Q8_K activations (quantize_row_q8_K_ref): x f32 (nTok, n) → q i8 (nTok, n), d f32 (nTok, n/256),
 * bs i16 (nTok, n/16) sums of 16 quants.
 */
export function quantize_q8k(x: usize, n: i32, nTok: i32, q: usize, d: usize, bs: usize): void {
  const nb = n >> 8;
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const e0 = t * n + b * 256;
      const xp = x + (<usize>e0 << 2);
      const qp = q + <usize>e0;
      const bp = bs + (<usize>(e0 >> 4) << 1);
      let amax: f32 = 0;
      let max: f32 = 0;
      for (let j = 0; j < 256; j++) {
        const v = load<f32>(xp + (j << 2));
        const a = abs<f32>(v);
        if (a > amax) {
          amax = a;
          max = v;
        }
      }
      if (amax == 0) {
        for (let j = 0; j < 256; j++) store<i8>(qp + j, 0);
        for (let j = 0; j < 16; j++) store<i16>(bp + (j << 1), 0);
        store<f32>(d + (<usize>(t * nb + b) << 2), 0);
        continue;
      }
      const iscale: f32 = <f32>-127 / max;
      for (let k = 0; k < 16; k++) {
        let sum = 0;
        for (let j = k * 16; j < k * 16 + 16; j++) {
          const v = min<i32>(127, q8i(iscale * load<f32>(xp + (j << 2))));
          store<i8>(qp + j, <i8>v);
          sum += v;
        }
        store<i16>(bp + (k << 1), <i16>sum);
      }
      store<f32>(d + (<usize>(t * nb + b) << 2), <f32>1 / iscale);
    }
  }
}

/** In place: x[i] = fp16(x[i]) (kind "f16") for n elements. */
export function round_f16(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(x + (i << 2), f16round(load<f32>(x + (i << 2))));
}

/** In place: x[i] = bf16(x[i]) (round to nearest even; NaN stays NaN). */
export function round_bf16(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = x + (i << 2);
    const u = load<u32>(p);
    if ((u & 0x7fffffff) > 0x7f800000) store<f32>(p, NaN);
    else store<u32>(p, ((u + (0x7fff + ((u >> 16) & 1))) >> 16) << 16);
  }
}

// ---------------------------------------------------------------------------------------------
// SIMD building blocks

// @ts-expect-error: AssemblyScript decorator
@inline
function hsum4(s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  // [Σs0, Σs1, Σs2, Σs3]
  const a = i32x4.add(v128.shuffle<i32>(s0, s1, 0, 4, 1, 5), v128.shuffle<i32>(s0, s1, 2, 6, 3, 7));
  const c = i32x4.add(v128.shuffle<i32>(s2, s3, 0, 4, 1, 5), v128.shuffle<i32>(s2, s3, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(a, c, 0, 1, 4, 5), v128.shuffle<i32>(a, c, 2, 3, 6, 7));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

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
// of a block, then acc = acc + (d_w·d_x)·isum in f64 (exact products), block after block — so a
// batch of sequences gives exactly the logits of each sequence alone.
//
// (V8 schedules a fully unrolled token tile token after token and spills the widened weights; a
// loop over chunk pairs keeps each chunk's weights in registers while every token uses them.
// Decoding two row groups at a time, sharing the activation loads, was slower from L3: the two
// streams a group apart defeat the prefetcher for narrow matrices.)

// @ts-expect-error: AssemblyScript decorator
@inline
function q8Acc(acc: v128, dw: v128, dx: f32, isum: v128, hi: bool): v128 {
  // acc (f64x2, rows 0-1 or 2-3; dw their f64 scales) + (d_w·d_x)·isum: the products are exact in f64
  const s = f64x2.convert_low_i32x4_s(hi ? v128.shuffle<i32>(isum, isum, 2, 3, 0, 1) : isum);
  return f64x2.add(acc, f64x2.mul(f64x2.mul(dw, f64x2.splat(<f64>dx)), s));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function dwLo(dw: v128): v128 {
  return f64x2.promote_low_f32x4(dw);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function dwHi(dw: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<i32>(dw, dw, 2, 3, 0, 1));
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
  let al = f64x2.splat(0);
  let ah = al;
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
    const dw = v128.load(wp);
    const dx = load<f32>(xd + (<usize>b << 2));
    al = q8Acc(al, dwLo(dw), dx, s, false);
    ah = q8Acc(ah, dwHi(dw), dx, s, true);
  }
  storeY4(y, al, ah);
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
  let a0l = f64x2.splat(0); // token t0, rows 0-1
  let a0h = a0l; // token t0, rows 2-3
  let a1l = a0l;
  let a1h = a0l;
  let a2l = a0l;
  let a2h = a0l;
  let a3l = a0l;
  let a3h = a0l;
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
      const v = v128.load(q);
      let wl = i16x8.extend_low_i8x16_s(v);
      let wh = i16x8.extend_high_i8x16_s(v);
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
      const v2 = v128.load(q, 16);
      wl = i16x8.extend_low_i8x16_s(v2);
      wh = i16x8.extend_high_i8x16_s(v2);
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
    const dwl = dwLo(dw);
    const dwh = dwHi(dw);
    const dp = d0 + (<usize>b << 2);
    let s = q8Fold(l0, h0);
    let dx = load<f32>(dp);
    a0l = q8Acc(a0l, dwl, dx, s, false);
    a0h = q8Acc(a0h, dwh, dx, s, true);
    if (T > 1) {
      s = q8Fold(l1, h1);
      dx = load<f32>(dp + dr);
      a1l = q8Acc(a1l, dwl, dx, s, false);
      a1h = q8Acc(a1h, dwh, dx, s, true);
    }
    if (T > 2) {
      s = q8Fold(l2, h2);
      dx = load<f32>(dp + 2 * dr);
      a2l = q8Acc(a2l, dwl, dx, s, false);
      a2h = q8Acc(a2h, dwh, dx, s, true);
      s = q8Fold(l3, h3);
      dx = load<f32>(dp + 3 * dr);
      a3l = q8Acc(a3l, dwl, dx, s, false);
      a3h = q8Acc(a3h, dwh, dx, s, true);
    }
  }
  const yp = y + (<usize>(t0 * ys + g * 4) << 2);
  const yr = <usize>ys << 2;
  storeY4(yp, a0l, a0h);
  if (T > 1) storeY4(yp + yr, a1l, a1h);
  if (T > 2) {
    storeY4(yp + 2 * yr, a2l, a2h);
    storeY4(yp + 3 * yr, a3l, a3h);
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ8R(R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * 144;
  // pmaddwd's all-ones operand, from a runtime value: V8 would rematerialize a constant at every use
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    const wg = w + <usize>g * gb;
    let t = 0;
    for (; t + 4 <= nTok; t += 4) q8rTile(4, wg, nb, xq, xd, nCols, t, y, ys, g);
    if (t + 2 <= nTok) {
      q8rTile(2, wg, nb, xq, xd, nCols, t, y, ys, g);
      t += 2;
    }
    if (t < nTok) {
      if (R) {
        const xa = xs + <usize>t * (<usize>nCols << 1);
        q8rOne(wg, nb, xa, xa + <usize>nCols, xd + <usize>t * (<usize>nb << 2), ones, y + (<usize>(t * ys + g * 4) << 2));
      } else q8rTile(1, wg, nb, xq, xd, nCols, t, y, ys, g);
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
        let acc: f64 = 0;
        for (let b = 0; b < nb; b++) {
          const wp = w + <usize>g * gb + <usize>b * 144;
          const xp = xq + (<usize>(t * nCols + b * 32) << 1);
          let isum = 0;
          for (let j = 0; j < 32; j++) isum += <i32>load<i8>(wp + 16 + ((j >> 2) << 4) + 4 * k + (j & 3)) * <i32>load<i16>(xp + (j << 1));
          acc += (<f64>load<f32>(wp + 4 * k) * <f64>load<f32>(xd + (<usize>(t * nb + b) << 2))) * <f64>isum;
        }
        store<f32>(y + (<usize>(t * ys + g * 4 + k) << 2), <f32>acc);
      }
    }
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function storeY4(p: usize, a01: v128, a23: v128): void {
  const lo = f32x4.demote_f64x2_zero(a01);
  const hi = f32x4.demote_f64x2_zero(a23);
  v128.store(p, v128.shuffle<i32>(lo, hi, 0, 1, 4, 5));
}


// Q8U / Q8R1: Q4_0 / Q5_0 (Q8U: 144 bytes per group-block, f32 d[4], 4×32 quants stored unsigned,
// 0..15 / 0..31, x = d·(q − off), off = 8 / 16) and Q4_1 / Q5_1 (Q8R1: 160 bytes, f32 d[4], f32 m[4],
// 4×32 quants 0..15 / 0..31, x = d·q + m) — the quants of the 4 rows interleaved by chunks of 4
// columns (see q8uTile), against int8 activations (quantize_q8i: xs = pairs [Q8_1
// block sum s_x, Σq_x]). The unsigned quants are dotted with the activations by
// i16x8.relaxed_dot_i8x16_i7x16_s (see dotU8 below); the offset comes off in integers:
//   isum = Σ q·x − off·Σx (exactly ggml's Σ(q − off)·x);  acc = acc + (d_w·d_x)·isum [+ m_w·s_x] in f64.
// The same f64 operations as Q8R: results equal those of the int8-widened layout before it.

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
function q8uAcc(hdr: i32, OFF: i32, acc: v128, dw: v128, mw: v128, sums: v128, dx: usize, sx: usize, hi: bool): v128 {
  let isum = hi ? v128.shuffle<i32>(sums, sums, 2, 3, 0, 1) : sums;
  if (OFF != 0) isum = i32x4.sub(isum, i32x4.splat(OFF * load<i32>(sx, 4)));
  let r = f64x2.mul(f64x2.mul(dw, f64x2.splat(<f64>load<f32>(dx))), f64x2.convert_low_i32x4_s(isum));
  if (hdr == 32) r = f64x2.add(r, f64x2.mul(mw, f64x2.splat(<f64>load<f32>(sx))));
  return f64x2.add(acc, r);
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
  let a0l = f64x2.splat(0);
  let a0h = a0l;
  let a1l = a0l;
  let a1h = a0l;
  let a2l = a0l;
  let a2h = a0l;
  let a3l = a0l;
  let a3h = a0l;
  for (let b = 0; b < nb; b++) {
    const wp = wg + <usize>b * gbb;
    const xp = x0 + (<usize>b << 5);
    const q = wp + <usize>hdr;
    const dw = v128.load(wp);
    const dwl = f64x2.promote_low_f32x4(dw);
    const dwh = f64x2.promote_low_f32x4(v128.shuffle<i32>(dw, dw, 2, 3, 0, 1));
    let mwl = dwl;
    let mwh = dwh;
    if (hdr == 32) {
      const mw = v128.load(wp, 16);
      mwl = f64x2.promote_low_f32x4(mw);
      mwh = f64x2.promote_low_f32x4(v128.shuffle<i32>(mw, mw, 2, 3, 0, 1));
    }
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
    a0l = q8uAcc(hdr, OFF, a0l, dwl, mwl, sums0, d0 + bo, s0 + so, false);
    a0h = q8uAcc(hdr, OFF, a0h, dwh, mwh, sums0, d0 + bo, s0 + so, true);
    if (T > 1) {
      a1l = q8uAcc(hdr, OFF, a1l, dwl, mwl, sums1, d0 + dr + bo, s0 + sr + so, false);
      a1h = q8uAcc(hdr, OFF, a1h, dwh, mwh, sums1, d0 + dr + bo, s0 + sr + so, true);
    }
    if (T > 2) {
      a2l = q8uAcc(hdr, OFF, a2l, dwl, mwl, sums2, d0 + 2 * dr + bo, s0 + 2 * sr + so, false);
      a2h = q8uAcc(hdr, OFF, a2h, dwh, mwh, sums2, d0 + 2 * dr + bo, s0 + 2 * sr + so, true);
      a3l = q8uAcc(hdr, OFF, a3l, dwl, mwl, sums3, d0 + 3 * dr + bo, s0 + 3 * sr + so, false);
      a3h = q8uAcc(hdr, OFF, a3h, dwh, mwh, sums3, d0 + 3 * dr + bo, s0 + 3 * sr + so, true);
    }
  }
  const yp = y + (<usize>(t0 * ys + g * 4) << 2);
  const yr = <usize>ys << 2;
  storeY4(yp, a0l, a0h);
  if (T > 1) storeY4(yp + yr, a1l, a1h);
  if (T > 2) {
    storeY4(yp + 2 * yr, a2l, a2h);
    storeY4(yp + 3 * yr, a3l, a3h);
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ8U(hdr: i32, OFF: i32, R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * <usize>(hdr + 128);
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    const wg = w + <usize>g * gb;
    let t = 0;
    for (; t + 4 <= nTok; t += 4) q8uTile(hdr, OFF, R, 4, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
    if (t + 2 <= nTok) {
      q8uTile(hdr, OFF, R, 2, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
      t += 2;
    }
    if (t < nTok) q8uTile(hdr, OFF, R, 1, wg, nb, xq, xd, xs, nCols, t, y, ys, g);
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
        let acc: f64 = 0;
        for (let b = 0; b < nb; b++) {
          const wp = w + <usize>g * gb + <usize>b * gbb;
          const xp = xq + <usize>(t * nCols + b * 32);
          const sp = xs + (<usize>(t * nb + b) << 3);
          let isum = 0;
          for (let j = 0; j < 32; j++) isum += <i32>load<u8>(wp + hdr + ((j >> 2) << 4) + 4 * k + (j & 3)) * <i32>load<i8>(xp + j);
          isum -= OFF * load<i32>(sp, 4);
          let sc = (<f64>load<f32>(wp + 4 * k) * <f64>load<f32>(xd + (<usize>(t * nb + b) << 2))) * <f64>isum;
          if (hdr == 32) sc = sc + <f64>load<f32>(wp + 16 + 4 * k) * <f64>load<f32>(sp);
          acc = acc + sc;
        }
        store<f32>(y + (<usize>(t * ys + g * 4 + k) << 2), <f32>acc);
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

// ---------------------------------------------------------------------------------------------
// K-quants against Q8_K activations as int8 (xq: i8 (nTok, nCols), xd: f32 per 256, xs: i16 sums
// of 16 quants). The weights' quants are unsigned (0..15, 0..31, 0..63), so 16 of them are dotted
// with 16 int8 activations by one i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw on x86, sdot on ARM:
// exact for a 7-bit unsigned operand, no saturation at these magnitudes) — relaxed_dot_probe()
// checks it at start-up; the `_x` kernels compute the same i16 pair sums with exact SIMD ops.
// Per super-block of 256: isum = Σ_j sc_j·Σ q·x, msum = Σ_k m_k·bsum_k, and (in f64, the min
// term in its own accumulator as in ggml's AVX2 code)
//   a = a + (d·d_x)·isum;  m = m + (dmin·d_x)·msum;  y = f32(a − m)
// Token tiling as for Q8R (T = 4, 2, 1 tokens per pass over a row).

// @ts-expect-error: AssemblyScript decorator
@inline
function dotU8(w: v128, x: v128, R: bool): v128 {
  // i16x8 sums of adjacent products of 16 unsigned 7-bit weights w and 16 int8 activations x
  if (R) return i16x8.relaxed_dot_i8x16_i7x16_s(x, w);
  const lo = i16x8.mul(i16x8.extend_low_i8x16_u(w), i16x8.extend_low_i8x16_s(x));
  const hi = i16x8.mul(i16x8.extend_high_i8x16_u(w), i16x8.extend_high_i8x16_s(x));
  return i16x8.add(v128.shuffle<i16>(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14), v128.shuffle<i16>(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15));
}

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
// 16-column activation sums. Per super-block (f64, exact products, the generic twin's order):
//   a = a + (d·d_x)·isum;  m = m + (dmin·d_x)·msum;  y = f32(a − m)
// Tokens go through one at a time or in pairs (2 × 2 i16 accumulators, no spills); a tile of more
// tokens would spill and re-reads the group's weights from L1 anyway.

// @ts-expect-error: AssemblyScript decorator
@inline
function q4kW(s: v128, q: v128, x: usize, R: bool): v128 {
  // s + the 4 rows' pair sums of one nibble half (q: 16 bytes of 0..15) · 4 activations at x
  return i16x8.add(s, dotU8(q, v128.load32_splat(x), R));
}

/** [Σ_j m_kj·(bs_2j + bs_2j+1)] for rows k = 0..3: mins at mp (u8 [4][8]), the 16 activation sums at bs. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q4kMins(mp: usize, bs: usize, ones: v128): v128 {
  const b = i16x8.narrow_i32x4_s(i32x4.dot_i16x8_s(v128.load(bs), ones), i32x4.dot_i16x8_s(v128.load(bs, 16), ones));
  return hsum4(
    i32x4.dot_i16x8_s(v128.load8x8_u(mp), b),
    i32x4.dot_i16x8_s(v128.load8x8_u(mp, 8), b),
    i32x4.dot_i16x8_s(v128.load8x8_u(mp, 16), b),
    i32x4.dot_i16x8_s(v128.load8x8_u(mp, 24), b),
  );
}

/** acc (f64x2 [a(r0), a(r1)] or rows 2-3) + (d·d_x)·isum for rows lo/hi of the i32x4 sums s. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q4kAcc(acc: v128, d: v128, dx: v128, s: v128, hi: bool): v128 {
  const dd = f64x2.promote_low_f32x4(hi ? v128.shuffle<i32>(d, d, 2, 3, 0, 1) : d);
  return f64x2.add(acc, f64x2.mul(f64x2.mul(dd, dx), f64x2.convert_low_i32x4_s(hi ? v128.shuffle<i32>(s, s, 2, 3, 0, 1) : s)));
}

/** One group of 4 rows × tokens t0 (and t0 + 1 when T = 2) → y. */
// @ts-expect-error: AssemblyScript decorator
@inline
function q4krTile(R: bool, T: i32, wg: usize, nsb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, t0: i32, y: usize, ys: i32, g: i32): void {
  // constants from a runtime value: V8 would rematerialize a constant at each use
  const mask = i8x16.splat(<i8>(0x0f | (nCols >>> 31)));
  const ones = i16x8.splat(<i16>(1 + (nCols >>> 31)));
  const xr = <usize>nCols; // bytes per token of xq
  const dr = <usize>nsb << 2; // bytes per token of xd
  const br = <usize>nCols >> 3; // bytes per token of xs (i16 per 16)
  let a01 = f64x2.splat(0); // a of rows 0-1, token t0
  let a23 = a01;
  let m01 = a01;
  let m23 = a01;
  let b01 = a01; // token t0 + 1
  let b23 = a01;
  let n01 = a01;
  let n23 = a01;
  for (let sb = 0; sb < nsb; sb++) {
    const bp = wg + <usize>sb * 608;
    const xp = xq + <usize>t0 * xr + (<usize>sb << 8);
    let v0 = i32x4.splat(0); // Σ sc·Σ q·x of the 4 rows, token t0
    let v1 = v0; // token t0 + 1
    for (let c = 0; c < 4; c++) {
      const qp = bp + 96 + (<usize>c << 7);
      const x = xp + (<usize>c << 6);
      let l0 = i16x8.splat(0); // sub-block 2c (low nibbles), token t0
      let h0 = l0; // sub-block 2c + 1 (high nibbles)
      let l1 = l0;
      let h1 = l0;
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
      } else {
        for (let i: usize = 0; i < 32; i += 4) {
          const w = v128.load(qp + (i << 2));
          const lo = v128.and(w, mask);
          const hi = v128.and(i16x8.shr_u(w, 4), mask);
          l0 = q4kW(l0, lo, x + i, R);
          h0 = q4kW(h0, hi, x + 32 + i, R);
          l1 = q4kW(l1, lo, x + xr + i, R);
          h1 = q4kW(h1, hi, x + xr + 32 + i, R);
        }
      }
      // the chunk's scales: 8 bytes [sub 2c: rows 0-3, sub 2c+1: rows 0-3] → i16 pairs per row
      const sc = v128.load8x8_u(bp + 32 + (<usize>c << 3));
      const sl = v128.shuffle<i16>(sc, sc, 0, 0, 1, 1, 2, 2, 3, 3);
      const sh = v128.shuffle<i16>(sc, sc, 4, 4, 5, 5, 6, 6, 7, 7);
      v0 = i32x4.add(v0, i32x4.add(i32x4.dot_i16x8_s(l0, sl), i32x4.dot_i16x8_s(h0, sh)));
      if (T == 2) v1 = i32x4.add(v1, i32x4.add(i32x4.dot_i16x8_s(l1, sl), i32x4.dot_i16x8_s(h1, sh)));
    }
    const d = v128.load(bp);
    const dmin = v128.load(bp, 16);
    const bs = xs + <usize>t0 * br + (<usize>sb << 5);
    const dx = xd + <usize>t0 * dr + (<usize>sb << 2);
    const m0 = q4kMins(bp + 64, bs, ones);
    const x0 = f64x2.splat(<f64>load<f32>(dx));
    a01 = q4kAcc(a01, d, x0, v0, false);
    a23 = q4kAcc(a23, d, x0, v0, true);
    m01 = q4kAcc(m01, dmin, x0, m0, false);
    m23 = q4kAcc(m23, dmin, x0, m0, true);
    if (T == 2) {
      const m1 = q4kMins(bp + 64, bs + br, ones);
      const x1 = f64x2.splat(<f64>load<f32>(dx + dr));
      b01 = q4kAcc(b01, d, x1, v1, false);
      b23 = q4kAcc(b23, d, x1, v1, true);
      n01 = q4kAcc(n01, dmin, x1, m1, false);
      n23 = q4kAcc(n23, dmin, x1, m1, true);
    }
  }
  const yp = y + (<usize>(t0 * ys + (g << 2)) << 2);
  storeY4(yp, f64x2.sub(a01, m01), f64x2.sub(a23, m23));
  if (T == 2) storeY4(yp + (<usize>ys << 2), f64x2.sub(b01, n01), f64x2.sub(b23, n23));
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmQ4K(R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const groupBytes = <usize>nsb * 608;
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    const wg = w + <usize>g * groupBytes;
    let t = 0;
    for (; t + 2 <= nTok; t += 2) q4krTile(R, 2, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
    if (t < nTok) q4krTile(R, 1, wg, nsb, xq, xd, xs, nCols, t, y, ys, g);
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
      let a: f64 = 0;
      let m: f64 = 0;
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
        const dx = <f64>load<f32>(xd + (<usize>(t * nsb + sb) << 2));
        a = a + (<f64>load<f32>(bp + 4 * k) * dx) * <f64>isum;
        m = m + (<f64>load<f32>(bp + 16 + 4 * k) * dx) * <f64>msum;
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>(a - m));
    }
  }
}

// K-quants (K8 below) share these f64 [a, m] helpers.
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


// ---------------------------------------------------------------------------------------------
// K8: Q5_K and Q6_K widened to one byte per quant at load time, 336 bytes per 256 elements, row
// after row: f32 d, f32 dmin, 8 bytes pad, i16 sc[16] (scale of each 16 elements), i16 m[16]
// (offset of each 16), u8 q[256]. Q5_K (mm_k8): q 0..31, m = the 6-bit min of the 32-element
// sub-block, x = d·sc·q − dmin·m. Q6_K (mm_k6): q 0..63 (stored +32), m = 32·sc, x = d·(sc·q − m),
// so the offset is taken off in integers (isum − msum) as ggml does, and dmin is unused.

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
function k8Tile(I: bool, R: bool, T: i32, wr: usize, nsb: i32, xq: usize, xd: usize, xs: usize, nCols: i32, t0: i32, y: usize, ys: i32, r: i32): void {
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
    const dmin = I ? <f32>0 : load<f32>(bp, 4);
    const dd = f64x2.replace_lane(f64x2.splat(<f64>d), 1, <f64>dmin);
    const dx = xd + <usize>t0 * dr + (<usize>sb << 2);
    let m0 = i32x4.add(i32x4.dot_i16x8_s(v128.load(bs), mLo), i32x4.dot_i16x8_s(v128.load(bs, 16), mHi));
    let m1 = m0;
    if (T > 1) m1 = i32x4.add(i32x4.dot_i16x8_s(v128.load(bs + br), mLo), i32x4.dot_i16x8_s(v128.load(bs + br, 16), mHi));
    if (I) {
      v0 = i32x4.sub(v0, m0);
      v1 = i32x4.sub(v1, m1);
      m0 = i32x4.splat(0);
      m1 = m0;
    }
    const h01 = hsum4(v0, m0, v1, m1);
    acc0 = kAcc(acc0, h01, dd, load<f32>(dx));
    if (T > 1) acc1 = kAcc(acc1, v128.shuffle<i32>(h01, h01, 2, 3, 0, 1), dd, load<f32>(dx + dr));
    if (T > 2) {
      let m2 = i32x4.add(i32x4.dot_i16x8_s(v128.load(bs + 2 * br), mLo), i32x4.dot_i16x8_s(v128.load(bs + 2 * br, 16), mHi));
      let m3 = i32x4.add(i32x4.dot_i16x8_s(v128.load(bs + 3 * br), mLo), i32x4.dot_i16x8_s(v128.load(bs + 3 * br, 16), mHi));
      if (I) {
        v2 = i32x4.sub(v2, m2);
        v3 = i32x4.sub(v3, m3);
        m2 = i32x4.splat(0);
        m3 = m2;
      }
      const h23 = hsum4(v2, m2, v3, m3);
      acc2 = kAcc(acc2, h23, dd, load<f32>(dx + 2 * dr));
      acc3 = kAcc(acc3, v128.shuffle<i32>(h23, h23, 2, 3, 0, 1), dd, load<f32>(dx + 3 * dr));
    }
  }
  kStore(acc0, acc1, acc2, acc3, T, y, ys, t0, r);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmK8(I: bool, R: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const rowBytes = <usize>nsb * 336;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    let t = 0;
    for (; t + 4 <= nTok; t += 4) k8Tile(I, R, 4, wr, nsb, xq, xd, xs, nCols, t, y, ys, r);
    if (t + 2 <= nTok) {
      k8Tile(I, R, 2, wr, nsb, xq, xd, xs, nCols, t, y, ys, r);
      t += 2;
    }
    if (t < nTok) k8Tile(I, R, 1, wr, nsb, xq, xd, xs, nCols, t, y, ys, r);
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmK8Generic(I: bool, w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
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
        if (I) {
          a = a + (<f64>load<f32>(bp) * dx) * <f64>(isum - msum);
          m = m + (0 * dx) * 0;
        } else {
          a = a + (<f64>load<f32>(bp) * dx) * <f64>isum;
          m = m + (<f64>load<f32>(bp, 4) * dx) * <f64>msum;
        }
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>(a - m));
    }
  }
}

export function mm_k8(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8(false, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_k8_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8(false, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_k8_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8Generic(false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_k6(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8(true, true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_k6_x(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8(true, false, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}
export function mm_k6_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  mmK8Generic(true, w, nCols, r0, r1, xq, xd, xs, nTok, y, ys);
}

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
 * Rows [r, r + R) × tokens [t0, t0 + T) (R, T = 1, 2): each weight vector is loaded and converted
 * once per tile, and the R·T outputs' f64 add chains are independent (one output's two chains are
 * latency-bound on their own).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function floatTile(kind: i32, R: i32, T: i32, wr: usize, rowBytes: usize, nCols: i32, x: usize, t0: i32, y: usize, ys: i32, r: i32): void {
  const n4 = nCols & ~3;
  const x0 = x + (<usize>(t0 * nCols) << 2);
  const x1 = x0 + (<usize>nCols << 2);
  const w1 = wr + rowBytes;
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
    floatStore(kind, c01, c23, w1, x0, n4, nCols, yp + 4);
    if (T > 1) floatStore(kind, d01, d23, w1, x1, n4, nCols, yp + yt + 4);
  }
}

// @ts-expect-error: AssemblyScript decorator
@inline
function floatRows(kind: i32, R: i32, wr: usize, rowBytes: usize, nCols: i32, x: usize, nTok: i32, y: usize, ys: i32, r: i32): void {
  let t = 0;
  for (; t + 2 <= nTok; t += 2) floatTile(kind, R, 2, wr, rowBytes, nCols, x, t, y, ys, r);
  if (t < nTok) floatTile(kind, R, 1, wr, rowBytes, nCols, x, t, y, ys, r);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function mmFloat(kind: i32, w: usize, nCols: i32, r0: i32, r1: i32, x: usize, nTok: i32, y: usize, ys: i32): void {
  const rowBytes = <usize>nCols * <usize>(kind == 0 ? 4 : 2);
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

// ---------------------------------------------------------------------------------------------
// Attention over the KV cache (src/engine/attention.ts has the same arithmetic in TypeScript)
//
// Online softmax with llama.cpp's CPU flash-attention numerics: for each query head, positions
// j = 0 .. pos0+t in order:
//   dot  = Σ q_i·k_ji in f64, lanes i%4 summed separately, then (l0 + l2) + (l1 + l3)
//   s    = f32(dot) · scale (f32)
//   s > M: ms = f32(exp(M - s)), M = s, acc = round(acc · ms)    else vs = f32(exp(s - M))
//   acc  = round(f32(f64(acc) + f64(v_j)·vs))                      (an FMA, rounded to f32 once)
//   S    = f32(S·ms + vs)
//   out  = acc · f32(1 / S)
// round = fp16 rounding for an F16 cache (f16 != 0), none for F32; q is rounded to fp16 too.
// exp is musl's f64 exp (NativeMath.exp; expNeg2 below, four at a time, the same bits) rounded to
// f32, which equals the TypeScript fround(Math.exp(x)) (V8's fdlibm) for every f32 x in [-104, 0]
// (checked exhaustively; below that both round to 0).
// The SIMD kernels split this loop into passes (see attendBody) with the same operations per value.
// The f64 products and sums of the acc update emulate the FMA of ggml_vec_mad_f16 (one rounding to
// f32, then to fp16).

/**
 * f16round on 4 lanes, the same values as f16round lane by lane. The constants come in as
 * arguments (loaded from memory once per call: a v128.const in the loop costs V8 several instructions).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function f16round4(x: v128, cAbs: v128, cLo: v128, cSpan: v128, cHalf: v128, cOne: v128, cMask: v128): v128 {
  const a = v128.and(x, cAbs);
  // common case: every lane in the normal fp16 range [2^-14, 65520): keep 10 mantissa bits, ties to even
  if (!v128.any_true(i32x4.ge_u(i32x4.sub(a, cLo), cSpan))) {
    return v128.and(i32x4.add(i32x4.add(x, cHalf), v128.and(i32x4.shr_u(x, 13), cOne)), cMask);
  }
  return f16round4Slow(x);
}

// @ts-expect-error: AssemblyScript decorator
@inline
const F16R_CONSTS: i32 = 8;

/** Writes f16round4's (and f16roundK's) constants at c (8·16 bytes). */
function f16round4Consts(c: usize): void {
  v128.store(c, i32x4.splat(0x7fffffff));
  v128.store(c, i32x4.splat(0x38800000), 16);
  v128.store(c, i32x4.splat(0x477ff000 - 0x38800000), 32);
  v128.store(c, i32x4.splat(0xfff), 48);
  v128.store(c, i32x4.splat(1), 64);
  v128.store(c, i32x4.splat(0xffffe000), 80);
  v128.store(c, i32x4.splat(0xff800000), 96);
  v128.store(c, i32x4.splat((13 << 23) | 0x400000), 112);
}

/**
 * x rounded to fp16 where every lane's |x| is in the normal fp16 range [2^-14, 65520) (the caller
 * checks): with K = ±1.5·2^(e+13) (the sign and exponent e of x), x + K lies in a binade whose f32
 * step is x's fp16 step, so (x + K) − K is x rounded to fp16, ties to even (K is an even multiple
 * of the step) — equal to f16round for every f32 in that range of either sign (checked exhaustively).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function f16roundK(x: v128, cES: v128, cK: v128): v128 {
  const K = i32x4.add(v128.and(x, cES), cK);
  return f32x4.sub(f32x4.add(x, K), K);
}

/** f16round4 when some lane is outside the normal range (zero, fp16 subnormal, overflow, NaN). */
function f16round4Slow(x: v128): v128 {
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  if (v128.any_true(i32x4.ge_u(a, i32x4.splat(0x477ff000)))) {
    // overflow / NaN in some lane: lane by lane
    let r = f32x4.replace_lane(x, 0, f16round(f32x4.extract_lane(x, 0)));
    r = f32x4.replace_lane(r, 1, f16round(f32x4.extract_lane(x, 1)));
    r = f32x4.replace_lane(r, 2, f16round(f32x4.extract_lane(x, 2)));
    return f32x4.replace_lane(r, 3, f16round(f32x4.extract_lane(x, 3)));
  }
  const normal = v128.and(
    i32x4.add(i32x4.add(x, i32x4.splat(0xfff)), v128.and(i32x4.shr_u(x, 13), i32x4.splat(1))),
    i32x4.splat(0xffffe000),
  );
  // |x| < 2^-14: x + 0.75 lies in [0.5, 1) where the f32 step is 2^-24, the fp16 subnormal step
  // (0.75 is an even multiple of it, so ties round to even as they should); keep the sign of zero
  const sub = v128.or(
    f32x4.sub(f32x4.add(x, f32x4.splat(0.75)), f32x4.splat(0.75)),
    v128.and(x, i32x4.splat(0x80000000)),
  );
  return v128.bitselect(sub, normal, i32x4.lt_u(a, i32x4.splat(0x38800000)));
}

/**
 * f16round on 4 lanes for any input, without calls (f16round4Slow's arithmetic, and overflow to
 * ±inf, NaN to NaN, as f16round): the rare paths of accumulate32, where a call would make V8 keep
 * the loop's values on the stack.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function f16round4Any(x: v128): v128 {
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  const sign = v128.and(x, i32x4.splat(0x80000000));
  const normal = v128.and(
    i32x4.add(i32x4.add(x, i32x4.splat(0xfff)), v128.and(i32x4.shr_u(x, 13), i32x4.splat(1))),
    i32x4.splat(0xffffe000),
  );
  const sub = v128.or(f32x4.sub(f32x4.add(x, f32x4.splat(0.75)), f32x4.splat(0.75)), sign);
  const big = v128.bitselect(i32x4.splat(0x7fc00000), v128.or(sign, i32x4.splat(0x7f800000)), i32x4.gt_u(a, i32x4.splat(0x7f800000)));
  const r = v128.bitselect(sub, normal, i32x4.lt_u(a, i32x4.splat(0x38800000)));
  return v128.bitselect(big, r, i32x4.ge_u(a, i32x4.splat(0x477ff000)));
}

/**
 * musl's exp table (__exp_data.tab, the one AssemblyScript's NativeMath.exp reads): for i < 128,
 * [2i] the tail and [2i + 1] the bits of 2^(i/128) less i << 45. (A copy: the standard library keeps
 * its EXP_DATA_TAB private to std/assembly/util/math.ts.)
 */
const EXP_TAB = memory.data<u64>([
  0x0000000000000000, 0x3FF0000000000000, 0x3C9B3B4F1A88BF6E, 0x3FEFF63DA9FB3335,
  0xBC7160139CD8DC5D, 0x3FEFEC9A3E778061, 0xBC905E7A108766D1, 0x3FEFE315E86E7F85,
  0x3C8CD2523567F613, 0x3FEFD9B0D3158574, 0xBC8BCE8023F98EFA, 0x3FEFD06B29DDF6DE,
  0x3C60F74E61E6C861, 0x3FEFC74518759BC8, 0x3C90A3E45B33D399, 0x3FEFBE3ECAC6F383,
  0x3C979AA65D837B6D, 0x3FEFB5586CF9890F, 0x3C8EB51A92FDEFFC, 0x3FEFAC922B7247F7,
  0x3C3EBE3D702F9CD1, 0x3FEFA3EC32D3D1A2, 0xBC6A033489906E0B, 0x3FEF9B66AFFED31B,
  0xBC9556522A2FBD0E, 0x3FEF9301D0125B51, 0xBC5080EF8C4EEA55, 0x3FEF8ABDC06C31CC,
  0xBC91C923B9D5F416, 0x3FEF829AAEA92DE0, 0x3C80D3E3E95C55AF, 0x3FEF7A98C8A58E51,
  0xBC801B15EAA59348, 0x3FEF72B83C7D517B, 0xBC8F1FF055DE323D, 0x3FEF6AF9388C8DEA,
  0x3C8B898C3F1353BF, 0x3FEF635BEB6FCB75, 0xBC96D99C7611EB26, 0x3FEF5BE084045CD4,
  0x3C9AECF73E3A2F60, 0x3FEF54873168B9AA, 0xBC8FE782CB86389D, 0x3FEF4D5022FCD91D,
  0x3C8A6F4144A6C38D, 0x3FEF463B88628CD6, 0x3C807A05B0E4047D, 0x3FEF3F49917DDC96,
  0x3C968EFDE3A8A894, 0x3FEF387A6E756238, 0x3C875E18F274487D, 0x3FEF31CE4FB2A63F,
  0x3C80472B981FE7F2, 0x3FEF2B4565E27CDD, 0xBC96B87B3F71085E, 0x3FEF24DFE1F56381,
  0x3C82F7E16D09AB31, 0x3FEF1E9DF51FDEE1, 0xBC3D219B1A6FBFFA, 0x3FEF187FD0DAD990,
  0x3C8B3782720C0AB4, 0x3FEF1285A6E4030B, 0x3C6E149289CECB8F, 0x3FEF0CAFA93E2F56,
  0x3C834D754DB0ABB6, 0x3FEF06FE0A31B715, 0x3C864201E2AC744C, 0x3FEF0170FC4CD831,
  0x3C8FDD395DD3F84A, 0x3FEEFC08B26416FF, 0xBC86A3803B8E5B04, 0x3FEEF6C55F929FF1,
  0xBC924AEDCC4B5068, 0x3FEEF1A7373AA9CB, 0xBC9907F81B512D8E, 0x3FEEECAE6D05D866,
  0xBC71D1E83E9436D2, 0x3FEEE7DB34E59FF7, 0xBC991919B3CE1B15, 0x3FEEE32DC313A8E5,
  0x3C859F48A72A4C6D, 0x3FEEDEA64C123422, 0xBC9312607A28698A, 0x3FEEDA4504AC801C,
  0xBC58A78F4817895B, 0x3FEED60A21F72E2A, 0xBC7C2C9B67499A1B, 0x3FEED1F5D950A897,
  0x3C4363ED60C2AC11, 0x3FEECE086061892D, 0x3C9666093B0664EF, 0x3FEECA41ED1D0057,
  0x3C6ECCE1DAA10379, 0x3FEEC6A2B5C13CD0, 0x3C93FF8E3F0F1230, 0x3FEEC32AF0D7D3DE,
  0x3C7690CEBB7AAFB0, 0x3FEEBFDAD5362A27, 0x3C931DBDEB54E077, 0x3FEEBCB299FDDD0D,
  0xBC8F94340071A38E, 0x3FEEB9B2769D2CA7, 0xBC87DECCDC93A349, 0x3FEEB6DAA2CF6642,
  0xBC78DEC6BD0F385F, 0x3FEEB42B569D4F82, 0xBC861246EC7B5CF6, 0x3FEEB1A4CA5D920F,
  0x3C93350518FDD78E, 0x3FEEAF4736B527DA, 0x3C7B98B72F8A9B05, 0x3FEEAD12D497C7FD,
  0x3C9063E1E21C5409, 0x3FEEAB07DD485429, 0x3C34C7855019C6EA, 0x3FEEA9268A5946B7,
  0x3C9432E62B64C035, 0x3FEEA76F15AD2148, 0xBC8CE44A6199769F, 0x3FEEA5E1B976DC09,
  0xBC8C33C53BEF4DA8, 0x3FEEA47EB03A5585, 0xBC845378892BE9AE, 0x3FEEA34634CCC320,
  0xBC93CEDD78565858, 0x3FEEA23882552225, 0x3C5710AA807E1964, 0x3FEEA155D44CA973,
  0xBC93B3EFBF5E2228, 0x3FEEA09E667F3BCD, 0xBC6A12AD8734B982, 0x3FEEA012750BDABF,
  0xBC6367EFB86DA9EE, 0x3FEE9FB23C651A2F, 0xBC80DC3D54E08851, 0x3FEE9F7DF9519484,
  0xBC781F647E5A3ECF, 0x3FEE9F75E8EC5F74, 0xBC86EE4AC08B7DB0, 0x3FEE9F9A48A58174,
  0xBC8619321E55E68A, 0x3FEE9FEB564267C9, 0x3C909CCB5E09D4D3, 0x3FEEA0694FDE5D3F,
  0xBC7B32DCB94DA51D, 0x3FEEA11473EB0187, 0x3C94ECFD5467C06B, 0x3FEEA1ED0130C132,
  0x3C65EBE1ABD66C55, 0x3FEEA2F336CF4E62, 0xBC88A1C52FB3CF42, 0x3FEEA427543E1A12,
  0xBC9369B6F13B3734, 0x3FEEA589994CCE13, 0xBC805E843A19FF1E, 0x3FEEA71A4623C7AD,
  0xBC94D450D872576E, 0x3FEEA8D99B4492ED, 0x3C90AD675B0E8A00, 0x3FEEAAC7D98A6699,
  0x3C8DB72FC1F0EAB4, 0x3FEEACE5422AA0DB, 0xBC65B6609CC5E7FF, 0x3FEEAF3216B5448C,
  0x3C7BF68359F35F44, 0x3FEEB1AE99157736, 0xBC93091FA71E3D83, 0x3FEEB45B0B91FFC6,
  0xBC5DA9B88B6C1E29, 0x3FEEB737B0CDC5E5, 0xBC6C23F97C90B959, 0x3FEEBA44CBC8520F,
  0xBC92434322F4F9AA, 0x3FEEBD829FDE4E50, 0xBC85CA6CD7668E4B, 0x3FEEC0F170CA07BA,
  0x3C71AFFC2B91CE27, 0x3FEEC49182A3F090, 0x3C6DD235E10A73BB, 0x3FEEC86319E32323,
  0xBC87C50422622263, 0x3FEECC667B5DE565, 0x3C8B1C86E3E231D5, 0x3FEED09BEC4A2D33,
  0xBC91BBD1D3BCBB15, 0x3FEED503B23E255D, 0x3C90CC319CEE31D2, 0x3FEED99E1330B358,
  0x3C8469846E735AB3, 0x3FEEDE6B5579FDBF, 0xBC82DFCD978E9DB4, 0x3FEEE36BBFD3F37A,
  0x3C8C1A7792CB3387, 0x3FEEE89F995AD3AD, 0xBC907B8F4AD1D9FA, 0x3FEEEE07298DB666,
  0xBC55C3D956DCAEBA, 0x3FEEF3A2B84F15FB, 0xBC90A40E3DA6F640, 0x3FEEF9728DE5593A,
  0xBC68D6F438AD9334, 0x3FEEFF76F2FB5E47, 0xBC91EEE26B588A35, 0x3FEF05B030A1064A,
  0x3C74FFD70A5FDDCD, 0x3FEF0C1E904BC1D2, 0xBC91BDFBFA9298AC, 0x3FEF12C25BD71E09,
  0x3C736EAE30AF0CB3, 0x3FEF199BDD85529C, 0x3C8EE3325C9FFD94, 0x3FEF20AB5FFFD07A,
  0x3C84E08FD10959AC, 0x3FEF27F12E57D14B, 0x3C63CDAF384E1A67, 0x3FEF2F6D9406E7B5,
  0x3C676B2C6C921968, 0x3FEF3720DCEF9069, 0xBC808A1883CCB5D2, 0x3FEF3F0B555DC3FA,
  0xBC8FAD5D3FFFFA6F, 0x3FEF472D4A07897C, 0xBC900DAE3875A949, 0x3FEF4F87080D89F2,
  0x3C74A385A63D07A7, 0x3FEF5818DCFBA487, 0xBC82919E2040220F, 0x3FEF60E316C98398,
  0x3C8E5A50D5C192AC, 0x3FEF69E603DB3285, 0x3C843A59AC016B4B, 0x3FEF7321F301B460,
  0xBC82D52107B43E1F, 0x3FEF7C97337B9B5F, 0xBC892AB93B470DC9, 0x3FEF864614F5A129,
  0x3C74B604603A88D3, 0x3FEF902EE78B3FF6, 0x3C83C5EC519D7271, 0x3FEF9A51FBC74C83,
  0xBC8FF7128FD391F0, 0x3FEFA4AFA2A490DA, 0xBC8DAE98E223747D, 0x3FEFAF482D8E67F1,
  0x3C8EC3BC41AA2008, 0x3FEFBA1BEE615A27, 0x3C842B94C3A9EB32, 0x3FEFC52B376BBA97,
  0x3C8A64A931D185EE, 0x3FEFD0765B6E4540, 0xBC8E37BAE43BE3ED, 0x3FEFDBFDAD9CBE14,
  0x3C77893B4D91CD9D, 0x3FEFE7C1819E90D8, 0x3C5305C14160CC89, 0x3FEFF3C22B8F71F1,
]);

/** expNeg2's constants, two lanes each: InvLn2N, shift, NegLn2hiN, NegLn2loN, C2..C5 (musl's exp). */
const EXP_CONSTS = memory.data<u64>([
  0x40671547652B82FE, 0x40671547652B82FE, 0x4338000000000000, 0x4338000000000000,
  0xBF762E42FEFA0000, 0xBF762E42FEFA0000, 0xBD0CF79ABC9E3B3A, 0xBD0CF79ABC9E3B3A,
  0x3FDFFFFFFFFFFDBD, 0x3FDFFFFFFFFFFDBD, 0x3FC555555555543C, 0x3FC555555555543C,
  0x3FA55555CF172B91, 0x3FA55555CF172B91, 0x3F81111167A4D017, 0x3F81111167A4D017,
]);

/**
 * exp on 2 lanes, x in [-200, 0] (or NaN): NativeMath.exp's operations (musl's exp_lut, main path:
 * 2^(k/128) from the table times a degree-5 polynomial; error < 0.51 ulp), the same bits. For x
 * in that range musl's special cases give the same values as its main path (|x| < 2^-54: 1).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function expNeg2(x: v128): v128 {
  const c = EXP_CONSTS;
  const shift = v128.load(c, 16);
  const kdRaw = f64x2.add(f64x2.mul(v128.load(c), x), shift); // k = round(x·128/ln2), in the low bits
  const kd = f64x2.sub(kdRaw, shift);
  const r = f64x2.add(f64x2.add(x, f64x2.mul(kd, v128.load(c, 32))), f64x2.mul(kd, v128.load(c, 48)));
  const off = i32x4.shl(kdRaw, 4); // (k & 127) · 16: the table entry's byte offset, in lanes 0 and 2
  const p0 = EXP_TAB + <usize>(i32x4.extract_lane(off, 0) & 0x7f0);
  const p1 = EXP_TAB + <usize>(i32x4.extract_lane(off, 2) & 0x7f0);
  const tail = v128.load64_lane(p1, v128.load64_zero(p0), 1);
  const sbits = i64x2.add(v128.load64_lane(p1, v128.load64_zero(p0, 8), 1, 8), i64x2.shl(kdRaw, 45));
  const r2 = f64x2.mul(r, r);
  const tmp = f64x2.add(
    f64x2.add(f64x2.add(tail, r), f64x2.mul(r2, f64x2.add(v128.load(c, 64), f64x2.mul(r, v128.load(c, 80))))),
    f64x2.mul(f64x2.mul(r2, r2), f64x2.add(v128.load(c, 96), f64x2.mul(r, v128.load(c, 112)))),
  );
  return f64x2.add(sbits, f64x2.mul(sbits, tmp));
}

/**
 * In place: x = f32(exp(x)) for the n f32 at p (x <= 0, or NaN), four at a time: the same values
 * as f32(NativeMath.exp(x)) (below -200, exp(-200): 0 in f32 either way).
 */
function expNegF32(p: usize, n: i32): void {
  const lim = f32x4.splat(-200);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = p + (<usize>i << 2);
    const x = f32x4.pmax(v128.load(q), lim); // (pmax: NaN stays NaN)
    const lo = expNeg2(f64x2.promote_low_f32x4(x));
    const hi = expNeg2(f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 2, 3)));
    v128.store(q, v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
  }
  for (; i < n; i++) {
    const q = p + (<usize>i << 2);
    store<f32>(q, <f32>NativeMath.exp(<f64>load<f32>(q)));
  }
}

/** For the tests: expNegF32 on the n f32 at p. */
export function attend_exp(p: usize, n: i32): void {
  expNegF32(p, n);
}

/** For the tests: f32(NativeMath.exp(x)) on the n f32 at p (attend_generic's exp). */
export function attend_exp_generic(p: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const q = p + (<usize>i << 2);
    store<f32>(q, <f32>NativeMath.exp(<f64>load<f32>(q)));
  }
}

/**
 * Pass (3) of attendBody for the 32 accumulator lanes at p (F16: fp16 rounding, else none), held
 * in registers over all positions: v_j at vp + j·vRow, the exps at sc, the rescaling positions at
 * rl (nR of them, ascending). Returns S. With F16 one range check covers the 32 lanes of a step,
 * then f16roundK (f16round4Any where some lane is out of the normal fp16 range: zero, tiny, huge;
 * and at the rare rescalings). cSpanP points to the range's span (loaded where it is needed: one
 * register fewer).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function accumulate32(
  F16: bool, p: usize, vp: usize, vRow: usize, sc: usize, rl: usize, nR: i32, nKv: i32,
  cAbs: v128, cLo: v128, cSpanP: usize, cES: v128, cK: v128,
): f32 {
  let c0 = v128.load(p), c1 = v128.load(p, 16), c2 = v128.load(p, 32), c3 = v128.load(p, 48);
  let c4 = v128.load(p, 64), c5 = v128.load(p, 80), c6 = v128.load(p, 96), c7 = v128.load(p, 112);
  let S: f32 = 0;
  let j = 0;
  let r = 0;
  while (true) {
    // positions without a rescaling, up to the next one
    const jr = r < nR ? load<i32>(rl + (<usize>r << 2)) : nKv;
    for (; j < jr; j++, vp += vRow) {
      const vs = load<f32>(sc + (<usize>j << 2));
      S += vs; // = f32(f64(S) + f64(vs))
      const w4 = f32x4.splat(vs);
      c0 = f32x4.relaxed_madd(v128.load(vp), w4, c0);
      c1 = f32x4.relaxed_madd(v128.load(vp, 16), w4, c1);
      c2 = f32x4.relaxed_madd(v128.load(vp, 32), w4, c2);
      c3 = f32x4.relaxed_madd(v128.load(vp, 48), w4, c3);
      c4 = f32x4.relaxed_madd(v128.load(vp, 64), w4, c4);
      c5 = f32x4.relaxed_madd(v128.load(vp, 80), w4, c5);
      c6 = f32x4.relaxed_madd(v128.load(vp, 96), w4, c6);
      c7 = f32x4.relaxed_madd(v128.load(vp, 112), w4, c7);
      if (F16) {
        const m = i32x4.max_u(i32x4.max_u(
          i32x4.max_u(i32x4.sub(v128.and(c0, cAbs), cLo), i32x4.sub(v128.and(c1, cAbs), cLo)),
          i32x4.max_u(i32x4.sub(v128.and(c2, cAbs), cLo), i32x4.sub(v128.and(c3, cAbs), cLo)),
        ), i32x4.max_u(
          i32x4.max_u(i32x4.sub(v128.and(c4, cAbs), cLo), i32x4.sub(v128.and(c5, cAbs), cLo)),
          i32x4.max_u(i32x4.sub(v128.and(c6, cAbs), cLo), i32x4.sub(v128.and(c7, cAbs), cLo)),
        ));
        if (!v128.any_true(i32x4.ge_u(m, v128.load(cSpanP)))) {
          c0 = f16roundK(c0, cES, cK);
          c1 = f16roundK(c1, cES, cK);
          c2 = f16roundK(c2, cES, cK);
          c3 = f16roundK(c3, cES, cK);
          c4 = f16roundK(c4, cES, cK);
          c5 = f16roundK(c5, cES, cK);
          c6 = f16roundK(c6, cES, cK);
          c7 = f16roundK(c7, cES, cK);
        } else {
          c0 = f16round4Any(c0);
          c1 = f16round4Any(c1);
          c2 = f16round4Any(c2);
          c3 = f16round4Any(c3);
          c4 = f16round4Any(c4);
          c5 = f16round4Any(c5);
          c6 = f16round4Any(c6);
          c7 = f16round4Any(c7);
        }
      }
    }
    if (j >= nKv) break;
    // position j rescales: acc = round(acc · ms), then acc = round(acc + v_j · 1)
    const ms = load<f32>(sc + (<usize>j << 2));
    S = <f32>(<f64>S * <f64>ms + 1);
    const m4 = f32x4.splat(ms);
    c0 = f32x4.mul(c0, m4);
    c1 = f32x4.mul(c1, m4);
    c2 = f32x4.mul(c2, m4);
    c3 = f32x4.mul(c3, m4);
    c4 = f32x4.mul(c4, m4);
    c5 = f32x4.mul(c5, m4);
    c6 = f32x4.mul(c6, m4);
    c7 = f32x4.mul(c7, m4);
    if (F16) {
      c0 = f16round4Any(c0);
      c1 = f16round4Any(c1);
      c2 = f16round4Any(c2);
      c3 = f16round4Any(c3);
      c4 = f16round4Any(c4);
      c5 = f16round4Any(c5);
      c6 = f16round4Any(c6);
      c7 = f16round4Any(c7);
    }
    c0 = f32x4.add(c0, v128.load(vp));
    c1 = f32x4.add(c1, v128.load(vp, 16));
    c2 = f32x4.add(c2, v128.load(vp, 32));
    c3 = f32x4.add(c3, v128.load(vp, 48));
    c4 = f32x4.add(c4, v128.load(vp, 64));
    c5 = f32x4.add(c5, v128.load(vp, 80));
    c6 = f32x4.add(c6, v128.load(vp, 96));
    c7 = f32x4.add(c7, v128.load(vp, 112));
    if (F16) {
      c0 = f16round4Any(c0);
      c1 = f16round4Any(c1);
      c2 = f16round4Any(c2);
      c3 = f16round4Any(c3);
      c4 = f16round4Any(c4);
      c5 = f16round4Any(c5);
      c6 = f16round4Any(c6);
      c7 = f16round4Any(c7);
    }
    j++;
    vp += vRow;
    r++;
  }
  v128.store(p, c0);
  v128.store(p, c1, 16);
  v128.store(p, c2, 32);
  v128.store(p, c3, 48);
  v128.store(p, c4, 64);
  v128.store(p, c5, 80);
  v128.store(p, c6, 96);
  v128.store(p, c7, 112);
  return S;
}

/**
 * Causal attention of a chunk of nTok query rows (positions pos0 + t) against a KV cache.
 *   q    f32 (nTok, nHead·hd)          out  f32 (nTok, nHead·hdv)
 *   k    f32 keys: head h's at position j at k + 4·(h·kHead + j·kDim) (hd of them; KV cache
 *        head-major: kDim = hd, kHead = capacity·hd)    v  f32 values likewise (vHead, vDim)
 *   tmp  scratch of 128 + hd·8 + hdv·4 + (pos0 + nTok)·8 bytes (16-byte aligned)
 * Heads [h0, h1) only (threads split the heads). hd and hdv are multiples of 4.
 *
 * The online softmax's operations run in three passes per query head, so that independent work is
 * not serialized behind the accumulator: (1) the scores of all positions, four positions at a
 * time (independent f64 dot products); (2) the running maximum, which lists the positions that
 * rescale, then every position's exp — ms where s > M, else vs — four at a time; (3) in order,
 * the rescaling, the fp16 accumulator update and S — with FMA and hdv a multiple of 32, for 32
 * accumulator lanes at a time held in registers (accumulate32). Each value is computed by exactly
 * the operations of the one-loop form above (attend_generic), in the same order per value: the
 * same bits.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function attendBody(
  FMA: bool, q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32, kHead: i32, vHead: i32,
): void {
  const group = nHead / nHeadKv;
  f16round4Consts(tmp);
  const cAbs = v128.load(tmp), cLo = v128.load(tmp, 16), cSpan = v128.load(tmp, 32);
  const cHalf = v128.load(tmp, 48), cOne = v128.load(tmp, 64), cMask = v128.load(tmp, 80);
  const cES = v128.load(tmp, 96), cK = v128.load(tmp, 112);
  const qd = tmp + (F16R_CONSTS << 4); // (hd) the query head as f64
  const acc = qd + (<usize>hd << 3); // (hdv) f32
  const sc = acc + (<usize>hdv << 2); // (pos0 + nTok) f32: the scores, then their exps (ms or vs)
  const rl = sc + (<usize>(pos0 + nTok) << 2); // (pos0 + nTok) i32: the positions that rescale
  const vsMask = f16 != 0;
  const kRow = <usize>kDim << 2;
  const vRow = <usize>vDim << 2;
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const kvh = h / group;
      const qp = q + (<usize>((t * nHead + h) * hd) << 2);
      for (let i = 0; i < hd; i++) {
        const x = load<f32>(qp + (<usize>i << 2));
        store<f64>(qd + (<usize>i << 3), <f64>(vsMask ? f16round(x) : x));
      }
      for (let d = 0; d < hdv; d += 4) v128.store(acc + (<usize>d << 2), f32x4.splat(0));
      // (1) scores, four positions at a time
      let j = 0;
      for (; j + 4 <= nKv; j += 4) {
        const kp = k + (<usize>(kvh * kHead + j * kDim) << 2);
        let a0 = f64x2.splat(0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        for (let i = 0; i < hd; i += 4) {
          const kq = kp + (<usize>i << 2);
          const qi = qd + (<usize>i << 3);
          const q01 = v128.load(qi);
          const q23 = v128.load(qi, 16);
          a0 = f64x2.add(a0, f64x2.mul(q01, f64x2.promote_low_f32x4(v128.load64_zero(kq))));
          b0 = f64x2.add(b0, f64x2.mul(q23, f64x2.promote_low_f32x4(v128.load64_zero(kq, 8))));
          a1 = f64x2.add(a1, f64x2.mul(q01, f64x2.promote_low_f32x4(v128.load64_zero(kq + kRow))));
          b1 = f64x2.add(b1, f64x2.mul(q23, f64x2.promote_low_f32x4(v128.load64_zero(kq + kRow, 8))));
          a2 = f64x2.add(a2, f64x2.mul(q01, f64x2.promote_low_f32x4(v128.load64_zero(kq + 2 * kRow))));
          b2 = f64x2.add(b2, f64x2.mul(q23, f64x2.promote_low_f32x4(v128.load64_zero(kq + 2 * kRow, 8))));
          a3 = f64x2.add(a3, f64x2.mul(q01, f64x2.promote_low_f32x4(v128.load64_zero(kq + 3 * kRow))));
          b3 = f64x2.add(b3, f64x2.mul(q23, f64x2.promote_low_f32x4(v128.load64_zero(kq + 3 * kRow, 8))));
        }
        const sp = sc + (<usize>j << 2);
        a0 = f64x2.add(a0, b0);
        a1 = f64x2.add(a1, b1);
        a2 = f64x2.add(a2, b2);
        a3 = f64x2.add(a3, b3);
        store<f32>(sp, <f32>(f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a0, 1)) * scale);
        store<f32>(sp, <f32>(f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a1, 1)) * scale, 4);
        store<f32>(sp, <f32>(f64x2.extract_lane(a2, 0) + f64x2.extract_lane(a2, 1)) * scale, 8);
        store<f32>(sp, <f32>(f64x2.extract_lane(a3, 0) + f64x2.extract_lane(a3, 1)) * scale, 12);
      }
      for (; j < nKv; j++) {
        const kp = k + (<usize>(kvh * kHead + j * kDim) << 2);
        let a0 = f64x2.splat(0);
        let a1 = f64x2.splat(0);
        for (let i = 0; i < hd; i += 4) {
          const kq = kp + (<usize>i << 2);
          const qi = qd + (<usize>i << 3);
          a0 = f64x2.add(a0, f64x2.mul(v128.load(qi), f64x2.promote_low_f32x4(v128.load64_zero(kq))));
          a1 = f64x2.add(a1, f64x2.mul(v128.load(qi, 16), f64x2.promote_low_f32x4(v128.load64_zero(kq, 8))));
        }
        const a = f64x2.add(a0, a1);
        store<f32>(sc + (<usize>j << 2), <f32>(f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1)) * scale);
      }
      // (2) the running maximum, listing the positions that rescale (s > M), each score replaced by
      // the argument of its exp (M - s there, else s - M); then the exps, in place
      let M: f32 = -Infinity;
      let nR = 0;
      for (j = 0; j < nKv; j++) {
        const p = sc + (<usize>j << 2);
        const s = load<f32>(p);
        if (s > M) {
          store<f32>(p, M - s);
          store<i32>(rl + (<usize>nR << 2), j);
          nR++;
          M = s;
        } else {
          store<f32>(p, s - M);
        }
      }
      expNegF32(sc, nKv);
      // (3) the accumulator and S, in order
      let S: f32 = 0;
      const vBase = v + (<usize>(kvh * vHead) << 2);
      if (FMA && (hdv & 31) == 0) {
        for (let d0 = 0; d0 < hdv; d0 += 32) {
          // (the same S from each)
          S = accumulate32(vsMask, acc + (<usize>d0 << 2), vBase + (<usize>d0 << 2), vRow, sc, rl, nR, nKv, cAbs, cLo, tmp + 32, cES, cK);
        }
      } else {
        let r = 0;
        let jr = nR > 0 ? load<i32>(rl) : -1; // the next position that rescales
        for (j = 0; j < nKv; j++) {
          let vs = load<f32>(sc + (<usize>j << 2));
          if (j == jr) {
            r++;
            jr = r < nR ? load<i32>(rl + (<usize>r << 2)) : -1;
            const ms = vs;
            vs = 1;
            S = <f32>(<f64>S * <f64>ms + 1);
            const m4 = f32x4.splat(ms);
            for (let d = 0; d < hdv; d += 4) {
              const p = acc + (<usize>d << 2);
              const x = f32x4.mul(v128.load(p), m4);
              v128.store(p, vsMask ? f16round4(x, cAbs, cLo, cSpan, cHalf, cOne, cMask) : x);
            }
          } else {
            S += vs; // = f32(f64(S) + f64(vs))
          }
          const vp = vBase + <usize>j * vRow;
          if (FMA) {
            const w4 = f32x4.splat(vs);
            for (let d = 0; d < hdv; d += 4) {
              const p = acc + (<usize>d << 2);
              const x = f32x4.relaxed_madd(v128.load(vp + (<usize>d << 2)), w4, v128.load(p));
              v128.store(p, vsMask ? f16round4(x, cAbs, cLo, cSpan, cHalf, cOne, cMask) : x);
            }
          } else {
            const vs2 = f64x2.splat(<f64>vs);
            for (let d = 0; d < hdv; d += 4) {
              const p = acc + (<usize>d << 2);
              const q4 = vp + (<usize>d << 2);
              const lo = f64x2.add(f64x2.promote_low_f32x4(v128.load64_zero(p)), f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(q4)), vs2));
              const hi = f64x2.add(f64x2.promote_low_f32x4(v128.load64_zero(p, 8)), f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(q4, 8)), vs2));
              const x = v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
              v128.store(p, vsMask ? f16round4(x, cAbs, cLo, cSpan, cHalf, cOne, cMask) : x);
            }
          }
        }
      }
      const inv = f32x4.splat(S == 0 ? <f32>0 : <f32>1 / S);
      const op = out + (<usize>((t * nHead + h) * hdv) << 2);
      for (let d = 0; d < hdv; d += 4) v128.store(op + (<usize>d << 2), f32x4.mul(v128.load(acc + (<usize>d << 2)), inv));
    }
  }
}

export function attend(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32, kHead: i32, vHead: i32,
): void {
  attendBody(false, q, out, nTok, pos0, k, v, kDim, vDim, nHead, nHeadKv, hd, hdv, scale, f16, tmp, h0, h1, kHead, vHead);
}

/**
 * attend with the acc update as one f32x4.relaxed_madd: only used where fma_probe() says that it is
 * a fused multiply-add (x86 with FMA3, ARM64), which rounds once to f32 exactly as the f64
 * emulation in attend does (the f64 sum of fp16/f32 operands is exact or rounds far from an f32
 * tie) — test/kernels/attention.test.ts checks the two against each other bit for bit.
 */
export function attend_fma(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32, kHead: i32, vHead: i32,
): void {
  attendBody(true, q, out, nTok, pos0, k, v, kDim, vDim, nHead, nHeadKv, hd, hdv, scale, f16, tmp, h0, h1, kHead, vHead);
}

/** attend's scalar twin (the same operations, one lane at a time). */
export function attend_generic(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32, kHead: i32, vHead: i32,
): void {
  const group = nHead / nHeadKv;
  const qd = tmp + (F16R_CONSTS << 4);
  const acc = qd + (<usize>hd << 3);
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const kvh = h / group;
      const qp = q + (<usize>((t * nHead + h) * hd) << 2);
      for (let i = 0; i < hd; i++) {
        const x = load<f32>(qp + (<usize>i << 2));
        store<f64>(qd + (<usize>i << 3), <f64>(f16 != 0 ? f16round(x) : x));
      }
      for (let d = 0; d < hdv; d++) store<f32>(acc + (<usize>d << 2), 0);
      let M: f32 = -Infinity;
      let S: f32 = 0;
      for (let j = 0; j < nKv; j++) {
        const kp = k + (<usize>(kvh * kHead + j * kDim) << 2);
        let s0: f64 = 0, s1: f64 = 0, s2: f64 = 0, s3: f64 = 0;
        for (let i = 0; i < hd; i += 4) {
          const kq = kp + (<usize>i << 2);
          const qi = qd + (<usize>i << 3);
          s0 += load<f64>(qi) * <f64>load<f32>(kq);
          s1 += load<f64>(qi, 8) * <f64>load<f32>(kq, 4);
          s2 += load<f64>(qi, 16) * <f64>load<f32>(kq, 8);
          s3 += load<f64>(qi, 24) * <f64>load<f32>(kq, 12);
        }
        const s: f32 = <f32>((s0 + s2) + (s1 + s3)) * scale;
        let ms: f32 = 1;
        let vs: f32 = 1;
        if (s > M) {
          ms = <f32>NativeMath.exp(<f64>(M - s));
          M = s;
          for (let d = 0; d < hdv; d++) {
            const p = acc + (<usize>d << 2);
            const r = load<f32>(p) * ms;
            store<f32>(p, f16 != 0 ? f16round(r) : r);
          }
        } else {
          vs = <f32>NativeMath.exp(<f64>(s - M));
        }
        const vp = v + (<usize>(kvh * vHead + j * vDim) << 2);
        for (let d = 0; d < hdv; d++) {
          const p = acc + (<usize>d << 2);
          const r = <f32>(<f64>load<f32>(p) + <f64>load<f32>(vp + (<usize>d << 2)) * <f64>vs);
          store<f32>(p, f16 != 0 ? f16round(r) : r);
        }
        S = <f32>(<f64>S * <f64>ms + <f64>vs);
      }
      const inv: f32 = S == 0 ? 0 : <f32>1 / S;
      const op = out + (<usize>((t * nHead + h) * hdv) << 2);
      for (let d = 0; d < hdv; d++) store<f32>(op + (<usize>d << 2), load<f32>(acc + (<usize>d << 2)) * inv);
    }
  }
}

/**
 * attend with the matmuls' uniform signature, for the worker pool: heads [r0/4, r1/4) (the pool
 * splits "rows" in groups of 4, one group per head here). p points to attend's arguments as i32
 * (scale as its f32 bits, tmp the base of nHead scratch areas of tmpStride bytes each).
 */
export function attend_mt(p: usize, tmpStride: i32, r0: i32, r1: i32, generic: i32 /* 1: attend_generic, 2: attend_fma */, _a: i32, _b: i32, _c: i32, _d: i32, _e: i32): void {
  const h0 = r0 >> 2;
  const h1 = r1 >> 2;
  if (h1 <= h0) return;
  const tmp = <usize>load<i32>(p, 56) + <usize>(h0 * tmpStride);
  if (generic == 2) {
    attend_fma(
      load<i32>(p), load<i32>(p, 4), load<i32>(p, 8), load<i32>(p, 12), load<i32>(p, 16), load<i32>(p, 20), load<i32>(p, 24), load<i32>(p, 28),
      load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h0, h1, load<i32>(p, 60), load<i32>(p, 64),
    );
  } else if (generic != 0) {
    attend_generic(
      load<i32>(p), load<i32>(p, 4), load<i32>(p, 8), load<i32>(p, 12), load<i32>(p, 16), load<i32>(p, 20), load<i32>(p, 24), load<i32>(p, 28),
      load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h0, h1, load<i32>(p, 60), load<i32>(p, 64),
    );
  } else {
    attend(
      load<i32>(p), load<i32>(p, 4), load<i32>(p, 8), load<i32>(p, 12), load<i32>(p, 16), load<i32>(p, 20), load<i32>(p, 24), load<i32>(p, 28),
      load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h0, h1, load<i32>(p, 60), load<i32>(p, 64),
    );
  }
}

/** 1 if f32x4.relaxed_madd is fused on this machine (one rounding), else 0. */
export function fma_probe(): i32 {
  const a = f32x4.splat(<f32>1 + <f32>1 / 4096); // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: the 2^-24 is lost when rounded first
  const r = f32x4.relaxed_madd(a, a, f32x4.splat(-(<f32>1 + <f32>1 / 2048)));
  return f32x4.extract_lane(r, 0) != 0 ? 1 : 0;
}

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

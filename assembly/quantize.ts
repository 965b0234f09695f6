import { f16round, hsum, q8i } from "./common";

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

/**
 * quantize_q8 / quantize_q8i / quantize_q8k (kind 0 / 1 / 2) on tokens [t0, t1) only, with the matmuls'
 * uniform signature for the worker pool (pool.ts splits the tokens among the threads; each token's
 * quantization is independent of the others, so the bits are those of one call over all tokens).
 */
export function quantize_mt(x: usize, n: i32, t0: i32, t1: i32, q: usize, d: usize, s: usize, _work: i32, kind: i32, _b: i32): void {
  const nt = t1 - t0;
  if (nt <= 0) return;
  const xo = x + (<usize>(t0 * n) << 2);
  if (kind == 2) {
    quantize_q8k(xo, n, nt, q + <usize>(t0 * n), d + (<usize>(t0 * (n >> 8)) << 2), s + (<usize>(t0 * (n >> 4)) << 1));
    return;
  }
  const dq = d + (<usize>(t0 * (n >> 5)) << 2);
  if (kind == 1) quantizeQ8(true, xo, n, nt, q + <usize>(t0 * n), dq, s + (<usize>(t0 * (n >> 5)) << 3));
  else quantizeQ8(false, xo, n, nt, q + (<usize>(t0 * n) << 1), dq, s + (<usize>(t0 * n) << 1));
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

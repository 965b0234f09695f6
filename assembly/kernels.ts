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
// the float64 value of ggml's integer formula, rounded to f32 once.
//
// Uniform matmul signature (so that worker threads can dispatch any of them by index):
//   mm_X(w, nCols, r0, r1, xq, xd, xs, nTok, y, ys)
//     w      weights (layout per kernel, see src/kernels/layout.ts)
//     nCols  elements per weight row
//     r0,r1  the output rows to compute (multiples of 4 for the 4-row interleaved layouts)
//     xq     activations: i16 quants (nTok, nCols) or f32 values (nTok, nCols) for float weights
//     xd     f32 block scales of the activations (nTok, nCols/32 or nCols/256)
//     xs     Q8_1 block sums (f32, nTok × nCols/32) or Q8_K 16-element sums (i32, nTok × nCols/16)
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
 * Q8_0 / Q8_1 activations: x f32 (nTok, n) → q i16 (nTok, n), d f32 (nTok, n/32) = fp16(amax/127),
 * and when s != 0 the Q8_1 block sums s = fp16(f32(amax/127) · Σq).
 */
export function quantize_q8(x: usize, n: i32, nTok: i32, q: usize, d: usize, s: usize): void {
  const nb = n >> 5;
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const xp = x + (<usize>(t * n + b * 32) << 2);
      const qp = q + (<usize>(t * n + b * 32) << 1);
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
        store<i16>(qp + (j << 1), <i16>v);
        sum += v;
      }
      store<f32>(d + (<usize>(t * nb + b) << 2), f16round(dr));
      if (s != 0) store<f32>(s + (<usize>(t * nb + b) << 2), f16round(dr * <f32>sum));
    }
  }
}

/**
 * Q8_K activations (quantize_row_q8_K_ref): x f32 (nTok, n) → q i16 (nTok, n), d f32 (nTok, n/256),
 * bs i32 (nTok, n/16) sums of 16 quants.
 */
export function quantize_q8k(x: usize, n: i32, nTok: i32, q: usize, d: usize, bs: usize): void {
  const nb = n >> 8;
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < nb; b++) {
      const e0 = t * n + b * 256;
      const xp = x + (<usize>e0 << 2);
      const qp = q + (<usize>e0 << 1);
      const bp = bs + (<usize>(e0 >> 4) << 2);
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
        for (let j = 0; j < 256; j++) store<i16>(qp + (j << 1), 0);
        for (let j = 0; j < 16; j++) store<i32>(bp + (j << 2), 0);
        store<f32>(d + (<usize>(t * nb + b) << 2), 0);
        continue;
      }
      const iscale: f32 = <f32>-127 / max;
      for (let k = 0; k < 16; k++) {
        let sum = 0;
        for (let j = k * 16; j < k * 16 + 16; j++) {
          const v = min<i32>(127, q8i(iscale * load<f32>(xp + (j << 2))));
          store<i16>(qp + (j << 1), <i16>v);
          sum += v;
        }
        store<i32>(bp + (k << 2), sum);
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
function dot32(w: v128, wh: v128, x: usize): v128 {
  // 32 int8 weights (two vectors) · 32 i16 activations at x → i32x4 partial sums
  let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), v128.load(x));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), v128.load(x, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(wh), v128.load(x, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(wh), v128.load(x, 48)));
}

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

// @ts-expect-error: AssemblyScript decorator
@inline
function storeY4(p: usize, a01: v128, a23: v128): void {
  const lo = f32x4.demote_f64x2_zero(a01);
  const hi = f32x4.demote_f64x2_zero(a23);
  v128.store(p, v128.shuffle<i32>(lo, hi, 0, 1, 4, 5));
}

// ---------------------------------------------------------------------------------------------
// Q8R: 4-row interleaved int8 blocks (Q8_0, and Q4_0 / Q5_0 widened to int8 at load time).
// Group g = rows 4g..4g+3; block b of the group, 144 bytes: f32 d[4], then 32 int8 of each row.

export function mm_q8r(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * 144;
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    const wg = w + <usize>g * gb;
    for (let t = 0; t < nTok; t++) {
      const xqt = xq + (<usize>(t * nCols) << 1);
      const xdt = xd + (<usize>(t * nb) << 2);
      let a01 = f64x2.splat(0);
      let a23 = f64x2.splat(0);
      for (let b = 0; b < nb; b++) {
        const xp = xqt + (<usize>b << 6);
        const wp = wg + <usize>b * 144;
        const s0 = dot32(v128.load(wp, 16), v128.load(wp, 32), xp);
        const s1 = dot32(v128.load(wp, 48), v128.load(wp, 64), xp);
        const s2 = dot32(v128.load(wp, 80), v128.load(wp, 96), xp);
        const s3 = dot32(v128.load(wp, 112), v128.load(wp, 128), xp);
        const sums = hsum4(s0, s1, s2, s3);
        const dx = f64x2.splat(<f64>load<f32>(xdt + (<usize>b << 2)));
        const dw = v128.load(wp);
        a01 = f64x2.add(a01, f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(dw), dx), f64x2.convert_low_i32x4_s(sums)));
        const dwh = v128.shuffle<i32>(dw, dw, 2, 3, 0, 1);
        const sh = v128.shuffle<i32>(sums, sums, 2, 3, 0, 1);
        a23 = f64x2.add(a23, f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(dwh), dx), f64x2.convert_low_i32x4_s(sh)));
      }
      storeY4(y + (<usize>(t * ys + g * 4) << 2), a01, a23);
    }
  }
}

export function mm_q8r_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, _xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * 144;
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    for (let k = 0; k < 4; k++) {
      for (let t = 0; t < nTok; t++) {
        let acc: f64 = 0;
        for (let b = 0; b < nb; b++) {
          const wp = w + <usize>g * gb + <usize>b * 144;
          const qw = wp + 16 + 32 * k;
          const xp = xq + (<usize>(t * nCols + b * 32) << 1);
          let isum = 0;
          for (let j = 0; j < 32; j++) isum += <i32>load<i8>(qw + j) * <i32>load<i16>(xp + (j << 1));
          acc += (<f64>load<f32>(wp + 4 * k) * <f64>load<f32>(xd + (<usize>(t * nb + b) << 2))) * <f64>isum;
        }
        store<f32>(y + (<usize>(t * ys + g * 4 + k) << 2), <f32>acc);
      }
    }
  }
}

// Q8R1: the same with a block minimum (Q4_1 / Q5_1 widened to int8): 160 bytes per group-block,
// f32 d[4], f32 m[4], 4×32 int8 (0..31). x = d·q + m, against Q8_1 activations (xs = block sums).

export function mm_q8r1(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * 160;
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    const wg = w + <usize>g * gb;
    for (let t = 0; t < nTok; t++) {
      const xqt = xq + (<usize>(t * nCols) << 1);
      const xdt = xd + (<usize>(t * nb) << 2);
      const xst = xs + (<usize>(t * nb) << 2);
      let a01 = f64x2.splat(0);
      let a23 = f64x2.splat(0);
      for (let b = 0; b < nb; b++) {
        const xp = xqt + (<usize>b << 6);
        const wp = wg + <usize>b * 160;
        const s0 = dot32(v128.load(wp, 32), v128.load(wp, 48), xp);
        const s1 = dot32(v128.load(wp, 64), v128.load(wp, 80), xp);
        const s2 = dot32(v128.load(wp, 96), v128.load(wp, 112), xp);
        const s3 = dot32(v128.load(wp, 128), v128.load(wp, 144), xp);
        const sums = hsum4(s0, s1, s2, s3);
        const dx = f64x2.splat(<f64>load<f32>(xdt + (<usize>b << 2)));
        const sx = f64x2.splat(<f64>load<f32>(xst + (<usize>b << 2)));
        const dw = v128.load(wp);
        const mw = v128.load(wp, 16);
        a01 = f64x2.add(a01, f64x2.add(
          f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(dw), dx), f64x2.convert_low_i32x4_s(sums)),
          f64x2.mul(f64x2.promote_low_f32x4(mw), sx)));
        const dwh = v128.shuffle<i32>(dw, dw, 2, 3, 0, 1);
        const mwh = v128.shuffle<i32>(mw, mw, 2, 3, 0, 1);
        const sh = v128.shuffle<i32>(sums, sums, 2, 3, 0, 1);
        a23 = f64x2.add(a23, f64x2.add(
          f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(dwh), dx), f64x2.convert_low_i32x4_s(sh)),
          f64x2.mul(f64x2.promote_low_f32x4(mwh), sx)));
      }
      storeY4(y + (<usize>(t * ys + g * 4) << 2), a01, a23);
    }
  }
}

export function mm_q8r1_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nb = nCols >> 5;
  const gb = <usize>nb * 160;
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    for (let k = 0; k < 4; k++) {
      for (let t = 0; t < nTok; t++) {
        let acc: f64 = 0;
        for (let b = 0; b < nb; b++) {
          const wp = w + <usize>g * gb + <usize>b * 160;
          const qw = wp + 32 + 32 * k;
          const xp = xq + (<usize>(t * nCols + b * 32) << 1);
          let isum = 0;
          for (let j = 0; j < 32; j++) isum += <i32>load<i8>(qw + j) * <i32>load<i16>(xp + (j << 1));
          const dx = <f64>load<f32>(xd + (<usize>(t * nb + b) << 2));
          const sx = <f64>load<f32>(xs + (<usize>(t * nb + b) << 2));
          acc += (<f64>load<f32>(wp + 4 * k) * dx) * <f64>isum + <f64>load<f32>(wp + 16 + 4 * k) * sx;
        }
        store<f32>(y + (<usize>(t * ys + g * 4 + k) << 2), <f32>acc);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Q4_K as in GGUF (144 bytes per 256 elements, row after row), against Q8_K activations.

// @ts-expect-error: AssemblyScript decorator
@inline
function kScale(s: usize, j: i32): i32 {
  return j < 4 ? <i32>load<u8>(s + j) & 63 : (<i32>load<u8>(s + j + 4) & 0xf) | ((<i32>load<u8>(s + j - 4) >> 6) << 4);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function kMin(s: usize, j: i32): i32 {
  return j < 4 ? <i32>load<u8>(s + j + 4) & 63 : (<i32>load<u8>(s + j + 4) >> 4) | ((<i32>load<u8>(s + j) >> 6) << 4);
}

// @ts-expect-error: AssemblyScript decorator
@inline
function kMinSum(s: usize, bp: usize): i32 {
  // Σ_j m_j · (sum of the 32 activation quants of sub-block j)
  let msum = 0;
  for (let j = 0; j < 8; j++) msum += kMin(s, j) * (load<i32>(bp + (j << 3)) + load<i32>(bp + (j << 3) + 4));
  return msum;
}

// @ts-expect-error: AssemblyScript decorator
@inline
function nib32(lo: v128, hi: v128, x: usize): v128 {
  // 32 unsigned nibbles (already masked/shifted, one per byte) · 32 i16 activations
  let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), v128.load(x));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), v128.load(x, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), v128.load(x, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), v128.load(x, 48)));
}

export function mm_q4k(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const rowBytes = <usize>nsb * 144;
  const mask = i8x16.splat(0x0f);
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      let acc: f64 = 0;
      for (let sb = 0; sb < nsb; sb++) {
        const bp = w + <usize>r * rowBytes + <usize>sb * 144;
        const sc = bp + 4;
        const qs = bp + 16;
        const xp = xq + (<usize>(t * nCols + sb * 256) << 1);
        let v = i32x4.splat(0);
        for (let c = 0; c < 4; c++) {
          const q0 = v128.load(qs + (c << 5));
          const q1 = v128.load(qs + (c << 5), 16);
          const pl = nib32(v128.and(q0, mask), v128.and(q1, mask), xp + (c << 7));
          const ph = nib32(i8x16.shr_u(q0, 4), i8x16.shr_u(q1, 4), xp + (c << 7) + 64);
          v = i32x4.add(v, i32x4.mul(pl, i32x4.splat(kScale(sc, 2 * c))));
          v = i32x4.add(v, i32x4.mul(ph, i32x4.splat(kScale(sc, 2 * c + 1))));
        }
        const isum = hsum(v);
        const msum = kMinSum(sc, xs + (<usize>((t * nCols + sb * 256) >> 4) << 2));
        const dx = <f64>load<f32>(xd + (<usize>(t * nsb + sb) << 2));
        acc += (dx * <f64>f16tof32(load<u16>(bp))) * <f64>isum - (dx * <f64>f16tof32(load<u16>(bp, 2))) * <f64>msum;
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>acc);
    }
  }
}

export function mm_q4k_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const rowBytes = <usize>nsb * 144;
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      let acc: f64 = 0;
      for (let sb = 0; sb < nsb; sb++) {
        const bp = w + <usize>r * rowBytes + <usize>sb * 144;
        const sc = bp + 4;
        const qs = bp + 16;
        const xp = xq + (<usize>(t * nCols + sb * 256) << 1);
        let isum = 0;
        for (let c = 0; c < 4; c++) {
          let pl = 0;
          let ph = 0;
          for (let l = 0; l < 32; l++) {
            const q = <i32>load<u8>(qs + 32 * c + l);
            pl += (q & 0xf) * <i32>load<i16>(xp + ((64 * c + l) << 1));
            ph += (q >> 4) * <i32>load<i16>(xp + ((64 * c + 32 + l) << 1));
          }
          isum += pl * kScale(sc, 2 * c) + ph * kScale(sc, 2 * c + 1);
        }
        const msum = kMinSum(sc, xs + (<usize>((t * nCols + sb * 256) >> 4) << 2));
        const dx = <f64>load<f32>(xd + (<usize>(t * nsb + sb) << 2));
        acc += (dx * <f64>f16tof32(load<u16>(bp))) * <f64>isum - (dx * <f64>f16tof32(load<u16>(bp, 2))) * <f64>msum;
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>acc);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// K8: K-quants widened to int8 at load time (Q5_K, Q6_K), 320 bytes per 256 elements, row after row:
//   f32 d, f32 dmin, 8 bytes pad, i16 sc[16] (scale of each 16 elements), i16 m[8] (min of each 32),
//   int8 q[256] (Q5_K: 0..31; Q6_K: -32..31). x = d·sc·q − dmin·m.

export function mm_k8(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const rowBytes = <usize>nsb * 320;
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      let acc: f64 = 0;
      for (let sb = 0; sb < nsb; sb++) {
        const bp = w + <usize>r * rowBytes + <usize>sb * 320;
        const xp = xq + (<usize>(t * nCols + sb * 256) << 1);
        let v = i32x4.splat(0);
        for (let k = 0; k < 16; k += 2) {
          const q = v128.load(bp + 64 + (k << 4));
          const qh = v128.load(bp + 64 + (k << 4), 16);
          const x = xp + (k << 5);
          const p0 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q), v128.load(x)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q), v128.load(x, 16)));
          const p1 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(qh), v128.load(x, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(qh), v128.load(x, 48)));
          v = i32x4.add(v, i32x4.mul(p0, i32x4.splat(<i32>load<i16>(bp + 16 + (k << 1)))));
          v = i32x4.add(v, i32x4.mul(p1, i32x4.splat(<i32>load<i16>(bp + 18 + (k << 1)))));
        }
        const isum = hsum(v);
        const bs = xs + (<usize>((t * nCols + sb * 256) >> 4) << 2);
        let msum = 0;
        for (let j = 0; j < 8; j++) msum += <i32>load<i16>(bp + 48 + (j << 1)) * (load<i32>(bs + (j << 3)) + load<i32>(bs + (j << 3) + 4));
        const dx = <f64>load<f32>(xd + (<usize>(t * nsb + sb) << 2));
        acc += (dx * <f64>load<f32>(bp)) * <f64>isum - (dx * <f64>load<f32>(bp, 4)) * <f64>msum;
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>acc);
    }
  }
}

export function mm_k8_generic(w: usize, nCols: i32, r0: i32, r1: i32, xq: usize, xd: usize, xs: usize, nTok: i32, y: usize, ys: i32): void {
  const nsb = nCols >> 8;
  const rowBytes = <usize>nsb * 320;
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      let acc: f64 = 0;
      for (let sb = 0; sb < nsb; sb++) {
        const bp = w + <usize>r * rowBytes + <usize>sb * 320;
        const xp = xq + (<usize>(t * nCols + sb * 256) << 1);
        let isum = 0;
        for (let k = 0; k < 16; k++) {
          let p = 0;
          for (let l = 0; l < 16; l++) p += <i32>load<i8>(bp + 64 + 16 * k + l) * <i32>load<i16>(xp + ((16 * k + l) << 1));
          isum += p * <i32>load<i16>(bp + 16 + (k << 1));
        }
        const bs = xs + (<usize>((t * nCols + sb * 256) >> 4) << 2);
        let msum = 0;
        for (let j = 0; j < 8; j++) msum += <i32>load<i16>(bp + 48 + (j << 1)) * (load<i32>(bs + (j << 3)) + load<i32>(bs + (j << 3) + 4));
        const dx = <f64>load<f32>(xd + (<usize>(t * nsb + sb) << 2));
        acc += (dx * <f64>load<f32>(bp)) * <f64>isum - (dx * <f64>load<f32>(bp, 4)) * <f64>msum;
      }
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>acc);
    }
  }
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
function mmFloat(kind: i32, w: usize, nCols: i32, r0: i32, r1: i32, x: usize, nTok: i32, y: usize, ys: i32): void {
  const es: usize = kind == 0 ? 4 : 2;
  const n4 = nCols & ~3;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * <usize>nCols * es;
    for (let t = 0; t < nTok; t++) {
      const xr = x + (<usize>(t * nCols) << 2);
      let a01 = f64x2.splat(0);
      let a23 = f64x2.splat(0);
      for (let i = 0; i < n4; i += 4) {
        let wv: v128;
        if (kind == 0) wv = v128.load(wr + (i << 2));
        else if (kind == 1) wv = f16x4(v128.load16x4_u(wr + (i << 1)));
        else wv = i32x4.shl(v128.load16x4_u(wr + (i << 1)), 16);
        const xv = v128.load(xr + (i << 2));
        a01 = fma4(a01, a23, wv, xv, false);
        a23 = fma4(a01, a23, wv, xv, true);
      }
      let s = (f64x2.extract_lane(a01, 0) + f64x2.extract_lane(a01, 1)) + (f64x2.extract_lane(a23, 0) + f64x2.extract_lane(a23, 1));
      for (let i = n4; i < nCols; i++) s += <f64>floatW(kind, wr, i) * <f64>load<f32>(xr + (i << 2));
      store<f32>(y + (<usize>(t * ys + r) << 2), <f32>s);
    }
  }
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

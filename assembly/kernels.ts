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
// exp is the f64 one (NativeMath.exp, musl) rounded to f32, like the TypeScript fround(Math.exp(x)):
// two faithful f64 exps round to the same f32 except within ~2^-29 of a rounding boundary.
// Scores are computed for all positions first (independent dot products), then the online softmax
// runs over them in order: the same operations as one loop. The f64 products and sums of the acc
// update emulate the FMA of ggml_vec_mad_f16 (one rounding to f32, then to fp16).

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
const F16R_CONSTS: i32 = 6;

/** Writes f16round4's constants at c (6·16 bytes). */
function f16round4Consts(c: usize): void {
  v128.store(c, i32x4.splat(0x7fffffff));
  v128.store(c, i32x4.splat(0x38800000), 16);
  v128.store(c, i32x4.splat(0x477ff000 - 0x38800000), 32);
  v128.store(c, i32x4.splat(0xfff), 48);
  v128.store(c, i32x4.splat(1), 64);
  v128.store(c, i32x4.splat(0xffffe000), 80);
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
 * Causal attention of a chunk of nTok query rows (positions pos0 + t) against a KV cache.
 *   q    f32 (nTok, nHead·hd)          out  f32 (nTok, nHead·hdv)
 *   k    f32 (.., kDim) keys by position    v  f32 (.., vDim) values by position
 *   tmp  scratch of 96 + hd·8 + hdv·4 + (pos0 + nTok)·4 bytes (16-byte aligned)
 * Heads [h0, h1) only (threads split the heads). hd and hdv are multiples of 4.
 */
export function attend(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32,
): void {
  const group = nHead / nHeadKv;
  f16round4Consts(tmp);
  const cAbs = v128.load(tmp), cLo = v128.load(tmp, 16), cSpan = v128.load(tmp, 32);
  const cHalf = v128.load(tmp, 48), cOne = v128.load(tmp, 64), cMask = v128.load(tmp, 80);
  const qd = tmp + (F16R_CONSTS << 4); // (hd) the query head as f64
  const acc = qd + (<usize>hd << 3); // (hdv) f32
  const sc = acc + (<usize>hdv << 2); // (pos0 + nTok) f32 scores
  const vsMask = f16 != 0;
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
      // the scores first (independent of each other), then the online softmax over them
      for (let j = 0; j < nKv; j++) {
        const kp = k + (<usize>(j * kDim + kvh * hd) << 2);
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
      let M: f32 = -Infinity;
      let S: f32 = 0;
      for (let j = 0; j < nKv; j++) {
        const s = load<f32>(sc + (<usize>j << 2));
        let ms: f32 = 1;
        let vs: f32 = 1;
        if (s > M) {
          ms = <f32>NativeMath.exp(<f64>(M - s));
          M = s;
          const m4 = f32x4.splat(ms);
          for (let d = 0; d < hdv; d += 4) {
            const p = acc + (<usize>d << 2);
            const r = f32x4.mul(v128.load(p), m4);
            v128.store(p, vsMask ? f16round4(r, cAbs, cLo, cSpan, cHalf, cOne, cMask) : r);
          }
        } else {
          vs = <f32>NativeMath.exp(<f64>(s - M));
        }
        const vs2 = f64x2.splat(<f64>vs);
        const vp = v + (<usize>(j * vDim + kvh * hdv) << 2);
        for (let d = 0; d < hdv; d += 4) {
          const p = acc + (<usize>d << 2);
          const q4 = vp + (<usize>d << 2);
          const lo = f64x2.add(f64x2.promote_low_f32x4(v128.load64_zero(p)), f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(q4)), vs2));
          const hi = f64x2.add(f64x2.promote_low_f32x4(v128.load64_zero(p, 8)), f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(q4, 8)), vs2));
          const r = v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
          v128.store(p, vsMask ? f16round4(r, cAbs, cLo, cSpan, cHalf, cOne, cMask) : r);
        }
        S = <f32>(<f64>S * <f64>ms + <f64>vs);
      }
      const inv = f32x4.splat(S == 0 ? <f32>0 : <f32>1 / S);
      const op = out + (<usize>((t * nHead + h) * hdv) << 2);
      for (let d = 0; d < hdv; d += 4) v128.store(op + (<usize>d << 2), f32x4.mul(v128.load(acc + (<usize>d << 2)), inv));
    }
  }
}

/**
 * attend with the acc update as one f32x4.relaxed_madd: only used where fma_probe() says that it is
 * a fused multiply-add (x86 with FMA3, ARM64), which rounds once to f32 exactly as the f64
 * emulation in attend does (the f64 sum of fp16/f32 operands is exact or rounds far from an f32
 * tie) — test/kernels/attention.test.ts checks the two against each other bit for bit.
 */
export function attend_fma(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32,
): void {
  const group = nHead / nHeadKv;
  f16round4Consts(tmp);
  const cAbs = v128.load(tmp), cLo = v128.load(tmp, 16), cSpan = v128.load(tmp, 32);
  const cHalf = v128.load(tmp, 48), cOne = v128.load(tmp, 64), cMask = v128.load(tmp, 80);
  const qd = tmp + (F16R_CONSTS << 4); // (hd) the query head as f64
  const acc = qd + (<usize>hd << 3); // (hdv) f32
  const sc = acc + (<usize>hdv << 2); // (pos0 + nTok) f32 scores
  const vsMask = f16 != 0;
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
      // the scores first (independent of each other), then the online softmax over them
      for (let j = 0; j < nKv; j++) {
        const kp = k + (<usize>(j * kDim + kvh * hd) << 2);
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
      let M: f32 = -Infinity;
      let S: f32 = 0;
      for (let j = 0; j < nKv; j++) {
        const s = load<f32>(sc + (<usize>j << 2));
        let ms: f32 = 1;
        let vs: f32 = 1;
        if (s > M) {
          ms = <f32>NativeMath.exp(<f64>(M - s));
          M = s;
          const m4 = f32x4.splat(ms);
          for (let d = 0; d < hdv; d += 4) {
            const p = acc + (<usize>d << 2);
            const r = f32x4.mul(v128.load(p), m4);
            v128.store(p, vsMask ? f16round4(r, cAbs, cLo, cSpan, cHalf, cOne, cMask) : r);
          }
        } else {
          vs = <f32>NativeMath.exp(<f64>(s - M));
        }
        const w4 = f32x4.splat(vs);
        const vp = v + (<usize>(j * vDim + kvh * hdv) << 2);
        for (let d = 0; d < hdv; d += 4) {
          const p = acc + (<usize>d << 2);
          const r = f32x4.relaxed_madd(v128.load(vp + (<usize>d << 2)), w4, v128.load(p));
          v128.store(p, vsMask ? f16round4(r, cAbs, cLo, cSpan, cHalf, cOne, cMask) : r);
        }
        S = <f32>(<f64>S * <f64>ms + <f64>vs);
      }
      const inv = f32x4.splat(S == 0 ? <f32>0 : <f32>1 / S);
      const op = out + (<usize>((t * nHead + h) * hdv) << 2);
      for (let d = 0; d < hdv; d += 4) v128.store(op + (<usize>d << 2), f32x4.mul(v128.load(acc + (<usize>d << 2)), inv));
    }
  }
}

/** attend's scalar twin (the same operations, one lane at a time). */
export function attend_generic(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32,
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
        const kp = k + (<usize>(j * kDim + kvh * hd) << 2);
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
        const vp = v + (<usize>(j * vDim + kvh * hdv) << 2);
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
      load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h0, h1,
    );
  } else if (generic != 0) {
    attend_generic(
      load<i32>(p), load<i32>(p, 4), load<i32>(p, 8), load<i32>(p, 12), load<i32>(p, 16), load<i32>(p, 20), load<i32>(p, 24), load<i32>(p, 28),
      load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h0, h1,
    );
  } else {
    attend(
      load<i32>(p), load<i32>(p, 4), load<i32>(p, 8), load<i32>(p, 12), load<i32>(p, 16), load<i32>(p, 20), load<i32>(p, 24), load<i32>(p, 28),
      load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h0, h1,
    );
  }
}

/** 1 if f32x4.relaxed_madd is fused on this machine (one rounding), else 0. */
export function fma_probe(): i32 {
  const a = f32x4.splat(<f32>1 + <f32>1 / 4096); // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: the 2^-24 is lost when rounded first
  const r = f32x4.relaxed_madd(a, a, f32x4.splat(-(<f32>1 + <f32>1 / 2048)));
  return f32x4.extract_lane(r, 0) != 0 ? 1 : 0;
}

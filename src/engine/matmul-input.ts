// What llama.cpp's CPU backend does to the activations before a matrix multiplication.
//
// ggml-cpu multiplies a weight of type T by activations converted to T's "vec_dot_type"
// (ggml-cpu.c type_traits_cpu[T].vec_dot_type): F16 weights see F16 activations, Q4_0/Q5_0/Q8_0
// see Q8_0 activations, Q4_1/Q5_1 see Q8_1, the K-quants see Q8_K. That rounding is a visible
// part of llama.cpp's numerics (it changes logits in the 2nd–3rd digit for quantized models), so
// by default we reproduce it: each activation row is rounded *in value* exactly as the conversion
// would round it, and the dot product is then taken in f32/f64 with the decoded weights.
//
// The conversions mirror the x86 SIMD versions (ggml-cpu/arch/x86/quants.c), which are what an
// x86 llama.cpp build runs:
//   Q8_0 / Q8_1 (32-element blocks): amax = max|x|; d = amax/127 stored as fp16;
//       q = round-half-even(x * (127/amax)); value = fp16(d) * q
//   Q8_K (256-element blocks, quantize_row_q8_K_ref): max = element of largest |x| (signed);
//       iscale = -127/max; q = min(127, nearest_int(iscale*x)); value = (1/iscale) * q
//   F16 / BF16: round to nearest even.
// For Q4_1/Q5_1 weights the Q8_1 block sum enters the dot product too (q8_1SumCorrection).
import { GGMLType } from "../gguf/types.ts";
import { FP16_TO_F32 } from "../gguf/formats/index.ts";
import { bf16round, f16round } from "./float16.ts";

export type MatmulInputKind = "f32" | "f16" | "bf16" | "q8_0" | "q8_K";

const fround = Math.fround;

/** The activation format ggml-cpu uses for weights of `type` (f32 = used as is). */
export function matmulInputKind(type: number): MatmulInputKind {
  switch (type) {
    case GGMLType.F16: return "f16";
    case GGMLType.BF16: return "bf16";
    case GGMLType.Q4_0: case GGMLType.Q5_0: case GGMLType.Q8_0:
    case GGMLType.Q4_1: case GGMLType.Q5_1: // Q8_1: same values as Q8_0, plus a block sum (see q8_1SumCorrection)
    case 20: /* IQ4_NL */ case 39: /* MXFP4 */
      return "q8_0";
    case GGMLType.Q2_K: case GGMLType.Q3_K: case GGMLType.Q4_K: case GGMLType.Q5_K: case GGMLType.Q6_K:
    case 16: case 17: case 18: case 19: case 21: case 22: case 23: case 29: case 34: case 35: // IQ*, TQ*
      return "q8_K";
    default: return "f32";
  }
}

/** Round half to even (what _mm256_round_ps(_MM_ROUND_NEAREST) and cvtps2dq do). */
function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

function roundQ8_0(x: Float32Array, y: Float32Array, n: number): void {
  for (let b = 0; b < n; b += 32) {
    let amax = 0;
    for (let j = b; j < b + 32; j++) {
      const a = Math.abs(x[j]);
      if (a > amax) amax = a;
    }
    const d = f16round(fround(amax / 127));
    const id = amax !== 0 ? fround(127 / amax) : 0;
    for (let j = b; j < b + 32; j++) y[j] = d * (rint(fround(x[j] * id)) | 0);
  }
}

function roundQ8_K(x: Float32Array, y: Float32Array, n: number): void {
  for (let b = 0; b < n; b += 256) {
    let amax = 0;
    let max = 0;
    for (let j = b; j < b + 256; j++) {
      const a = Math.abs(x[j]);
      if (a > amax) {
        amax = a;
        max = x[j];
      }
    }
    if (amax === 0) {
      y.fill(0, b, b + 256);
      continue;
    }
    const iscale = fround(-127 / max);
    const d = fround(1 / iscale);
    for (let j = b; j < b + 256; j++) y[j] = fround(d * (Math.min(127, rint(fround(iscale * x[j]))) | 0));
  }
}

/**
 * Writes into y the values the activations x (n elements, a whole number of blocks) take after
 * ggml's conversion to `kind`. x and y may be the same array.
 */
export function roundMatmulInput(kind: MatmulInputKind, x: Float32Array, y: Float32Array, n: number): void {
  switch (kind) {
    case "f32":
      if (x !== y) y.set(x.subarray(0, n));
      return;
    case "f16":
      for (let i = 0; i < n; i++) y[i] = f16round(x[i]);
      return;
    case "bf16":
      for (let i = 0; i < n; i++) y[i] = bf16round(x[i]);
      return;
    case "q8_0":
      roundQ8_0(x, y, n);
      return;
    case "q8_K":
      roundQ8_K(x, y, n);
      return;
  }
}

/** Weights whose ggml dot product has a per-block offset term (x = d*q + m): Q4_1, Q5_1. */
export function hasBlockMin(type: number): boolean {
  return type === GGMLType.Q4_1 || type === GGMLType.Q5_1;
}

/**
 * Q4_1/Q5_1 × Q8_1: ggml computes Σ_blocks d_w·d_x·Σq_w·q_x + m_w·s_x with s_x = fp16(d·Σq_x) stored
 * in the Q8_1 block (d unrounded), whereas our decoded activations sum to fp16(d)·Σq_x. Writes, for
 * each 32-element block of x (n elements), corr[c0 + b] = s_x − fp16(d)·Σq_x, the amount by which
 * ggml's offset term differs; addBlockMinCorrection() applies it.
 */
export function q8_1SumCorrection(x: Float32Array, x0: number, n: number, corr: Float32Array, c0: number): void {
  for (let b = 0; b < n / 32; b++) {
    const o = x0 + b * 32;
    let amax = 0;
    for (let j = o; j < o + 32; j++) {
      const a = Math.abs(x[j]);
      if (a > amax) amax = a;
    }
    const d = fround(amax / 127);
    const id = amax !== 0 ? fround(127 / amax) : 0;
    let sum = 0;
    for (let j = o; j < o + 32; j++) sum += rint(fround(x[j] * id));
    corr[c0 + b] = f16round(fround(d * sum)) - f16round(d) * sum;
  }
}

/**
 * y (n_tok, W.nRows) += Σ_b m[r, b] · corr[t, b]: the offset-term correction for Q4_1/Q5_1 weights
 * (m = the fp16 block minimum at byte 2 of each block), rounded once per output.
 */
export function addBlockMinCorrection(W: { nRows: number; nCols: number; rowBytes: number; data: Uint8Array }, corr: Float32Array, nTok: number, y: Float32Array): void {
  const nb = W.nCols / 32;
  const blockBytes = W.rowBytes / nb;
  const data = W.data;
  const m = new Float32Array(nb); // (n_blocks) the row's block minimums
  for (let r = 0; r < W.nRows; r++) {
    const base = r * W.rowBytes + 2;
    for (let b = 0; b < nb; b++) {
      const o = base + b * blockBytes;
      m[b] = FP16_TO_F32[data[o] | (data[o + 1] << 8)];
    }
    for (let t = 0; t < nTok; t++) {
      let s = 0;
      for (let b = 0; b < nb; b++) s += m[b] * corr[t * nb + b];
      y[t * W.nRows + r] += s;
    }
  }
}

// Rotary position embedding, computed the way ggml does (ggml-cpu/ops.cpp ggml_rope_cache_init,
// rope_yarn with ext_factor = 0, rotate_pairs) so that angles match llama.cpp bit for bit:
//   theta_scale = powf(freq_base, -2.0f/n_rot)            (float)
//   theta_0 = (float)pos;  theta_{i+1} = theta_i * theta_scale   (iterated in float, not pow per i)
//   angle_i = freq_scale * (theta_i / freq_factor_i);  cos/sin in float
// Pair i rotates (x[2i], x[2i+1]) for the "normal" layout (LLaMA) or (x[i], x[i + n_rot/2]) for
// "neox" (Qwen2/3); dimensions >= n_rot pass through unchanged.
import type { RopeType } from "./model-config.ts";

const fround = Math.fround;

export interface RopeParams {
  nRot: number;
  ropeType: RopeType;
  ropeFreqBase: number;
  ropeFreqScale: number;
  /** (n_rot/2) divisors of each pair's frequency (rope_freqs.weight), or undefined. */
  freqFactors?: Float32Array;
}

/** Writes cos/sin of every pair's angle at `pos` into out[o..o+n_rot): (n_rot/2) × [cos, sin]. */
export function ropeCosSin(p: RopeParams, pos: number, out: Float32Array, o = 0): void {
  const thetaScale = fround(Math.pow(p.ropeFreqBase, fround(-2 / p.nRot)));
  const ff = p.freqFactors;
  let theta = fround(pos);
  for (let i = 0; i < p.nRot / 2; i++) {
    const extrap = ff ? fround(theta / ff[i]) : theta;
    const angle = fround(p.ropeFreqScale * extrap);
    out[o + 2 * i] = Math.cos(angle);
    out[o + 2 * i + 1] = Math.sin(angle);
    theta = fround(theta * thetaScale);
  }
}

/**
 * Rotates nHeads heads of size headDim stored contiguously in x starting at x0, using the cos/sin
 * table cs[c0 .. c0 + n_rot).
 */
export function ropeApply(p: RopeParams, x: Float32Array, x0: number, nHeads: number, headDim: number, cs: Float32Array, c0: number): void {
  const half = p.nRot / 2;
  // normal: partner of element a is a+1, pairs start at 2i; neox: partner is a+half, pairs start at i
  const stride = p.ropeType === "normal" ? 2 : 1;
  const offset = p.ropeType === "normal" ? 1 : half;
  for (let h = 0; h < nHeads; h++) {
    const base = x0 + h * headDim;
    for (let i = 0; i < half; i++) {
      const c = cs[c0 + 2 * i];
      const s = cs[c0 + 2 * i + 1];
      const a = base + i * stride;
      const x0v = x[a];
      const x1v = x[a + offset];
      x[a] = x0v * c - x1v * s;
      x[a + offset] = x0v * s + x1v * c;
    }
  }
}

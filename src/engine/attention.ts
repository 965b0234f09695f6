// Causal grouped-query attention of one sequence chunk against its KV cache (fast path).
//
// With the WASM kernels (the default) the fast path runs assembly/attention.ts `attend` instead, on
// a KV cache that lives in kernel memory: the same arithmetic, bit for bit (test/kernels/attention.test.ts).
// This TypeScript version serves the "typescript" kernels option and head dims not a multiple of 4.
//
// Numerics of llama.cpp's CPU flash-attention kernel (ggml-cpu/ops.cpp
// ggml_compute_forward_flash_attn_ext_f16_one_chunk), which llama.cpp uses by default on CPU
// ("auto" flash attention), with the cache type's precision:
//   q is converted to the cache type (fp16 for an F16 cache)
//   for each position j in order (online softmax):
//     s = f32(q·k_j) * scale   (q·k_j summed in f32, lanes i%4 separately, then (l0+l2)+(l1+l3),
//                             the order of the WASM kernel assembly/attention-scores.ts; llama.cpp's
//                             ggml_vec_dot_f16 sums in f32 lanes too)
//     if s > M: ms = expf(M - s), M = s, acc *= ms     (acc rounded to the cache type)
//     else:     vs = expf(s - M)
//     acc = round(acc + v_j * vs)                        (fp16 accumulator for an F16 cache)
//     S = S * ms + vs
//   out = f32(acc) * (1/S)
// expf is fround(Math.exp(x)): for every f32 x <= 0 it equals the kernels' f32(musl exp) bit for bit
// (checked exhaustively over [-104, -0]; below, both are 0 — test/kernels/attention.test.ts samples it).
// reference-forward.ts does the same, one token at a time.
import { f16round } from "./float16.ts";
import type { KVCache } from "./kv-cache.ts";
import type { ModelConfig } from "./model-config.ts";
import type { Scratch } from "./ops.ts";

const fround = Math.fround;

/**
 * For the chunk's tokens at rows [row0, row0 + nTok) of q (.., n_head*head_dim), at positions
 * pos0 + t, attends over cache positions [0, pos0 + t] of local layer l and writes rows of
 * out (.., n_head*head_dim_v). The chunk's own keys/values must already be in the cache.
 */
export function attendChunk(
  c: ModelConfig, q: Float32Array, out: Float32Array, row0: number, nTok: number, pos0: number,
  kv: KVCache, l: number, scratch: Scratch,
): void {
  const hd = c.headDim;
  const hdv = c.headDimV;
  const qDim = c.nHead * hd;
  const oDim = c.nHead * hdv;
  const K = kv.k[l]; // (n_head_kv, capacity, head_dim)
  const V = kv.v[l]; // (n_head_kv, capacity, head_dim_v)
  const f16 = kv.type === "f16";
  const scale = fround(1 / Math.sqrt(hd));
  const group = c.nHead / c.nHeadKv;
  const qh = scratch.f32("att.q", hd); // (head_dim) one query head, in the cache's precision
  const acc = scratch.f32("att.acc", hdv); // (head_dim_v) weighted sum of values, in the cache's precision
  const accBits = new Uint32Array(acc.buffer, acc.byteOffset, hdv); // the same floats as bits (inline fp16 rounding)

  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1; // causal: positions 0 .. pos0 + t
    const qo = (row0 + t) * qDim;
    const oo = (row0 + t) * oDim;
    for (let h = 0; h < c.nHead; h++) {
      const kvh = Math.floor(h / group);
      if (f16) for (let i = 0; i < hd; i++) qh[i] = f16round(q[qo + h * hd + i]);
      else for (let i = 0; i < hd; i++) qh[i] = q[qo + h * hd + i];
      acc.fill(0, 0, hdv);
      let M = -Infinity;
      let S = 0;
      for (let j = 0; j < nKv; j++) {
        const kb = kv.kOffset(j, kvh);
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        let i = 0;
        // in f32: fround after each operation (a double sum or product of two floats rounded to
        // f32 is the f32 operation's result)
        for (; i + 4 <= hd; i += 4) {
          d0 = fround(d0 + fround(qh[i] * K[kb + i]));
          d1 = fround(d1 + fround(qh[i + 1] * K[kb + i + 1]));
          d2 = fround(d2 + fround(qh[i + 2] * K[kb + i + 2]));
          d3 = fround(d3 + fround(qh[i + 3] * K[kb + i + 3]));
        }
        if (i < hd) d0 = fround(d0 + fround(qh[i] * K[kb + i]));
        if (i + 1 < hd) d1 = fround(d1 + fround(qh[i + 1] * K[kb + i + 1]));
        if (i + 2 < hd) d2 = fround(d2 + fround(qh[i + 2] * K[kb + i + 2]));
        const s = fround(fround(fround(d0 + d2) + fround(d1 + d3)) * scale);
        let ms = 1;
        let vs = 1;
        if (s > M) {
          ms = fround(Math.exp(fround(M - s)));
          M = s;
          if (f16) for (let d = 0; d < hdv; d++) acc[d] = f16round(acc[d] * ms);
          else for (let d = 0; d < hdv; d++) acc[d] *= ms;
        } else {
          vs = fround(Math.exp(fround(s - M)));
        }
        const vb = kv.vOffset(j, kvh);
        if (f16) {
          for (let d = 0; d < hdv; d++) {
            // acc[d] = f16round(acc[d] + v * vs), with f16round inlined for the normal fp16 range
            acc[d] += V[vb + d] * vs;
            const u = accBits[d];
            if (((u & 0x7fffffff) - 0x38800000) >>> 0 < 0x477ff000 - 0x38800000) accBits[d] = (u + 0xfff + ((u >>> 13) & 1)) & 0xffffe000;
            else acc[d] = f16round(acc[d]);
          }
        } else {
          for (let d = 0; d < hdv; d++) acc[d] += V[vb + d] * vs;
        }
        S = fround(S * ms + vs);
      }
      const inv = S === 0 ? 0 : fround(1 / S);
      for (let d = 0; d < hdv; d++) out[oo + h * hdv + d] = acc[d] * inv;
    }
  }
}

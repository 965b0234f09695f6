// The reference forward pass: one token at a time, plain loops, in the style of llama2.c's run.c.
// Read this first. The fast path (fast-forward.ts) computes the same thing for whole batches and
// is tested against this file.
//
// Per token at position pos, for every layer of the stage (LLaMA / Qwen2 / Qwen3 block):
//   xb  = rmsnorm(x) * attn_norm
//   q,k,v = Wq·xb (+bq), Wk·xb (+bk), Wv·xb (+bv)        biases: Qwen2
//   q,k = rmsnorm(each head) * q_norm / k_norm             Qwen3 only
//   q,k = rope(q, pos), rope(k, pos)
//   cache[pos] = k, v
//   att = softmax(q·K^T / sqrt(head_dim)) · V               causal, grouped-query heads (online softmax)
//   x  += Wo·att
//   xb  = rmsnorm(x) * ffn_norm
//   x  += Wdown·(silu(Wgate·xb) * Wup·xb)
// and on the last stage: logits = Woutput·(rmsnorm(x) * output_norm).
//
// Float semantics follow llama.cpp's CPU backend: values are f32 (Float32Array stores round), sums
// are accumulated in double (JS numbers), and the places where ggml rounds through lower precision
// are reproduced: matmul inputs (matmul-input.ts), the F16 KV cache, and the flash-attention kernel's
// fp16 query and fp16 running sum of values (attention.ts).
import { f16round } from "./float16.ts";
import { addBlockMinCorrection, hasBlockMin, matmulInputKind, q8_1SumCorrection, roundMatmulInput } from "./matmul-input.ts";
import { decodeRow, type QTensor } from "./qtensor.ts";
import { ropeApply, ropeCosSin } from "./rope.ts";
import { inputKindFor, logitRows, type ForwardImpl, type Stage, type StageEntry } from "./stage.ts";
import type { KVCache } from "./kv-cache.ts";
import type { LayerWeights } from "./weights.ts";

const fround = Math.fround;

export class ReferenceForward implements ForwardImpl {
  private readonly s: Stage;

  constructor(stage: Stage) {
    this.s = stage;
  }

  run(entries: StageEntry[]): Float32Array[] {
    return entries.map((e) => this.runEntry(e));
  }

  private runEntry(e: StageEntry): Float32Array {
    const { config: c, weights: w, isLast } = this.s;
    const nVocab = c.nVocab;
    const out = isLast ? new Float32Array(logitRows(e) * nVocab) : new Float32Array(e.nTokens * c.nEmbd);
    let outRow = 0;
    for (let t = 0; t < e.nTokens; t++) {
      const pos = e.pos0 + t;
      const x = new Float32Array(c.nEmbd); // (n_embd) residual stream of this token
      if (e.tokens) decodeRow(w.tokEmbd!, e.tokens[t], x);
      else x.set(e.hidden!.subarray(t * c.nEmbd, (t + 1) * c.nEmbd));

      for (let l = 0; l < w.layers.length; l++) this.layer(w.layers[l], l, x, e.kv, pos);

      if (!isLast) {
        out.set(x, t * c.nEmbd);
      } else if (e.logits === "all" || (e.logits === "last" && t === e.nTokens - 1)) {
        const xn = rmsnorm(x, w.outputNorm!, c.normEps); // (n_embd)
        const logits = this.matvec(w.output!, xn); // (n_vocab)
        out.set(logits, outRow * nVocab);
        outRow++;
      }
    }
    return out;
  }

  private layer(L: LayerWeights, l: number, x: Float32Array, kv: KVCache, pos: number): void {
    const c = this.s.config;
    const hd = c.headDim;
    const hdv = c.headDimV;

    // ---- attention ----
    const xb = rmsnorm(x, L.attnNorm, c.normEps); // (n_embd)
    const q = addBias(this.matvec(L.wq, xb), L.bq); // (n_head*head_dim)
    const k = addBias(this.matvec(L.wk, xb), L.bk); // (n_head_kv*head_dim)
    const v = addBias(this.matvec(L.wv, xb), L.bv); // (n_head_kv*head_dim_v)
    if (L.qNorm) for (let h = 0; h < c.nHead; h++) rmsnormInPlace(q, h * hd, hd, L.qNorm, c.normEps);
    if (L.kNorm) for (let h = 0; h < c.nHeadKv; h++) rmsnormInPlace(k, h * hd, hd, L.kNorm, c.normEps);

    const cs = new Float32Array(c.nRot); // (n_rot/2, 2) cos, sin of each pair's angle
    ropeCosSin(this.s.rope, pos, cs);
    ropeApply(this.s.rope, q, 0, c.nHead, hd, cs, 0);
    ropeApply(this.s.rope, k, 0, c.nHeadKv, hd, cs, 0);

    kv.write(l, pos, 1, k, v, 0);
    const K = kv.k[l]; // (n_head_kv, capacity, head_dim): position j of head h at kv.kOffset(j, h)
    const V = kv.v[l]; // (n_head_kv, capacity, head_dim_v)
    const f16 = kv.type === "f16";

    // Attention with the numerics of llama.cpp's CPU flash-attention kernel (see attention.ts):
    // an online softmax that keeps the running max M, the running sum S and the weighted sum of
    // values in the cache's precision (fp16 for an F16 cache).
    const round = f16 ? f16round : fround;
    const att = new Float32Array(c.nHead * hdv); // (n_head*head_dim_v)
    const scale = fround(1 / Math.sqrt(hd));
    const group = c.nHead / c.nHeadKv;
    for (let h = 0; h < c.nHead; h++) {
      const kvh = Math.floor(h / group); // the KV head this query head reads
      const qh = new Float32Array(hd); // (head_dim) the query, in the cache's precision
      for (let i = 0; i < hd; i++) qh[i] = round(q[h * hd + i]);

      const acc = new Float32Array(hdv); // (head_dim_v) running weighted sum of values
      let M = -Infinity; // running max of the scores
      let S = 0; // running sum of exp(score - M)
      for (let j = 0; j <= pos; j++) {
        // q·k_j in f32, in four lanes (dims i % 4) summed apart, then (l0 + l2) + (l1 + l3) — the
        // kernels' order; llama.cpp's ggml_vec_dot_f16 sums in f32 lanes too (as many as its SIMD has)
        const lane = [0, 0, 0, 0];
        for (let i = 0; i < hd; i++) lane[i % 4] = fround(lane[i % 4] + fround(qh[i] * K[kv.kOffset(j, kvh) + i]));
        const dot = fround(fround(lane[0] + lane[2]) + fround(lane[1] + lane[3]));
        const score = fround(dot * scale);
        let ms = 1; // rescale of what was accumulated, when the max grows
        let vs = 1; // weight of position j: exp(score - M)
        if (score > M) {
          ms = fround(Math.exp(fround(M - score)));
          M = score;
          for (let d = 0; d < hdv; d++) acc[d] = round(acc[d] * ms);
        } else {
          vs = fround(Math.exp(fround(score - M)));
        }
        for (let d = 0; d < hdv; d++) acc[d] = round(acc[d] + V[kv.vOffset(j, kvh) + d] * vs);
        S = fround(S * ms + vs);
      }
      const inv = S === 0 ? 0 : fround(1 / S);
      for (let d = 0; d < hdv; d++) att[h * hdv + d] = acc[d] * inv;
    }
    const o = addBias(this.matvec(L.wo, att), L.bo); // (n_embd)
    for (let i = 0; i < c.nEmbd; i++) x[i] += o[i];

    // ---- feed-forward (SwiGLU) ----
    const xb2 = rmsnorm(x, L.ffnNorm, c.normEps); // (n_embd)
    const g = addBias(this.matvec(L.wGate, xb2), L.bGate); // (n_ff)
    const u = addBias(this.matvec(L.wUp, xb2), L.bUp); // (n_ff)
    const hb = new Float32Array(g.length); // (n_ff)
    for (let i = 0; i < g.length; i++) hb[i] = silu(g[i]) * u[i];
    const d = addBias(this.matvec(L.wDown, hb), L.bDown); // (n_embd)
    for (let i = 0; i < c.nEmbd; i++) x[i] += d[i];
  }

  /** y = W·x for W (n_rows, n_cols), decoding one row at a time. */
  private matvec(W: QTensor, x: Float32Array): Float32Array {
    const xr = new Float32Array(W.nCols); // (n_cols) x as ggml's matmul sees it
    roundMatmulInput(inputKindFor(this.s.numerics, matmulInputKind(W.type)), x, xr, W.nCols);
    const row = new Float32Array(W.nCols); // (n_cols) one decoded weight row
    const y = new Float32Array(W.nRows); // (n_rows)
    for (let r = 0; r < W.nRows; r++) {
      decodeRow(W, r, row);
      let sum = 0;
      for (let i = 0; i < W.nCols; i++) sum += row[i] * xr[i];
      y[r] = sum;
    }
    if (hasBlockMin(W.type) && this.s.numerics.matmulInput === "vec-dot") {
      const corr = new Float32Array(W.nCols / 32); // (n_cols/32) ggml's Q8_1 block-sum term, see matmul-input.ts
      q8_1SumCorrection(x, 0, W.nCols, corr, 0);
      addBlockMinCorrection(W, corr, 1, y);
    }
    return y;
  }
}

/** out = x / sqrt(mean(x²) + eps) * w, as ggml_rms_norm followed by ggml_mul. */
function rmsnorm(x: Float32Array, w: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(x);
  rmsnormInPlace(out, 0, x.length, w, eps);
  return out;
}

/** RMSNorm of x[o .. o+n) in place, times w[0 .. n). */
function rmsnormInPlace(x: Float32Array, o: number, n: number, w: Float32Array, eps: number): void {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += fround(x[o + i] * x[o + i]);
  const mean = fround(sum / n);
  const scale = fround(1 / fround(Math.sqrt(fround(mean + eps))));
  for (let i = 0; i < n; i++) x[o + i] = fround(x[o + i] * scale) * w[i];
}

/** SiLU as ggml_silu_f32: x / (1 + expf(-x)). */
function silu(x: number): number {
  return fround(x / fround(1 + fround(Math.exp(-x))));
}

function addBias(y: Float32Array, b: Float32Array | undefined): Float32Array {
  if (b) for (let i = 0; i < y.length; i++) y[i] += b[i];
  return y;
}

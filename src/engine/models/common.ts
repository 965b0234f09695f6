// Building blocks shared by the per-architecture layer definitions (fast path), the counterpart of
// llama.cpp's llm_graph_context helpers (build_norm, build_attn, build_ffn).
import { attendChunk } from "../attention.ts";
import { addBlockMinCorrection, hasBlockMin, matmulInputKind, q8_1SumCorrection, roundMatmulInput, type MatmulInputKind } from "../matmul-input.ts";
import { addBiasRows, addInPlace, matmul, MATMUL_ROW_BLOCK, rmsNormRows, swiglu, type Scratch } from "../ops.ts";
import type { QTensor } from "../qtensor.ts";
import type { ActKind, KAct } from "../../kernels/index.ts";
import { ropeApply } from "../rope.ts";
import { inputKindFor, type Stage, type StageEntry } from "../stage.ts";
import type { LayerWeights } from "../weights.ts";

/** A batch on its way through the layers of a stage. */
export interface BatchState {
  stage: Stage;
  scratch: Scratch;
  /** Total tokens in the batch (all entries, concatenated in entry order). */
  nTok: number;
  /** (n_tok, n_embd) residual stream. */
  x: Float32Array;
  /** (n_tok, n_rot) RoPE cos/sin of each token's position. */
  ropeCS: Float32Array;
  /** Each entry with the batch row of its first token. */
  entries: Array<{ entry: StageEntry; row0: number }>;
}

/** One activation buffer as seen by matmuls, rounded once per weight kind and reused. */
export class MatmulInput {
  private readonly rounded = new Map<MatmulInputKind, Float32Array>();
  private readonly b: BatchState;
  private readonly x: Float32Array;
  private readonly width: number;
  private readonly slot: string;
  private corr: Float32Array | undefined;
  private readonly kacts = new Map<ActKind, KAct>();

  /** x: (n_tok, width); slot names the scratch buffers used for the rounded copies. */
  constructor(b: BatchState, x: Float32Array, width: number, slot: string) {
    this.b = b;
    this.x = x;
    this.width = width;
    this.slot = slot;
  }

  /** Q4_1/Q5_1 offset-term corrections (n_tok, width/32), computed once (see q8_1SumCorrection). */
  blockSumCorrection(): Float32Array {
    if (!this.corr) {
      const nb = this.width / 32;
      this.corr = this.b.scratch.f32(`${this.slot}.q8_1corr`, this.b.nTok * nb); // (n_tok, width/32)
      for (let t = 0; t < this.b.nTok; t++) q8_1SumCorrection(this.x, t * this.width, this.width, this.corr, t * nb);
    }
    return this.corr;
  }

  /** The activations in kernel memory in the format W's packed layout takes, quantized once per kind. */
  kernelInput(kind: ActKind): KAct {
    let a = this.kacts.get(kind);
    if (!a) {
      a = this.b.stage.kernels!.input(this.x, this.b.nTok, this.width, kind, this.slot);
      this.kacts.set(kind, a);
    }
    return a;
  }

  /** The activations rounded for W's type. */
  for(W: QTensor): Float32Array {
    const kind = inputKindFor(this.b.stage.numerics, matmulInputKind(W.type));
    if (kind === "f32") return this.x;
    let r = this.rounded.get(kind);
    if (!r) {
      const n = this.b.nTok * this.width;
      r = this.b.scratch.f32(`${this.slot}.${kind}`, n); // (n_tok, width)
      roundMatmulInput(kind, this.x, r, n);
      this.rounded.set(kind, r);
    }
    return r;
  }
}

/** y (n_tok, W.nRows) = input · Wᵀ (+ bias). */
export function project(b: BatchState, W: QTensor, input: MatmulInput, y: Float32Array, bias?: Float32Array): void {
  if (W.k) {
    b.stage.kernels!.matmul(W.k, input.kernelInput(W.k.act), y);
    addBiasRows(y, b.nTok, W.nRows, bias);
    return;
  }
  const rows = b.scratch.f32("matmul.rows", MATMUL_ROW_BLOCK * W.nCols); // (16, n_cols) decoded weight rows
  matmul(W, input.for(W), b.nTok, y, rows);
  if (hasBlockMin(W.type) && b.stage.numerics.matmulInput === "vec-dot") addBlockMinCorrection(W, input.blockSumCorrection(), b.nTok, y);
  addBiasRows(y, b.nTok, W.nRows, bias);
}

export interface AttentionOptions {
  /** Qwen3: RMSNorm each query/key head (attn_q_norm / attn_k_norm) before RoPE. */
  qkNorm: boolean;
}

/** x += Wo · attention(rmsnorm(x) * attn_norm), storing this chunk's keys/values in each KV cache. */
export function attentionBlock(b: BatchState, L: LayerWeights, l: number, opts: AttentionOptions): void {
  const c = b.stage.config;
  const n = b.nTok;
  const hd = c.headDim;
  const qDim = c.nHead * hd;
  const kDim = c.nHeadKv * hd;
  const vDim = c.nHeadKv * c.headDimV;
  const s = b.scratch;

  const xn = s.f32("xn", n * c.nEmbd); // (n_tok, n_embd)
  rmsNormRows(b.x, xn, n, c.nEmbd, L.attnNorm, c.normEps);
  const inp = new MatmulInput(b, xn, c.nEmbd, "xn");
  const q = s.f32("q", n * qDim); // (n_tok, n_head*head_dim)
  const k = s.f32("k", n * kDim); // (n_tok, n_head_kv*head_dim)
  const v = s.f32("v", n * vDim); // (n_tok, n_head_kv*head_dim_v)
  project(b, L.wq, inp, q, L.bq);
  project(b, L.wk, inp, k, L.bk);
  project(b, L.wv, inp, v, L.bv);
  if (opts.qkNorm) {
    rmsNormRows(q, q, n * c.nHead, hd, L.qNorm!, c.normEps);
    rmsNormRows(k, k, n * c.nHeadKv, hd, L.kNorm!, c.normEps);
  }
  for (let t = 0; t < n; t++) {
    ropeApply(b.stage.rope, q, t * qDim, c.nHead, hd, b.ropeCS, t * c.nRot);
    ropeApply(b.stage.rope, k, t * kDim, c.nHeadKv, hd, b.ropeCS, t * c.nRot);
  }

  const att = s.f32("att", n * c.nHead * c.headDimV); // (n_tok, n_head*head_dim_v)
  const kern = b.stage.kernels;
  const wasmAttention = kern !== undefined && hd % 4 === 0 && c.headDimV % 4 === 0;
  for (const { entry: e, row0 } of b.entries) {
    if (wasmAttention) e.kv.attach(kern.mem); // the cache lives in kernel memory (no copies)
    e.kv.write(l, e.pos0, e.nTokens, k, v, row0);
    if (wasmAttention) kern.attend(c, q, att, row0, e.nTokens, e.pos0, e.kv.kPtr[l], e.kv.vPtr[l], e.kv.kRow, e.kv.vRow, e.kv.type === "f16", e.kv.kHeadStride, e.kv.vHeadStride);
    else attendChunk(c, q, att, row0, e.nTokens, e.pos0, e.kv, l, s);
  }

  const o = s.f32("o", n * c.nEmbd); // (n_tok, n_embd)
  project(b, L.wo, new MatmulInput(b, att, c.nHead * c.headDimV, "att"), o, L.bo);
  addInPlace(b.x, o, n * c.nEmbd);
}

/** x += Wdown · (silu(Wgate · xn) * (Wup · xn)) with xn = rmsnorm(x) * ffn_norm. */
export function feedForwardBlock(b: BatchState, L: LayerWeights): void {
  const c = b.stage.config;
  const n = b.nTok;
  const nFF = L.wGate.nRows;
  const s = b.scratch;

  const xn = s.f32("xn", n * c.nEmbd); // (n_tok, n_embd)
  rmsNormRows(b.x, xn, n, c.nEmbd, L.ffnNorm, c.normEps);
  const inp = new MatmulInput(b, xn, c.nEmbd, "xn");
  const g = s.f32("gate", n * nFF); // (n_tok, n_ff)
  const u = s.f32("up", n * nFF); // (n_tok, n_ff)
  project(b, L.wGate, inp, g, L.bGate);
  project(b, L.wUp, inp, u, L.bUp);
  if (b.stage.kernels) b.stage.kernels.swiglu(g, u, n * nFF); // on every thread
  else swiglu(g, u, n * nFF);
  const d = s.f32("down", n * c.nEmbd); // (n_tok, n_embd)
  project(b, L.wDown, new MatmulInput(b, g, nFF, "gate"), d, L.bDown);
  addInPlace(b.x, d, n * c.nEmbd);
}

/** Per-architecture layer definition (one file per architecture under models/). */
export interface LayerDefinition {
  arch: string;
  forwardLayer(b: BatchState, L: LayerWeights, l: number): void;
}

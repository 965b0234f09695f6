// Loads the weights one pipeline stage needs: the blocks of layers [start, end), plus token_embd
// on the first stage and output_norm/output (or the tied token_embd) on the last. Nothing else is
// read from disk. Matrices stay in their GGUF encoding (QTensor); small vectors (norms, biases)
// are decoded to Float32Array.
//
// Tensor names (llama.cpp src/llama-arch.cpp LLM_TENSOR_NAMES):
//   token_embd.weight, output_norm.weight, output.weight, rope_freqs.weight,
//   blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, attn_q_norm, attn_k_norm,
//          ffn_norm, ffn_gate, ffn_up, ffn_down}.weight and optional .bias of the projections.
import type { GGUFFile } from "../gguf/reader.ts";
import { dequantize, isSupportedType } from "../gguf/formats/index.ts";
import { ggmlTypeName, type GGMLTypeId, type TensorInfo } from "../gguf/types.ts";
import type { KTensor, RowReader } from "../kernels/index.ts";
import type { ModelConfig } from "./model-config.ts";
import { makeQTensor, packedQTensor, type QTensor } from "./qtensor.ts";

/** Half-open layer range [start, end). */
export interface LayerRange {
  start: number;
  end: number;
}

export interface LayerWeights {
  /** Global index N of blk.N. */
  index: number;
  attnNorm: Float32Array; // (n_embd)
  wq: QTensor; // (n_head*head_dim rows, n_embd cols)
  wk: QTensor; // (n_head_kv*head_dim rows, n_embd cols)
  wv: QTensor; // (n_head_kv*head_dim_v rows, n_embd cols)
  wo: QTensor; // (n_embd rows, n_head*head_dim_v cols)
  bq?: Float32Array; // (n_head*head_dim)      qwen2 (optional for llama)
  bk?: Float32Array; // (n_head_kv*head_dim)
  bv?: Float32Array; // (n_head_kv*head_dim_v)
  bo?: Float32Array; // (n_embd)
  qNorm?: Float32Array; // (head_dim) qwen3: RMSNorm of each query head before RoPE
  kNorm?: Float32Array; // (head_dim) qwen3: RMSNorm of each key head before RoPE
  ffnNorm: Float32Array; // (n_embd)
  wGate: QTensor; // (n_ff rows, n_embd cols)
  wUp: QTensor; // (n_ff rows, n_embd cols)
  wDown: QTensor; // (n_embd rows, n_ff cols)
  bGate?: Float32Array; // (n_ff)
  bUp?: Float32Array; // (n_ff)
  bDown?: Float32Array; // (n_embd)
}

export interface StageWeights {
  range: LayerRange;
  /** (n_vocab rows, n_embd cols) — first stage only. */
  tokEmbd?: QTensor;
  layers: LayerWeights[];
  /** (n_embd) — last stage only. */
  outputNorm?: Float32Array;
  /** (n_vocab rows, n_embd cols) — last stage only; the same object as tokEmbd when tied. */
  output?: QTensor;
  /** (n_rot/2) RoPE frequency divisors (Llama 3 rope scaling), when the model has them. */
  ropeFreqs?: Float32Array;
}

export class WeightsError extends Error {
  override name = "WeightsError";
}

function info(gguf: GGUFFile, name: string): TensorInfo {
  const t = gguf.tensors.get(name);
  if (!t) throw new WeightsError(`${gguf.path}: required tensor "${name}" is missing`);
  if (!isSupportedType(t.type)) {
    throw new WeightsError(`${gguf.path}: tensor "${name}" has type ${ggmlTypeName(t.type)}, which this engine cannot decode yet`);
  }
  return t;
}

function checkShape(t: TensorInfo, cols: number, rows: number): void {
  const r = t.dims.slice(1).reduce((a, b) => a * b, 1);
  if (t.dims[0] !== cols || r !== rows) {
    throw new WeightsError(`tensor "${t.name}" has shape [${t.dims.join(", ")}], expected [${cols}, ${rows}]`);
  }
}

/**
 * Puts a matrix straight into kernel memory, reading its GGUF rows through `read` (no copy of the
 * tensor outside kernel memory); returns undefined for a type the kernels do not take (the matrix is
 * then read into a JS buffer).
 */
export type MatrixPacker = (m: { name: string; type: GGMLTypeId; nCols: number; nRows: number; rowBytes: number }, read: RowReader) => KTensor | undefined;

/**
 * The loading steps yield after each matrix (the unit of work), so that an async caller can let its
 * event loop run (heartbeats, requests) while a large stage loads; `done` counts matrix bytes.
 */
type Loading<T> = Generator<{ done: number }, T>;

interface LoadCtx {
  gguf: GGUFFile;
  pack: MatrixPacker | undefined;
  done: number;
}

function* loadMatrix(ctx: LoadCtx, name: string, cols: number, rows?: number): Loading<QTensor> {
  const { gguf, pack } = ctx;
  const t = info(gguf, name);
  const nRows = rows ?? t.nElements / t.dims[0];
  checkShape(t, cols, nRows);
  const k = pack?.({ name, type: t.type, nCols: cols, nRows, rowBytes: t.nBytes / nRows }, (r0, n, dst) => gguf.readRowsInto(name, r0, n, dst));
  const q = k ? packedQTensor(name, t.type, t.dims, k) : makeQTensor(name, t.type, t.dims, gguf.readTensor(name));
  ctx.done += t.nBytes;
  yield { done: ctx.done };
  return q;
}

function loadVector(gguf: GGUFFile, name: string, n: number): Float32Array {
  const t = info(gguf, name);
  if (t.nElements !== n) throw new WeightsError(`tensor "${name}" has ${t.nElements} elements, expected ${n}`);
  return dequantize(t.type, gguf.readTensor(name), n);
}

function loadOptionalVector(gguf: GGUFFile, name: string, n: number): Float32Array | undefined {
  return gguf.tensors.has(name) ? loadVector(gguf, name, n) : undefined;
}

function* loadLayer(ctx: LoadCtx, c: ModelConfig, il: number): Loading<LayerWeights> {
  const gguf = ctx.gguf;
  const p = `blk.${il}.`;
  if (gguf.tensors.has(`${p}ffn_gate_inp.weight`)) throw new WeightsError(`mixture-of-experts layers (${p}ffn_gate_inp) are not supported`);
  const qDim = c.nHead * c.headDim;
  const kDim = c.nHeadKv * c.headDim;
  const vDim = c.nHeadKv * c.headDimV;
  const wGate = yield* loadMatrix(ctx, `${p}ffn_gate.weight`, c.nEmbd);
  const nFF = wGate.nRows;
  const layer: LayerWeights = {
    index: il,
    attnNorm: loadVector(gguf, `${p}attn_norm.weight`, c.nEmbd),
    wq: yield* loadMatrix(ctx, `${p}attn_q.weight`, c.nEmbd, qDim),
    wk: yield* loadMatrix(ctx, `${p}attn_k.weight`, c.nEmbd, kDim),
    wv: yield* loadMatrix(ctx, `${p}attn_v.weight`, c.nEmbd, vDim),
    wo: yield* loadMatrix(ctx, `${p}attn_output.weight`, c.nHead * c.headDimV, c.nEmbd),
    ffnNorm: loadVector(gguf, `${p}ffn_norm.weight`, c.nEmbd),
    wGate,
    wUp: yield* loadMatrix(ctx, `${p}ffn_up.weight`, c.nEmbd, nFF),
    wDown: yield* loadMatrix(ctx, `${p}ffn_down.weight`, nFF, c.nEmbd),
  };
  const optional: Array<[keyof LayerWeights, string, number]> = [
    ["bq", "attn_q.bias", qDim], ["bk", "attn_k.bias", kDim], ["bv", "attn_v.bias", vDim], ["bo", "attn_output.bias", c.nEmbd],
    ["qNorm", "attn_q_norm.weight", c.headDim], ["kNorm", "attn_k_norm.weight", c.headDim],
    ["bGate", "ffn_gate.bias", nFF], ["bUp", "ffn_up.bias", nFF], ["bDown", "ffn_down.bias", c.nEmbd],
  ];
  for (const [key, suffix, n] of optional) {
    const v = loadOptionalVector(gguf, p + suffix, n);
    if (v) (layer as unknown as Record<string, Float32Array>)[key] = v;
  }
  if (c.arch === "qwen2" && !(layer.bq && layer.bk && layer.bv)) throw new WeightsError(`qwen2 layer ${il} lacks the attn_q/k/v biases`);
  if (c.arch === "qwen3" && !(layer.qNorm && layer.kNorm)) throw new WeightsError(`qwen3 layer ${il} lacks attn_q_norm/attn_k_norm`);
  return layer;
}

/** Checks a range against the model: integers with 0 <= start < end <= nLayer. */
export function validateRange(range: LayerRange, nLayer: number): void {
  const { start, end } = range;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > nLayer || start >= end) {
    throw new WeightsError(`invalid layer range [${start}, ${end}) for a model with ${nLayer} layers (need 0 <= start < end <= ${nLayer})`);
  }
}

/** Reads the tensors of one stage from the file (and nothing else). */
export function loadStageWeights(gguf: GGUFFile, config: ModelConfig, range: LayerRange, pack?: MatrixPacker, opts: LoadOptions = {}): StageWeights {
  const steps = stageWeightSteps(gguf, config, range, pack, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * loadStageWeights letting the event loop run after each matrix (a worker keeps answering heartbeats
 * while it loads gigabytes); onProgress gets the matrix bytes loaded so far.
 */
export async function loadStageWeightsAsync(
  gguf: GGUFFile, config: ModelConfig, range: LayerRange, pack?: MatrixPacker, opts: LoadOptions = {}, onProgress?: (bytes: number) => void,
): Promise<StageWeights> {
  const steps = stageWeightSteps(gguf, config, range, pack, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    onProgress?.(r.value.done);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

export interface LoadOptions {
  /**
   * The first stage's token_embd (embedding lookups), already loaded elsewhere: the tied output matrix
   * of the same engine's last part (see memory-parts.ts), so that it is not held twice.
   */
  tokEmbd?: QTensor;
}

/** Bytes of the matrices a stage loads (what loadStageWeightsAsync's progress counts up to). */
export function stageMatrixBytes(gguf: GGUFFile, config: ModelConfig, range: LayerRange, borrowsTokEmbd = false): number {
  const tied = range.end === config.nLayer && !gguf.tensors.has("output.weight");
  let n = 0;
  for (const t of gguf.tensors.values()) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    // a layer's matrices (its vectors — norms, biases — are not counted by the progress either)
    if (m) n += Number(m[1]) >= range.start && Number(m[1]) < range.end && t.dims.length >= 2 ? t.nBytes : 0;
  }
  if ((range.start === 0 && !borrowsTokEmbd) || tied) n += gguf.tensors.get("token_embd.weight")?.nBytes ?? 0;
  if (range.end === config.nLayer && !tied) n += gguf.tensors.get("output.weight")?.nBytes ?? 0;
  return n;
}

function* stageWeightSteps(gguf: GGUFFile, config: ModelConfig, range: LayerRange, pack: MatrixPacker | undefined, opts: LoadOptions): Loading<StageWeights> {
  validateRange(range, config.nLayer);
  const ctx: LoadCtx = { gguf, pack, done: 0 };
  const isFirst = range.start === 0;
  const isLast = range.end === config.nLayer;
  const w: StageWeights = { range: { ...range }, layers: [] };
  const tied = isLast && !gguf.tensors.has("output.weight");
  if (isFirst && opts.tokEmbd) w.tokEmbd = opts.tokEmbd;
  else if (isFirst || tied) w.tokEmbd = yield* loadMatrix(ctx, "token_embd.weight", config.nEmbd, config.nVocab);
  for (let il = range.start; il < range.end; il++) w.layers.push(yield* loadLayer(ctx, config, il));
  if (gguf.tensors.has("rope_freqs.weight")) w.ropeFreqs = loadVector(gguf, "rope_freqs.weight", config.nRot / 2);
  if (isLast) {
    w.outputNorm = loadVector(gguf, "output_norm.weight", config.nEmbd);
    w.output = tied ? w.tokEmbd : yield* loadMatrix(ctx, "output.weight", config.nEmbd, config.nVocab);
    if (!isFirst && tied) {
      // The last stage needs token_embd only as the (tied) output matrix, not for lookups.
      delete w.tokEmbd;
    }
  }
  return w;
}

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
import { ggmlTypeName, type TensorInfo } from "../gguf/types.ts";
import type { ModelConfig } from "./model-config.ts";
import { makeQTensor, type QTensor } from "./qtensor.ts";

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

/** Called on each matrix as soon as it is read (e.g. to move it into kernel memory). */
type MatrixHook = (t: QTensor) => void;
let matrixHook: MatrixHook | undefined;

function loadMatrix(gguf: GGUFFile, name: string, cols: number, rows?: number): QTensor {
  const t = info(gguf, name);
  checkShape(t, cols, rows ?? t.nElements / t.dims[0]);
  const q = makeQTensor(name, t.type, t.dims, gguf.readTensor(name));
  matrixHook?.(q);
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

function loadLayer(gguf: GGUFFile, c: ModelConfig, il: number): LayerWeights {
  const p = `blk.${il}.`;
  if (gguf.tensors.has(`${p}ffn_gate_inp.weight`)) throw new WeightsError(`mixture-of-experts layers (${p}ffn_gate_inp) are not supported`);
  const qDim = c.nHead * c.headDim;
  const kDim = c.nHeadKv * c.headDim;
  const vDim = c.nHeadKv * c.headDimV;
  const wGate = loadMatrix(gguf, `${p}ffn_gate.weight`, c.nEmbd);
  const nFF = wGate.nRows;
  const layer: LayerWeights = {
    index: il,
    attnNorm: loadVector(gguf, `${p}attn_norm.weight`, c.nEmbd),
    wq: loadMatrix(gguf, `${p}attn_q.weight`, c.nEmbd, qDim),
    wk: loadMatrix(gguf, `${p}attn_k.weight`, c.nEmbd, kDim),
    wv: loadMatrix(gguf, `${p}attn_v.weight`, c.nEmbd, vDim),
    wo: loadMatrix(gguf, `${p}attn_output.weight`, c.nHead * c.headDimV, c.nEmbd),
    ffnNorm: loadVector(gguf, `${p}ffn_norm.weight`, c.nEmbd),
    wGate,
    wUp: loadMatrix(gguf, `${p}ffn_up.weight`, c.nEmbd, nFF),
    wDown: loadMatrix(gguf, `${p}ffn_down.weight`, nFF, c.nEmbd),
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
export function loadStageWeights(gguf: GGUFFile, config: ModelConfig, range: LayerRange, onMatrix?: MatrixHook): StageWeights {
  validateRange(range, config.nLayer);
  matrixHook = onMatrix;
  try {
    return loadStageWeightsInner(gguf, config, range);
  } finally {
    matrixHook = undefined;
  }
}

function loadStageWeightsInner(gguf: GGUFFile, config: ModelConfig, range: LayerRange): StageWeights {
  const isFirst = range.start === 0;
  const isLast = range.end === config.nLayer;
  const w: StageWeights = { range: { ...range }, layers: [] };
  const tied = isLast && !gguf.tensors.has("output.weight");
  if (isFirst || tied) w.tokEmbd = loadMatrix(gguf, "token_embd.weight", config.nEmbd, config.nVocab);
  for (let il = range.start; il < range.end; il++) w.layers.push(loadLayer(gguf, config, il));
  if (gguf.tensors.has("rope_freqs.weight")) w.ropeFreqs = loadVector(gguf, "rope_freqs.weight", config.nRot / 2);
  if (isLast) {
    w.outputNorm = loadVector(gguf, "output_norm.weight", config.nEmbd);
    w.output = tied ? w.tokEmbd : loadMatrix(gguf, "output.weight", config.nEmbd, config.nVocab);
    if (!isFirst && tied) {
      // The last stage needs token_embd only as the (tied) output matrix, not for lookups.
      delete w.tokEmbd;
    }
  }
  return w;
}

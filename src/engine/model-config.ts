// ModelConfig: the hyper-parameters of a decoder-only transformer, read from GGUF metadata.
//
// Keys follow llama.cpp (src/llama-arch.cpp LLM_KV_NAMES, src/llama-model.cpp load_hparams):
//   {arch}.block_count, .embedding_length, .feed_forward_length, .attention.head_count,
//   .attention.head_count_kv, .attention.key_length, .attention.value_length,
//   .attention.layer_norm_rms_epsilon, .rope.freq_base, .rope.dimension_count,
//   .rope.scaling.type, .rope.scaling.factor (or the older .rope.scale_linear), .context_length,
//   .vocab_size (else len(tokenizer.ggml.tokens), else the rows of token_embd.weight).
import type { GGUFValue, TensorInfo } from "../gguf/types.ts";

/** Architectures this engine can run. */
export const SUPPORTED_ARCHITECTURES = ["llama", "qwen2", "qwen3"] as const;
export type ArchitectureName = (typeof SUPPORTED_ARCHITECTURES)[number];

/**
 * How RoPE pairs the dimensions of a head (llama.cpp llama_model_rope_type):
 * - "normal": adjacent pairs (2i, 2i+1) — LLaMA (the GGUF converter permutes Q/K rows for this)
 * - "neox":   split halves (i, i + n_rot/2) — Qwen2, Qwen3
 */
export type RopeType = "normal" | "neox";

export interface ModelConfig {
  arch: ArchitectureName;
  /** Number of transformer blocks in the whole model. */
  nLayer: number;
  /** Width of the residual stream. */
  nEmbd: number;
  /** Hidden width of the feed-forward block. */
  nFF: number;
  /** Query heads. */
  nHead: number;
  /** Key/value heads (grouped-query attention: nHead / nHeadKv query heads share one KV head). */
  nHeadKv: number;
  /** Dimension of one query/key head (attention.key_length, default nEmbd / nHead). */
  headDim: number;
  /** Dimension of one value head (attention.value_length, default headDim). */
  headDimV: number;
  /** Dimensions of a head that RoPE rotates (rope.dimension_count, default headDim). */
  nRot: number;
  ropeType: RopeType;
  /** RoPE base frequency (rope.freq_base, default 10000). */
  ropeFreqBase: number;
  /** Linear RoPE position scale: 1 / rope.scaling.factor (1 when unscaled). */
  ropeFreqScale: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** Context length the model was trained for. */
  contextLength: number;
  nVocab: number;
  /** Same as nVocab (kept for callers written against the first draft of this interface). */
  vocabSize: number;
  /** tokenizer.ggml.bos_token_id / eos_token_id when present. */
  bosTokenId?: number;
  eosTokenId?: number;
}

/** Thrown for a model this engine cannot run or whose metadata is incomplete. */
export class ModelConfigError extends Error {
  override name = "ModelConfigError";
}

type MetadataGetter = (key: string) => GGUFValue | undefined;

function asNumber(v: GGUFValue | undefined, key: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  // Per-layer arrays (e.g. feed_forward_length for models with varying widths): all equal is fine.
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const a = Array.from(v as ArrayLike<number | bigint>, Number);
    if (a.length > 0 && a.every((x) => x === a[0])) return a[0];
    throw new ModelConfigError(`metadata "${key}" varies per layer (${a.slice(0, 8).join(", ")}…), which is not supported`);
  }
  throw new ModelConfigError(`metadata "${key}" should be a number, got ${typeof v}`);
}

/**
 * Builds the ModelConfig from a metadata getter (GGUFFile.getValue works as is).
 * `tensors` (optional) supplies vocab size from token_embd.weight when no key holds it.
 */
export function readModelConfig(get: MetadataGetter, tensors?: ReadonlyMap<string, TensorInfo>): ModelConfig {
  const archValue = get("general.architecture");
  if (typeof archValue !== "string") throw new ModelConfigError(`metadata "general.architecture" is missing`);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(archValue)) {
    throw new ModelConfigError(
      `unsupported architecture "${archValue}" (supported: ${SUPPORTED_ARCHITECTURES.join(", ")})`,
    );
  }
  const arch = archValue as ArchitectureName;
  const opt = (suffix: string): number | undefined => asNumber(get(`${arch}.${suffix}`), `${arch}.${suffix}`);
  const req = (suffix: string): number => {
    const v = opt(suffix);
    if (v === undefined) throw new ModelConfigError(`metadata "${arch}.${suffix}" is missing (required for ${arch})`);
    return v;
  };

  const nLayer = req("block_count");
  const nEmbd = req("embedding_length");
  const nFF = req("feed_forward_length");
  const nHead = req("attention.head_count");
  const nHeadKv = opt("attention.head_count_kv") ?? nHead;
  const headDim = opt("attention.key_length") ?? nEmbd / nHead;
  const headDimV = opt("attention.value_length") ?? headDim;
  const nRot = opt("rope.dimension_count") ?? headDim;
  const normEps = req("attention.layer_norm_rms_epsilon");
  const ropeFreqBase = opt("rope.freq_base") ?? 10000;
  const contextLength = opt("context_length") ?? 2048;

  for (const [name, v] of [["block_count", nLayer], ["embedding_length", nEmbd], ["feed_forward_length", nFF],
    ["attention.head_count", nHead], ["attention.head_count_kv", nHeadKv]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new ModelConfigError(`metadata "${arch}.${name}" must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(headDim) || headDim <= 0) {
    throw new ModelConfigError(`head dimension ${headDim} is not a positive integer (embedding_length ${nEmbd} / head_count ${nHead})`);
  }
  if (nHead % nHeadKv !== 0) throw new ModelConfigError(`head_count ${nHead} is not a multiple of head_count_kv ${nHeadKv}`);
  if (nRot % 2 !== 0 || nRot > headDim) throw new ModelConfigError(`rope.dimension_count ${nRot} must be even and <= head dimension ${headDim}`);

  // RoPE scaling (llama.cpp: type defaults to "linear"; factor 0 or absent means unscaled).
  const scalingType = get(`${arch}.rope.scaling.type`);
  const factor = opt("rope.scaling.factor") ?? opt("rope.scale_linear") ?? 0;
  if (scalingType !== undefined && scalingType !== "none" && scalingType !== "linear" && factor !== 0 && factor !== 1) {
    throw new ModelConfigError(`RoPE scaling type "${String(scalingType)}" is not supported (only none and linear)`);
  }
  const ropeFreqScale = scalingType === "none" || factor === 0 ? 1 : 1 / factor;

  let nVocab = opt("vocab_size");
  if (nVocab === undefined) {
    const tokens = get("tokenizer.ggml.tokens");
    if (Array.isArray(tokens)) nVocab = tokens.length;
  }
  if (nVocab === undefined) nVocab = tensors?.get("token_embd.weight")?.dims[1];
  if (nVocab === undefined) throw new ModelConfigError(`vocabulary size unknown: no "${arch}.vocab_size", tokenizer.ggml.tokens or token_embd.weight`);

  const bos = asNumber(get("tokenizer.ggml.bos_token_id"), "tokenizer.ggml.bos_token_id");
  const eos = asNumber(get("tokenizer.ggml.eos_token_id"), "tokenizer.ggml.eos_token_id");

  return {
    arch, nLayer, nEmbd, nFF, nHead, nHeadKv, headDim, headDimV, nRot,
    ropeType: arch === "llama" ? "normal" : "neox",
    ropeFreqBase, ropeFreqScale, normEps, contextLength, nVocab, vocabSize: nVocab,
    ...(bos !== undefined ? { bosTokenId: bos } : {}),
    ...(eos !== undefined ? { eosTokenId: eos } : {}),
  };
}

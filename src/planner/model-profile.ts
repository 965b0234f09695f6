// What the planner needs to know about a model, from a GGUF file's tensor index or from a named shape:
// bytes and parameters of every layer, what the first stage (token embedding) and the last stage (final
// norm and output head) hold on top, the activation bytes that cross a stage boundary per token for each
// codec, and the KV-cache elements per token per layer.
//
// Stage contents follow the engine (src/engine/weights.ts): stage [start, end) loads blk.start..end-1;
// the first stage also token_embd; the last also output_norm and output (or token_embd again when the
// model ties its embeddings); every stage loads rope_freqs when present. A single stage holding the
// whole model holds a tied token_embd once.
import { getShape, type ModelShape } from "../engine/synth/shapes.ts";
import { rowBytes, typeTraits } from "../gguf/formats/index.ts";
import { GGMLType, ggmlTypeName, type GGUFValue, type TensorInfo } from "../gguf/types.ts";

/** Encodings of the activations sent between stages. */
export const CODECS = ["f32", "f16", "bf16", "int8"] as const;
export type Codec = (typeof CODECS)[number];

/** Bytes of a sampled token id sent from the last stage back to stage 0. */
export const TOKEN_ID_BYTES = 4;

/** Bytes one token's activation row (n_embd values) takes on the wire: int8 carries an f32 scale per row. */
export function activationBytesPerToken(nEmbd: number, codec: Codec): number {
  switch (codec) {
    case "f32": return 4 * nEmbd;
    case "f16":
    case "bf16": return 2 * nEmbd;
    case "int8": return nEmbd + 4;
  }
}

export function parseCodec(s: string): Codec {
  const c = s.toLowerCase();
  if (!(CODECS as readonly string[]).includes(c)) throw new Error(`codec must be one of ${CODECS.join(", ")}, got "${s}"`);
  return c as Codec;
}

/** KV-cache storage per element. The engine (src/engine/kv-cache.ts) stores f32 today, even for an "f16" cache. */
export type KVType = "f32" | "f16";
export function kvBytesPerElement(t: KVType): number {
  return t === "f32" ? 4 : 2;
}

export interface ModelProfile {
  name: string;
  /** Weight type of the matrices ("F16", "Q4_K", or "mixed" for a file with several). */
  weightType: string;
  nLayer: number;
  nEmbd: number;
  nVocab: number;
  /** Weight bytes of blk.N, N = 0 .. nLayer-1. */
  layerBytes: number[];
  /** Parameters of blk.N (2 FLOPs per parameter per token). */
  layerParams: number[];
  /** token_embd.weight, held by the first stage (a lookup: no time counted). */
  embdBytes: number;
  /** output_norm + output.weight (or token_embd again when tied), held by the last stage. */
  headBytes: number;
  /** Parameters of the output projection (n_vocab × n_embd): the last stage's extra work per logit row. */
  headParams: number;
  /** Bytes of the head that are the token_embd tensor itself (tied models): held once by a single stage. */
  sharedBytes: number;
  /** Tensors every stage loads (rope_freqs). */
  globalBytes: number;
  /** K and V elements per token per layer: n_head_kv × (head_dim_k + head_dim_v). */
  kvElementsPerTokenPerLayer: number;
}

/** Weight bytes a stage [start, end) holds (not counting KV). */
export function stageWeightBytes(m: ModelProfile, start: number, end: number): number {
  let b = m.globalBytes;
  for (let l = start; l < end; l++) b += m.layerBytes[l];
  const first = start === 0;
  const last = end === m.nLayer;
  if (first) b += m.embdBytes;
  if (last) b += m.headBytes;
  if (first && last) b -= m.sharedBytes;
  return b;
}

/** Weight bytes of the whole model held by one stage. */
export function totalWeightBytes(m: ModelProfile): number {
  return stageWeightBytes(m, 0, m.nLayer);
}

/** llama.cpp's quantize falls back to these when a row is not a multiple of 256 (llama-quant.cpp), as synth does. */
const K_FALLBACK: Partial<Record<number, number>> = {
  [GGMLType.Q4_K]: GGMLType.Q5_0,
  [GGMLType.Q5_K]: GGMLType.Q5_1,
  [GGMLType.Q6_K]: GGMLType.Q8_0,
};

function typeId(type: number | string): number {
  if (typeof type === "number") return type;
  const id = (GGMLType as Record<string, number>)[type.toUpperCase()];
  if (id === undefined) throw new Error(`unknown weight type "${type}" (e.g. F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K, Q4_0)`);
  return id;
}

/**
 * Profile of a named shape (src/engine/synth/shapes.ts) with every 2-D matrix in `type` (default F16) and
 * norms/biases in F32 — the tensors `llmesh synth` writes. Real quantized files mix types (a Q4_K_M file
 * keeps some matrices in Q6_K and is ~10% larger than all-Q4_K): pass the GGUF file for exact numbers.
 */
export function profileFromShape(shapeOrName: ModelShape | string, type: number | string = GGMLType.F16, nLayer?: number): ModelProfile {
  const s = typeof shapeOrName === "string" ? getShape(shapeOrName) : shapeOrName;
  const t = typeId(type);
  typeTraits(t);
  const L = nLayer ?? s.nLayer;
  const matBytes = (cols: number, rows: number): number => {
    const tt = cols % 256 !== 0 && K_FALLBACK[t] !== undefined ? K_FALLBACK[t]! : t;
    return rows * rowBytes(tt, cols);
  };
  const qDim = s.nHead * s.headDim;
  const kvDim = s.nHeadKv * s.headDim;
  let bytes = 4 * s.nEmbd; // attn_norm
  let params = s.nEmbd;
  const mats: Array<[number, number]> = [[s.nEmbd, qDim], [s.nEmbd, kvDim], [s.nEmbd, kvDim], [qDim, s.nEmbd], [s.nEmbd, s.nFf], [s.nEmbd, s.nFf], [s.nFf, s.nEmbd]];
  for (const [c, r] of mats) { bytes += matBytes(c, r); params += c * r; }
  if (s.arch === "qwen2") { bytes += 4 * (qDim + 2 * kvDim); params += qDim + 2 * kvDim; }
  if (s.arch === "qwen3") { bytes += 4 * 2 * s.headDim; params += 2 * s.headDim; }
  bytes += 4 * s.nEmbd; // ffn_norm
  params += s.nEmbd;
  const embdBytes = matBytes(s.nEmbd, s.nVocab);
  return {
    name: s.name,
    weightType: ggmlTypeName(t),
    nLayer: L,
    nEmbd: s.nEmbd,
    nVocab: s.nVocab,
    layerBytes: new Array<number>(L).fill(bytes),
    layerParams: new Array<number>(L).fill(params),
    embdBytes,
    headBytes: 4 * s.nEmbd + embdBytes, // output_norm + output (same size as token_embd, tied or not)
    headParams: s.nEmbd * s.nVocab,
    sharedBytes: s.tiedEmbeddings ? embdBytes : 0,
    globalBytes: s.llama3Rope && s.arch === "llama" ? 4 * (s.headDim / 2) : 0,
    kvElementsPerTokenPerLayer: 2 * kvDim,
  };
}

/** The parts of a GGUF file the profile reads (GGUFFile from src/gguf/reader.ts fits). */
export interface GGUFIndex {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  getValue(key: string): GGUFValue | undefined;
  readonly path?: string;
}

function num(v: GGUFValue | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const a = v as ArrayLike<number | bigint>;
    return a.length > 0 ? Number(a[0]) : undefined;
  }
  return undefined;
}

/**
 * Profile of a GGUF file from its tensor index and metadata (no tensor data is read). Works for any
 * architecture with llama.cpp's tensor names (blk.N.*, token_embd, output_norm, output).
 */
export function profileFromGGUF(f: GGUFIndex, name?: string): ModelProfile {
  const arch = f.getValue("general.architecture");
  const meta = (k: string): number | undefined => (typeof arch === "string" ? num(f.getValue(`${arch}.${k}`)) : undefined);
  let maxLayer = -1;
  for (const t of f.tensors.values()) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) maxLayer = Math.max(maxLayer, Number(m[1]));
  }
  const nLayer = meta("block_count") ?? maxLayer + 1;
  if (nLayer <= 0) throw new Error(`${f.path ?? "model"}: no transformer blocks (blk.N.*) found`);
  const layerBytes = new Array<number>(nLayer).fill(0);
  const layerParams = new Array<number>(nLayer).fill(0);
  const types = new Set<number>();
  let globalBytes = 0;
  for (const t of f.tensors.values()) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (t.dims.length >= 2) types.add(t.type);
    if (m) {
      const l = Number(m[1]);
      if (l >= nLayer) throw new Error(`${f.path ?? "model"}: tensor ${t.name} is past block_count ${nLayer}`);
      layerBytes[l] += t.nBytes;
      layerParams[l] += t.nElements;
    } else if (t.name === "rope_freqs.weight") {
      globalBytes += t.nBytes;
    }
  }
  const embd = f.tensors.get("token_embd.weight");
  if (!embd) throw new Error(`${f.path ?? "model"}: token_embd.weight is missing`);
  const output = f.tensors.get("output.weight");
  const norm = f.tensors.get("output_norm.weight");
  const nEmbd = meta("embedding_length") ?? embd.dims[0];
  const nVocab = embd.dims[1] ?? 0;
  const nHead = meta("attention.head_count") ?? 1;
  const k0 = f.tensors.get("blk.0.attn_k.weight");
  const v0 = f.tensors.get("blk.0.attn_v.weight");
  const nHeadKv = meta("attention.head_count_kv") ?? nHead;
  const headDim = meta("attention.key_length") ?? nEmbd / nHead;
  const headDimV = meta("attention.value_length") ?? headDim;
  const kDim = k0?.dims[1] ?? nHeadKv * headDim;
  const vDim = v0?.dims[1] ?? nHeadKv * headDimV;
  return {
    name: name ?? (typeof f.getValue("general.name") === "string" ? (f.getValue("general.name") as string) : (f.path ?? "model")),
    weightType: types.size === 1 ? ggmlTypeName([...types][0]) : "mixed",
    nLayer,
    nEmbd,
    nVocab,
    layerBytes,
    layerParams,
    embdBytes: embd.nBytes,
    headBytes: (norm?.nBytes ?? 0) + (output ?? embd).nBytes,
    headParams: (output ?? embd).nElements,
    sharedBytes: output ? 0 : embd.nBytes,
    globalBytes,
    kvElementsPerTokenPerLayer: kDim + vDim,
  };
}

/** A hand-made profile (tests, what-if questions): every layer alike; extras default to nothing. */
export function customProfile(p: {
  name?: string; nLayer: number; layerBytes: number; layerParams?: number; nEmbd?: number; nVocab?: number;
  embdBytes?: number; headBytes?: number; headParams?: number; tied?: boolean; kvElementsPerTokenPerLayer?: number;
}): ModelProfile {
  const nEmbd = p.nEmbd ?? 1024;
  return {
    name: p.name ?? "custom",
    weightType: "custom",
    nLayer: p.nLayer,
    nEmbd,
    nVocab: p.nVocab ?? 0,
    layerBytes: new Array<number>(p.nLayer).fill(p.layerBytes),
    layerParams: new Array<number>(p.nLayer).fill(p.layerParams ?? p.layerBytes / 2),
    embdBytes: p.embdBytes ?? 0,
    headBytes: p.headBytes ?? 0,
    headParams: p.headParams ?? 0,
    sharedBytes: p.tied ? (p.embdBytes ?? 0) : 0,
    globalBytes: 0,
    kvElementsPerTokenPerLayer: p.kvElementsPerTokenPerLayer ?? 0,
  };
}

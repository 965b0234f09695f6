// Random-weight GGUF models of real shapes (`llmesh synth`). No real model above a few MB can be fetched
// here, so speed, scale and conformance against llama.cpp are measured on these: same tensor names,
// shapes, metadata and quantization formats as a converted model, with a real vocabulary.
//
// Weights are scaled so that the model behaves like a trained one for comparison purposes: unit-scale
// activations through every block (std 1/sqrt(fan_in)), and output logits with a standard deviation of
// about `logitStd` (default 6), so next-token distributions are peaked rather than flat and an argmax
// comparison against llama.cpp is meaningful.
import { GGMLType, GGUFValueType, type GGUFMetadataEntry, type GGUFValue } from "../../gguf/types.ts";
import { writeGGUF, type TensorToWrite } from "../../gguf/writer.ts";
import { quantizeRowFast, rowBytes } from "../../gguf/formats/index.ts";
import type { Arch, ModelShape } from "./shapes.ts";

export interface SynthOptions {
  shape: ModelShape;
  /** Overrides the shape's architecture (e.g. a llama-3.2-1b shape as qwen2, with QKV biases). */
  arch?: Arch;
  /** ggml type for the 2-D weight matrices; norms, biases and rope factors stay F32. */
  type: number;
  /** `tokenizer.*` metadata of a real vocabulary; the vocabulary size comes from it. */
  vocab: Map<string, GGUFMetadataEntry>;
  seed?: number;
  logitStd?: number;
  /** Scale of each block's contribution to the residual stream (attn_output, ffn_down); see top comment. */
  branchScale?: number;
  /** Override the number of layers (e.g. a 2-layer slice of a big shape for quick tests). */
  nLayer?: number;
}

/** llama.cpp's quantize falls back to these when a row length is not a multiple of 256 (llama-quant.cpp). */
const K_FALLBACK: Partial<Record<number, number>> = {
  [GGMLType.Q4_K]: GGMLType.Q5_0,
  [GGMLType.Q5_K]: GGMLType.Q5_1,
  [GGMLType.Q6_K]: GGMLType.Q8_0,
};

/** general.file_type values (llama.h enum llama_ftype) for the types synth writes. */
const FILE_TYPE: Partial<Record<number, number>> = {
  [GGMLType.F32]: 0, [GGMLType.F16]: 1, [GGMLType.Q4_0]: 2, [GGMLType.Q4_1]: 3, [GGMLType.Q8_0]: 7,
  [GGMLType.Q5_0]: 8, [GGMLType.Q5_1]: 9, [GGMLType.Q4_K]: 15, [GGMLType.Q5_K]: 17, [GGMLType.Q6_K]: 18, [GGMLType.BF16]: 32,
};

/** splitmix32-seeded xorshift128+: uniform floats in [-1, 1), reproducible per (seed, tensor name). */
function uniformSource(seed: number, name: string): () => number {
  let h = seed >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1) >>> 0;
  const mix = () => {
    h = (h + 0x9e3779b9) >>> 0;
    let z = h;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = mix() | 1, b = mix(), c = mix(), d = mix();
  return () => {
    // xoshiro128+ (Blackman & Vigna): the top 24 bits make a float in [-1, 1).
    const r = (a + d) >>> 0;
    const t = b << 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = (d << 11) | (d >>> 21);
    return (r >>> 8) / 8388608 - 1;
  };
}

const SQRT3 = Math.sqrt(3);

interface Spec { name: string; dims: number[]; type: number; fill: (rand: () => number, out: Float32Array) => void }

function uniform(std: number) {
  return (rand: () => number, out: Float32Array) => {
    const a = std * SQRT3; // uniform on [-a, a) has standard deviation a/sqrt(3)
    for (let i = 0; i < out.length; i++) out[i] = a * rand();
  };
}
const nearOne = (rand: () => number, out: Float32Array) => {
  for (let i = 0; i < out.length; i++) out[i] = 1 + 0.1 * rand();
};

/** Llama 3 rope scaling factors, as llama.cpp's HF converter writes them into `rope_freqs.weight`. */
export function llama3RopeFactors(headDim: number, base: number, s: NonNullable<ModelShape["llama3Rope"]>): Float32Array {
  const out = new Float32Array(headDim / 2);
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / base ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

function tensorSpecs(o: SynthOptions, arch: Arch, nVocab: number, nLayer: number): Spec[] {
  const s = o.shape;
  const wt = (cols: number) => (cols % 256 !== 0 && K_FALLBACK[o.type] !== undefined ? K_FALLBACK[o.type]! : o.type);
  const mat = (name: string, cols: number, rows: number, std = 1 / Math.sqrt(cols)): Spec => ({ name, dims: [cols, rows], type: wt(cols), fill: uniform(std) });
  const vec = (name: string, n: number, fill: Spec["fill"]): Spec => ({ name, dims: [n], type: GGMLType.F32, fill });
  const qDim = s.nHead * s.headDim;
  const kvDim = s.nHeadKv * s.headDim;
  const logitStd = o.logitStd ?? 6;
  const branch = o.branchScale ?? 1;
  const specs: Spec[] = [mat("token_embd.weight", s.nEmbd, nVocab, logitStd / Math.sqrt(s.nEmbd))];
  if (s.llama3Rope && arch === "llama") {
    const f = llama3RopeFactors(s.headDim, s.ropeFreqBase, s.llama3Rope);
    specs.push({ name: "rope_freqs.weight", dims: [s.headDim / 2], type: GGMLType.F32, fill: (_r, out) => out.set(f) });
  }
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    specs.push(vec(p + "attn_norm.weight", s.nEmbd, nearOne));
    specs.push(mat(p + "attn_q.weight", s.nEmbd, qDim), mat(p + "attn_k.weight", s.nEmbd, kvDim), mat(p + "attn_v.weight", s.nEmbd, kvDim));
    if (arch === "qwen2") {
      specs.push(vec(p + "attn_q.bias", qDim, uniform(0.1)), vec(p + "attn_k.bias", kvDim, uniform(0.1)), vec(p + "attn_v.bias", kvDim, uniform(0.1)));
    }
    if (arch === "qwen3") specs.push(vec(p + "attn_q_norm.weight", s.headDim, nearOne), vec(p + "attn_k_norm.weight", s.headDim, nearOne));
    specs.push(mat(p + "attn_output.weight", qDim, s.nEmbd, branch / Math.sqrt(qDim)));
    specs.push(vec(p + "ffn_norm.weight", s.nEmbd, nearOne));
    specs.push(mat(p + "ffn_gate.weight", s.nEmbd, s.nFf), mat(p + "ffn_up.weight", s.nEmbd, s.nFf), mat(p + "ffn_down.weight", s.nFf, s.nEmbd, branch / Math.sqrt(s.nFf)));
  }
  specs.push(vec("output_norm.weight", s.nEmbd, nearOne));
  if (!s.tiedEmbeddings) specs.push(mat("output.weight", s.nEmbd, nVocab, logitStd / Math.sqrt(s.nEmbd)));
  return specs;
}

/** Fills and quantizes a tensor a block of rows at a time, so peak memory is its quantized size. */
function materialize(spec: Spec, seed: number): Uint8Array {
  const cols = spec.dims[0];
  const rows = spec.dims.slice(1).reduce((a, b) => a * b, 1);
  const rb = rowBytes(spec.type, cols);
  const out = new Uint8Array(rb * rows);
  const rand = uniformSource(seed, spec.name);
  const chunkRows = Math.max(1, Math.floor((1 << 20) / cols));
  const buf = new Float32Array(chunkRows * cols);
  for (let r0 = 0; r0 < rows; r0 += chunkRows) {
    const n = Math.min(chunkRows, rows - r0);
    const f = buf.subarray(0, n * cols);
    spec.fill(rand, f);
    for (let r = 0; r < n; r++) quantizeRowFast(spec.type, f.subarray(r * cols, (r + 1) * cols), out.subarray((r0 + r) * rb, (r0 + r + 1) * rb), cols);
  }
  return out;
}

function u32(value: number): GGUFMetadataEntry {
  return { type: GGUFValueType.UINT32, value };
}

/** Builds the metadata and lazily-filled tensors of a synthetic model. */
export function synthModel(o: SynthOptions): { metadata: Array<[string, GGUFMetadataEntry]>; tensors: TensorToWrite[] } {
  const s = o.shape;
  const arch = o.arch ?? s.arch;
  const seed = o.seed ?? 1;
  const tokens = o.vocab.get("tokenizer.ggml.tokens")?.value as GGUFValue[] | undefined;
  if (!tokens) throw new Error("the vocabulary has no tokenizer.ggml.tokens");
  const nVocab = tokens.length;
  const nLayer = o.nLayer ?? s.nLayer;
  const fileType = FILE_TYPE[o.type];
  const metadata: Array<[string, GGUFMetadataEntry]> = [
    ["general.architecture", { type: GGUFValueType.STRING, value: arch }],
    ["general.name", { type: GGUFValueType.STRING, value: `synthetic ${s.name} (random weights)` }],
    ...(fileType === undefined ? [] : ([["general.file_type", u32(fileType)]] as Array<[string, GGUFMetadataEntry]>)),
    [`${arch}.block_count`, u32(nLayer)],
    [`${arch}.context_length`, u32(s.contextLength)],
    [`${arch}.embedding_length`, u32(s.nEmbd)],
    [`${arch}.feed_forward_length`, u32(s.nFf)],
    [`${arch}.attention.head_count`, u32(s.nHead)],
    [`${arch}.attention.head_count_kv`, u32(s.nHeadKv)],
    [`${arch}.attention.key_length`, u32(s.headDim)],
    [`${arch}.attention.value_length`, u32(s.headDim)],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: GGUFValueType.FLOAT32, value: s.rmsEps }],
    [`${arch}.rope.freq_base`, { type: GGUFValueType.FLOAT32, value: s.ropeFreqBase }],
    [`${arch}.rope.dimension_count`, u32(s.headDim)],
    [`${arch}.vocab_size`, u32(nVocab)],
    ...[...o.vocab].filter(([k]) => k.startsWith("tokenizer.")),
  ];
  const tensors = tensorSpecs(o, arch, nVocab, nLayer).map((spec) => ({
    name: spec.name,
    dims: spec.dims,
    type: spec.type,
    data: () => materialize(spec, seed),
  }));
  return { metadata, tensors };
}

/** Writes a synthetic model to `path`. */
export function writeSynthModel(path: string, o: SynthOptions, onTensor?: (i: number, total: number) => void): void {
  writeGGUF(path, synthModel(o), onTensor);
}

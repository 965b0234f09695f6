// Real model shapes by name, for `llmesh synth` (random weights of a real shape) and for the planner
// (`llmesh plan --model qwen2.5-7b` sizes a cluster from the shape alone).
// Pinned reference: each model's published config.json on Hugging Face (hidden_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads, intermediate_size, vocab_size, rope_theta, tie_word_embeddings).

export type Arch = "llama" | "qwen2" | "qwen3";

export interface ModelShape {
  name: string;
  arch: Arch;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  /** Per-head dimension; n_embd / n_head unless the model says otherwise (qwen3). */
  headDim: number;
  nFf: number;
  nVocab: number;
  contextLength: number;
  ropeFreqBase: number;
  rmsEps: number;
  tiedEmbeddings: boolean;
  /** Llama 3.x rope scaling (written as a `rope_freqs` tensor like llama.cpp's converter does). */
  llama3Rope?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number };
}

const shapes: ModelShape[] = [
  { name: "smollm2-135m", arch: "llama", nLayer: 30, nEmbd: 576, nHead: 9, nHeadKv: 3, headDim: 64, nFf: 1536, nVocab: 49152, contextLength: 8192, ropeFreqBase: 100000, rmsEps: 1e-5, tiedEmbeddings: true },
  { name: "smollm2-360m", arch: "llama", nLayer: 32, nEmbd: 960, nHead: 15, nHeadKv: 5, headDim: 64, nFf: 2560, nVocab: 49152, contextLength: 8192, ropeFreqBase: 100000, rmsEps: 1e-5, tiedEmbeddings: true },
  { name: "smollm2-1.7b", arch: "llama", nLayer: 24, nEmbd: 2048, nHead: 32, nHeadKv: 32, headDim: 64, nFf: 8192, nVocab: 49152, contextLength: 8192, ropeFreqBase: 130000, rmsEps: 1e-5, tiedEmbeddings: true },
  { name: "tinyllama-1.1b", arch: "llama", nLayer: 22, nEmbd: 2048, nHead: 32, nHeadKv: 4, headDim: 64, nFf: 5632, nVocab: 32000, contextLength: 2048, ropeFreqBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false },
  { name: "llama-3.2-1b", arch: "llama", nLayer: 16, nEmbd: 2048, nHead: 32, nHeadKv: 8, headDim: 64, nFf: 8192, nVocab: 128256, contextLength: 131072, ropeFreqBase: 500000, rmsEps: 1e-5, tiedEmbeddings: true, llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } },
  { name: "llama-3.2-3b", arch: "llama", nLayer: 28, nEmbd: 3072, nHead: 24, nHeadKv: 8, headDim: 128, nFf: 8192, nVocab: 128256, contextLength: 131072, ropeFreqBase: 500000, rmsEps: 1e-5, tiedEmbeddings: true, llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } },
  { name: "llama-3.1-8b", arch: "llama", nLayer: 32, nEmbd: 4096, nHead: 32, nHeadKv: 8, headDim: 128, nFf: 14336, nVocab: 128256, contextLength: 131072, ropeFreqBase: 500000, rmsEps: 1e-5, tiedEmbeddings: false, llama3Rope: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } },
  { name: "llama-3.1-70b", arch: "llama", nLayer: 80, nEmbd: 8192, nHead: 64, nHeadKv: 8, headDim: 128, nFf: 28672, nVocab: 128256, contextLength: 131072, ropeFreqBase: 500000, rmsEps: 1e-5, tiedEmbeddings: false, llama3Rope: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } },
  { name: "mistral-7b", arch: "llama", nLayer: 32, nEmbd: 4096, nHead: 32, nHeadKv: 8, headDim: 128, nFf: 14336, nVocab: 32768, contextLength: 32768, ropeFreqBase: 1000000, rmsEps: 1e-5, tiedEmbeddings: false },
  { name: "qwen2.5-0.5b", arch: "qwen2", nLayer: 24, nEmbd: 896, nHead: 14, nHeadKv: 2, headDim: 64, nFf: 4864, nVocab: 151936, contextLength: 32768, ropeFreqBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true },
  { name: "qwen2.5-1.5b", arch: "qwen2", nLayer: 28, nEmbd: 1536, nHead: 12, nHeadKv: 2, headDim: 128, nFf: 8960, nVocab: 151936, contextLength: 32768, ropeFreqBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true },
  { name: "qwen2.5-7b", arch: "qwen2", nLayer: 28, nEmbd: 3584, nHead: 28, nHeadKv: 4, headDim: 128, nFf: 18944, nVocab: 152064, contextLength: 32768, ropeFreqBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: false },
  { name: "qwen2.5-14b", arch: "qwen2", nLayer: 48, nEmbd: 5120, nHead: 40, nHeadKv: 8, headDim: 128, nFf: 13824, nVocab: 152064, contextLength: 32768, ropeFreqBase: 1000000, rmsEps: 1e-5, tiedEmbeddings: false },
  { name: "qwen2.5-32b", arch: "qwen2", nLayer: 64, nEmbd: 5120, nHead: 40, nHeadKv: 8, headDim: 128, nFf: 27648, nVocab: 152064, contextLength: 32768, ropeFreqBase: 1000000, rmsEps: 1e-5, tiedEmbeddings: false },
  { name: "qwen2.5-72b", arch: "qwen2", nLayer: 80, nEmbd: 8192, nHead: 64, nHeadKv: 8, headDim: 128, nFf: 29568, nVocab: 152064, contextLength: 32768, ropeFreqBase: 1000000, rmsEps: 1e-5, tiedEmbeddings: false },
  { name: "qwen3-0.6b", arch: "qwen3", nLayer: 28, nEmbd: 1024, nHead: 16, nHeadKv: 8, headDim: 128, nFf: 3072, nVocab: 151936, contextLength: 40960, ropeFreqBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true },
  { name: "qwen3-1.7b", arch: "qwen3", nLayer: 28, nEmbd: 2048, nHead: 16, nHeadKv: 8, headDim: 128, nFf: 6144, nVocab: 151936, contextLength: 40960, ropeFreqBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true },
  { name: "qwen3-8b", arch: "qwen3", nLayer: 36, nEmbd: 4096, nHead: 32, nHeadKv: 8, headDim: 128, nFf: 12288, nVocab: 151936, contextLength: 40960, ropeFreqBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: false },
  // Tiny shapes of each architecture for conformance tests: real structure (GQA, biases, q/k norms,
  // llama3 rope scaling), seconds to write and run. The vocabulary comes from --vocab.
  { name: "tiny-llama", arch: "llama", nLayer: 4, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nFf: 512, nVocab: 32000, contextLength: 2048, ropeFreqBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false },
  { name: "tiny-llama3", arch: "llama", nLayer: 3, nEmbd: 256, nHead: 4, nHeadKv: 1, headDim: 64, nFf: 512, nVocab: 32000, contextLength: 4096, ropeFreqBase: 500000, rmsEps: 1e-5, tiedEmbeddings: true, llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 } },
  { name: "tiny-qwen2", arch: "qwen2", nLayer: 3, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nFf: 512, nVocab: 32000, contextLength: 4096, ropeFreqBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true },
  { name: "tiny-qwen3", arch: "qwen3", nLayer: 3, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 128, nFf: 512, nVocab: 32000, contextLength: 4096, ropeFreqBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: false },
];

export const SHAPES: ReadonlyMap<string, ModelShape> = new Map(shapes.map((s) => [s.name, s]));

export function getShape(name: string): ModelShape {
  const s = SHAPES.get(name.toLowerCase());
  if (!s) throw new Error(`unknown model shape "${name}"; known shapes: ${[...SHAPES.keys()].join(", ")}`);
  return s;
}

// Engine: the public API of one pipeline stage (a half-open layer range of a model).
//
//   const engine = Engine.load(openGGUF(path), { range: { start: 0, end: 12 } });
//   const seq = engine.createSequence();
//   const [hidden] = engine.forward([{ seq, tokens: [1, 450, 4996] }]);   // first stage: tokens in
//   // ...the next stage: engine2.forward([{ seq: seq2, hidden }]) → logits on the last stage
//
// Every sequence has its own KV cache (for this stage's layers). One forward() call takes chunks of
// several sequences at once (continuous batching); a chunk may hold many tokens (prefill).
import type { GGUFFile } from "../gguf/reader.ts";
import { Kernels, kernelSupports } from "../kernels/index.ts";
import { FastForward } from "./fast-forward.ts";
import { KVCache, type KVCacheType } from "./kv-cache.ts";
import { readModelConfig, type ModelConfig } from "./model-config.ts";
import { ReferenceForward } from "./reference-forward.ts";
import type { ForwardImpl, LogitsRequest, Numerics, Stage, StageEntry } from "./stage.ts";
import { loadStageWeights, loadStageWeightsAsync, stageMatrixBytes, validateRange, type LayerRange, type MatrixPacker, type StageWeights } from "./weights.ts";

export type { LayerRange } from "./weights.ts";
export type { LogitsRequest } from "./stage.ts";
export type { KVCacheType } from "./kv-cache.ts";

export interface EngineOptions {
  /** Layers to run, half-open; default the whole model. */
  range?: LayerRange;
  /** "fast" (default): batched kernels; "reference": the readable token-by-token implementation. */
  path?: "reference" | "fast";
  /** Maximum positions per sequence; default the model's context_length. */
  maxContext?: number;
  /** KV cache precision; default "f16" like llama.cpp (values rounded to fp16, stored as f32). */
  kvCacheType?: KVCacheType;
  /**
   * "vec-dot" (default): round matmul activations like ggml-cpu does for the weight type (Q8_0/Q8_K/F16…);
   * "f32": use exact f32 activations.
   */
  matmulInput?: Numerics["matmulInput"];
  /**
   * Fast path matmul kernels: "wasm" (default) — WebAssembly SIMD on worker threads, weights packed
   * into kernel memory at load; "typescript" — the plain TypeScript kernels of ops.ts.
   * (The WASM kernels implement the "vec-dot" numerics; with matmulInput "f32" the TypeScript ones run.)
   */
  kernels?: "wasm" | "typescript";
  /** Threads per matmul with the WASM kernels (main thread included); default the number of cores. */
  threads?: number;
}

/** One sequence's chunk in a forward() batch. */
export interface BatchItem {
  seq: number;
  /** Token ids (first stage). */
  tokens?: Int32Array | readonly number[];
  /** Hidden states (n_tokens, n_embd) from the previous stage (other stages). */
  hidden?: Float32Array;
  /** Last stage only: which positions get logits; default "last". */
  logits?: LogitsRequest;
}

export class Engine {
  readonly config: ModelConfig;
  readonly range: LayerRange;
  readonly isFirst: boolean;
  readonly isLast: boolean;
  readonly maxContext: number;
  readonly kvCacheType: KVCacheType;
  private readonly impl: ForwardImpl;
  private readonly kernels: Kernels | undefined;
  private disposed = false;
  private readonly sequences = new Map<number, KVCache>();
  private nextSeq = 1;

  private constructor(config: ModelConfig, stage: Stage, impl: ForwardImpl, maxContext: number, kvCacheType: KVCacheType) {
    this.config = config;
    this.range = { ...stage.weights.range };
    this.isFirst = stage.isFirst;
    this.isLast = stage.isLast;
    this.impl = impl;
    this.kernels = stage.kernels;
    this.maxContext = maxContext;
    this.kvCacheType = kvCacheType;
  }

  /** Reads the config and this stage's weights (only those) from an open GGUF file. */
  static load(gguf: GGUFFile, opts: EngineOptions = {}): Engine {
    const p = Engine.prepare(gguf, opts);
    try {
      return Engine.finish(p, loadStageWeights(gguf, p.config, p.range, p.pack), opts);
    } catch (err) {
      p.kernels?.dispose();
      throw err;
    }
  }

  /**
   * Engine.load that lets the event loop run after each matrix (a mesh worker keeps answering
   * heartbeats while it loads); onProgress(bytes, total) follows the matrices' bytes.
   */
  static async loadAsync(gguf: GGUFFile, opts: EngineOptions = {}, onProgress?: (bytes: number, total: number) => void): Promise<Engine> {
    const p = Engine.prepare(gguf, opts);
    try {
      const total = stageMatrixBytes(gguf, p.config, p.range);
      const weights = await loadStageWeightsAsync(gguf, p.config, p.range, p.pack, onProgress && ((b) => onProgress(b, total)));
      return Engine.finish(p, weights, opts);
    } catch (err) {
      p.kernels?.dispose();
      throw err;
    }
  }

  private static prepare(gguf: GGUFFile, opts: EngineOptions): { config: ModelConfig; range: LayerRange; kernels: Kernels | undefined; pack: MatrixPacker | undefined } {
    const config = readModelConfig((k) => gguf.getValue(k), gguf.tensors);
    const range = opts.range ?? { start: 0, end: config.nLayer };
    validateRange(range, config.nLayer);
    const maxContext = opts.maxContext ?? config.contextLength;
    if (!Number.isInteger(maxContext) || maxContext <= 0) throw new RangeError(`maxContext must be a positive integer, got ${maxContext}`);
    const fast = (opts.path ?? "fast") === "fast";
    const kernels = fast && (opts.kernels ?? "wasm") === "wasm" && (opts.matmulInput ?? "vec-dot") === "vec-dot"
      ? new Kernels(opts.threads !== undefined ? { threads: opts.threads } : {})
      : undefined;
    const pack: MatrixPacker | undefined = kernels && ((m, read) => (kernelSupports(m.type) ? kernels.packRows(m.type, m.nCols, m.nRows, m.rowBytes, read) : undefined));
    return { config, range, kernels, pack };
  }

  private static finish(p: { config: ModelConfig; range: LayerRange; kernels: Kernels | undefined }, weights: StageWeights, opts: EngineOptions): Engine {
    const { config, range, kernels } = p;
    const numerics: Numerics = { matmulInput: opts.matmulInput ?? "vec-dot" };
    const stage: Stage = {
      config,
      weights,
      rope: {
        nRot: config.nRot, ropeType: config.ropeType, ropeFreqBase: config.ropeFreqBase, ropeFreqScale: config.ropeFreqScale,
        ...(weights.ropeFreqs ? { freqFactors: weights.ropeFreqs } : {}),
      },
      isFirst: range.start === 0,
      isLast: range.end === config.nLayer,
      numerics,
      ...(kernels ? { kernels } : {}),
    };
    const impl = (opts.path ?? "fast") === "fast" ? new FastForward(stage) : new ReferenceForward(stage);
    return new Engine(config, stage, impl, opts.maxContext ?? config.contextLength, opts.kvCacheType ?? "f16");
  }

  /**
   * Frees every sequence and gives the kernel memory (weights, KV caches) back for the next engine
   * of this process to reuse. The engine must not be used afterwards.
   */
  dispose(): void {
    if (this.disposed) return;
    for (const id of [...this.sequences.keys()]) this.freeSequence(id);
    this.disposed = true;
    this.kernels?.dispose();
  }

  /** Bytes of the kernel memory this engine's weights and KV caches live in (0 without the WASM kernels). */
  get kernelBytes(): number {
    return this.kernels?.mem.capacity ?? 0;
  }

  /** Creates an empty sequence (its KV cache grows on demand up to maxContext) and returns its id. */
  createSequence(): number {
    if (this.disposed) throw new Error("engine: used after dispose()");
    const id = this.nextSeq++;
    const c = this.config;
    const nLayers = this.range.end - this.range.start;
    this.sequences.set(id, new KVCache(nLayers, c.nHeadKv * c.headDim, c.nHeadKv * c.headDimV, this.maxContext, this.kvCacheType));
    return id;
  }

  freeSequence(id: number): void {
    this.kv(id).free();
    this.sequences.delete(id);
  }

  /** Number of positions the sequence holds. */
  sequenceLength(id: number): number {
    return this.kv(id).length;
  }

  /** Drops the sequence's positions >= newLength (e.g. rejected speculative tokens). */
  truncate(id: number, newLength: number): void {
    this.kv(id).truncate(newLength);
  }

  /** Ids of live sequences. */
  get sequenceIds(): number[] {
    return [...this.sequences.keys()];
  }

  /**
   * Runs one step over several sequences. Each item appends its tokens (or hidden states) to its
   * sequence. Returns per item: hidden states (n_tokens, n_embd) on a non-last stage, else logits
   * ("last" → (1, n_vocab), "all" → (n_tokens, n_vocab), "none" → empty).
   */
  forward(batch: readonly BatchItem[]): Float32Array[] {
    if (this.disposed) throw new Error("engine: used after dispose()");
    const c = this.config;
    const seen = new Set<number>();
    const entries: StageEntry[] = batch.map((item, i) => {
      const kv = this.kv(item.seq);
      if (seen.has(item.seq)) throw new Error(`batch item ${i}: sequence ${item.seq} appears twice in one batch`);
      seen.add(item.seq);
      let nTokens: number;
      let tokens: Int32Array | undefined;
      let hidden: Float32Array | undefined;
      if (this.isFirst) {
        if (!item.tokens || item.hidden) throw new Error(`batch item ${i}: the first stage takes tokens (and no hidden states)`);
        tokens = Int32Array.from(item.tokens);
        nTokens = tokens.length;
        for (const t of tokens) {
          if (!(t >= 0 && t < c.nVocab)) throw new RangeError(`batch item ${i}: token id ${t} outside the vocabulary [0, ${c.nVocab})`);
        }
      } else {
        if (!item.hidden || item.tokens) throw new Error(`batch item ${i}: stage [${this.range.start}, ${this.range.end}) takes hidden states (and no tokens)`);
        if (item.hidden.length % c.nEmbd !== 0) throw new Error(`batch item ${i}: hidden length ${item.hidden.length} is not a multiple of n_embd ${c.nEmbd}`);
        hidden = item.hidden;
        nTokens = hidden.length / c.nEmbd;
      }
      if (nTokens === 0) throw new Error(`batch item ${i}: no tokens`);
      kv.reserve(kv.length + nTokens);
      return { kv, pos0: kv.length, nTokens, ...(tokens ? { tokens } : {}), ...(hidden ? { hidden } : {}), logits: item.logits ?? "last" };
    });
    const out = this.impl.run(entries);
    for (const e of entries) e.kv.length = e.pos0 + e.nTokens;
    return out;
  }

  private kv(id: number): KVCache {
    const kv = this.sequences.get(id);
    if (!kv) throw new Error(`unknown sequence ${id}`);
    return kv;
  }
}

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
import { planParts } from "./memory-parts.ts";
import { FastForward } from "./fast-forward.ts";
import { KVCache, type KVCacheType } from "./kv-cache.ts";
import { readModelConfig, type ModelConfig } from "./model-config.ts";
import { ReferenceForward } from "./reference-forward.ts";
import type { ForwardImpl, LogitsRequest, Numerics, Stage, StageEntry } from "./stage.ts";
import { loadStageWeights, loadStageWeightsAsync, stageMatrixBytes, validateRange, type LayerRange, type LoadOptions, type MatrixPacker, type StageWeights } from "./weights.ts";

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
  /**
   * Weight bytes per kernel memory (a wasm32 memory holds 4 GiB): layers past it go to another memory
   * (memory-parts.ts); default 3 GiB.
   */
  partWeightBytes?: number;
}

/** Packs matrices into `kernels`' memory straight from the file (types the kernels take). */
function packer(kernels: Kernels | undefined): MatrixPacker | undefined {
  return kernels && ((m, read) => (kernelSupports(m.type) ? kernels.packRows(m.type, m.nCols, m.nRows, m.rowBytes, read) : undefined));
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

/** One kernel memory's share of the engine's layers (see memory-parts.ts). */
interface Part {
  range: LayerRange;
  impl: ForwardImpl;
  kernels: Kernels | undefined;
  weights: StageWeights;
}

interface Prepared {
  config: ModelConfig;
  range: LayerRange;
  /** The layer ranges of the parts, in order. */
  ranges: LayerRange[];
  /** Their kernels (one memory each), or undefined without the WASM kernels. */
  kernels: Array<Kernels | undefined>;
  /** The first part takes token_embd from the last (tied embeddings). */
  borrowsEmbd: boolean;
  maxContext: number;
}

export class Engine {
  readonly config: ModelConfig;
  readonly range: LayerRange;
  readonly isFirst: boolean;
  readonly isLast: boolean;
  readonly maxContext: number;
  readonly kvCacheType: KVCacheType;
  private readonly parts: Part[];
  private disposed = false;
  /** Per sequence, one KV cache per part (the part's layers, in the part's kernel memory). */
  private readonly sequences = new Map<number, KVCache[]>();
  private nextSeq = 1;

  private constructor(config: ModelConfig, range: LayerRange, parts: Part[], maxContext: number, kvCacheType: KVCacheType) {
    this.config = config;
    this.range = { ...range };
    this.isFirst = range.start === 0;
    this.isLast = range.end === config.nLayer;
    this.parts = parts;
    this.maxContext = maxContext;
    this.kvCacheType = kvCacheType;
  }

  /** Reads the config and this stage's weights (only those) from an open GGUF file. */
  static load(gguf: GGUFFile, opts: EngineOptions = {}): Engine {
    const p = Engine.prepare(gguf, opts);
    try {
      const weights: StageWeights[] = [];
      // The last part first: a first part borrows its tied output matrix for the embedding lookups.
      for (let i = p.ranges.length - 1; i >= 0; i--) weights[i] = loadStageWeights(gguf, p.config, p.ranges[i], packer(p.kernels[i]), Engine.loadOptions(p, i, weights));
      return Engine.finish(p, weights, opts);
    } catch (err) {
      for (const k of p.kernels) k?.dispose();
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
      const weights: StageWeights[] = [];
      const bytes = p.ranges.map((r, i) => stageMatrixBytes(gguf, p.config, r, i === 0 && p.borrowsEmbd));
      const total = bytes.reduce((a, b) => a + b, 0);
      let before = 0;
      for (let i = p.ranges.length - 1; i >= 0; i--) {
        weights[i] = await loadStageWeightsAsync(gguf, p.config, p.ranges[i], packer(p.kernels[i]), Engine.loadOptions(p, i, weights), onProgress && ((b) => onProgress(before + b, total)));
        before += bytes[i];
      }
      return Engine.finish(p, weights, opts);
    } catch (err) {
      for (const k of p.kernels) k?.dispose();
      throw err;
    }
  }

  /** Part i's load options: the first of several parts may borrow the last part's tied output matrix. */
  private static loadOptions(p: Prepared, i: number, loaded: StageWeights[]): LoadOptions {
    return i === 0 && p.borrowsEmbd ? { tokEmbd: loaded[p.ranges.length - 1].output! } : {};
  }

  private static prepare(gguf: GGUFFile, opts: EngineOptions): Prepared {
    const config = readModelConfig((k) => gguf.getValue(k), gguf.tensors);
    const range = opts.range ?? { start: 0, end: config.nLayer };
    validateRange(range, config.nLayer);
    const maxContext = opts.maxContext ?? config.contextLength;
    if (!Number.isInteger(maxContext) || maxContext <= 0) throw new RangeError(`maxContext must be a positive integer, got ${maxContext}`);
    const fast = (opts.path ?? "fast") === "fast";
    const wasm = fast && (opts.kernels ?? "wasm") === "wasm" && (opts.matmulInput ?? "vec-dot") === "vec-dot";
    // Without the WASM kernels the weights live in JS memory: one part.
    const ranges = wasm ? planParts(gguf, config, range, opts.partWeightBytes) : [range];
    const kernels = ranges.map(() => (wasm ? new Kernels(opts.threads !== undefined ? { threads: opts.threads } : {}) : undefined));
    // Tied embeddings over several parts: the last part's output matrix is token_embd, which the first
    // part's embedding lookups then use too (lookups read any memory), instead of a second copy.
    const borrowsEmbd = ranges.length > 1 && range.start === 0 && range.end === config.nLayer && !gguf.tensors.has("output.weight");
    return { config, range, ranges, kernels, borrowsEmbd, maxContext };
  }

  private static finish(p: Prepared, weights: StageWeights[], opts: EngineOptions): Engine {
    const { config } = p;
    const numerics: Numerics = { matmulInput: opts.matmulInput ?? "vec-dot" };
    const parts = p.ranges.map((range, i): Part => {
      const w = weights[i];
      const kernels = p.kernels[i];
      const stage: Stage = {
        config,
        weights: w,
        rope: {
          nRot: config.nRot, ropeType: config.ropeType, ropeFreqBase: config.ropeFreqBase, ropeFreqScale: config.ropeFreqScale,
          ...(w.ropeFreqs ? { freqFactors: w.ropeFreqs } : {}),
        },
        isFirst: range.start === 0,
        isLast: range.end === config.nLayer,
        numerics,
        ...(kernels ? { kernels } : {}),
      };
      const impl = (opts.path ?? "fast") === "fast" ? new FastForward(stage) : new ReferenceForward(stage);
      return { range, impl, kernels, weights: w };
    });
    return new Engine(config, p.range, parts, p.maxContext, opts.kvCacheType ?? "f16");
  }

  /** The layer ranges held by separate kernel memories (one unless the weights pass a memory's budget). */
  get partRanges(): LayerRange[] {
    return this.parts.map((x) => ({ ...x.range }));
  }

  /** Bytes allocated in each part's kernel memory (weights, then KV caches and scratch as they come). */
  get partUsedBytes(): number[] {
    return this.parts.map((x) => x.kernels?.mem.used ?? 0);
  }

  /**
   * Frees every sequence and gives the kernel memory (weights, KV caches) back for the next engine
   * of this process to reuse. The engine must not be used afterwards.
   */
  dispose(): void {
    if (this.disposed) return;
    for (const id of [...this.sequences.keys()]) this.freeSequence(id);
    this.disposed = true;
    for (const p of this.parts) p.kernels?.dispose();
  }

  /** Bytes of the kernel memory this engine's weights and KV caches live in (0 without the WASM kernels). */
  get kernelBytes(): number {
    return this.parts.reduce((n, p) => n + (p.kernels?.mem.capacity ?? 0), 0);
  }

  /** Creates an empty sequence (its KV cache grows on demand up to maxContext) and returns its id. */
  createSequence(): number {
    if (this.disposed) throw new Error("engine: used after dispose()");
    const id = this.nextSeq++;
    const c = this.config;
    this.sequences.set(id, this.parts.map((p) => new KVCache(p.range.end - p.range.start, c.nHeadKv * c.headDim, c.nHeadKv * c.headDimV, this.maxContext, this.kvCacheType, 64, c.nHeadKv)));
    return id;
  }

  freeSequence(id: number): void {
    for (const kv of this.kv(id)) kv.free();
    this.sequences.delete(id);
  }

  /** Number of positions the sequence holds. */
  sequenceLength(id: number): number {
    return this.kv(id)[0].length;
  }

  /** Drops the sequence's positions >= newLength (e.g. rejected speculative tokens). */
  truncate(id: number, newLength: number): void {
    for (const kv of this.kv(id)) kv.truncate(newLength);
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
      const kv = this.kv(item.seq)[0];
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
    // Part after part: the hidden states of one are the input of the next.
    let out = this.parts[0].impl.run(entries);
    for (let p = 1; p < this.parts.length; p++) {
      const next: StageEntry[] = entries.map((e, i) => {
        const kv = this.kv(batch[i].seq)[p];
        kv.reserve(e.pos0 + e.nTokens);
        return { kv, pos0: e.pos0, nTokens: e.nTokens, hidden: out[i], logits: e.logits };
      });
      out = this.parts[p].impl.run(next);
    }
    for (const [i, e] of entries.entries()) for (const kv of this.kv(batch[i].seq)) kv.length = e.pos0 + e.nTokens;
    return out;
  }

  private kv(id: number): KVCache[] {
    const kvs = this.sequences.get(id);
    if (!kvs) throw new Error(`unknown sequence ${id}`);
    return kvs;
  }
}

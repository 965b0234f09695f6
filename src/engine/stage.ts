// What a forward implementation (reference or fast) is handed for one call: a stage of the model
// and a batch of sequence chunks to push through it.
import type { KVCache } from "./kv-cache.ts";
import type { ModelConfig } from "./model-config.ts";
import type { RopeParams } from "./rope.ts";
import type { StageWeights } from "./weights.ts";
import type { MatmulInputKind } from "./matmul-input.ts";
import type { Kernels } from "../kernels/index.ts";

/** Which positions of a chunk produce logits on the last stage. */
export type LogitsRequest = "last" | "all" | "none";

/** One sequence's chunk of consecutive tokens within a batch. */
export interface StageEntry {
  kv: KVCache;
  /** Position of the chunk's first token (the sequence length before this call). */
  pos0: number;
  nTokens: number;
  /** (n_tokens) token ids — first stage. */
  tokens?: Int32Array;
  /** (n_tokens, n_embd) hidden states from the previous stage — other stages. */
  hidden?: Float32Array;
  logits: LogitsRequest;
}

/** Numerics switches shared by both paths (defaults reproduce llama.cpp's CPU backend). */
export interface Numerics {
  /** Round matmul activations to the weight's ggml vec_dot_type (see matmul-input.ts). */
  matmulInput: "vec-dot" | "f32";
}

export interface Stage {
  config: ModelConfig;
  weights: StageWeights;
  rope: RopeParams;
  isFirst: boolean;
  isLast: boolean;
  numerics: Numerics;
  /** WASM kernels holding the packed weights (fast path), if enabled. */
  kernels?: Kernels;
}

/**
 * A forward implementation. For each entry it appends the chunk's keys/values to entry.kv (positions
 * [pos0, pos0 + nTokens), without changing kv.length) and returns:
 *   - not last stage: hidden states (n_tokens, n_embd)
 *   - last stage: logits ("last" → (1, n_vocab), "all" → (n_tokens, n_vocab), "none" → empty)
 */
export interface ForwardImpl {
  run(entries: StageEntry[]): Float32Array[];
}

/** The activation rounding a matmul with weights of `type` uses under these numerics. */
export function inputKindFor(numerics: Numerics, kindOfWeight: MatmulInputKind): MatmulInputKind {
  return numerics.matmulInput === "vec-dot" ? kindOfWeight : "f32";
}

/** Number of logit rows a chunk produces. */
export function logitRows(e: StageEntry): number {
  return e.logits === "all" ? e.nTokens : e.logits === "last" ? 1 : 0;
}

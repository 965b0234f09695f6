// The backend contract: one loaded model as a batched step machine — text ↔ tokens, sequences with
// their own KV cache, ONE forward over a batch of sequence chunks, samplers. LocalBackend
// (local-backend.ts) runs it in-process on the engine; the mesh's PipelineBackend
// (pipeline-backend.ts there) runs it across peers (forward() / step() may return a promise). The
// gateway's scheduler consumes it and never touches kernels.
//
// This module sits between the engine and the mesh: it imports neither the mesh nor the gateway.
// Failures a client should see as more than an internal error are thrown as BackendError
// (backend-error.ts); the gateway maps them to HTTP.

export type ChatRole = "system" | "developer" | "user" | "assistant";

/** One message of a conversation, content flattened to text (what renderChat() takes). */
export interface ChatMessage {
  role: ChatRole;
  content: string;
  name?: string;
}

export interface BackendInfo {
  /** The model id clients name in `model`. */
  id: string;
  /** Other names accepted for `model` (e.g. the GGUF's general.name). */
  aliases: string[];
  /** Positions one sequence may hold (prompt + completion). */
  contextLength: number;
  vocabSize: number;
  /** KV-cache memory one position of one sequence takes, in bytes. */
  kvBytesPerToken: number;
  /** Unix seconds (for /v1/models). */
  created: number;
  /** Steps the backend can usefully run at once (a pipeline of N stages: N micro-batches in flight); default 1. */
  pipelineDepth?: number;
  /** "model" when the GGUF has a chat template, "fallback" otherwise (see LocalBackend.renderChat). */
  chatTemplate: "model" | "fallback";
}

/** One sequence's chunk in a forward() batch. */
export interface BatchEntry {
  seq: number;
  tokens: Int32Array;
  /** "last": return the logits of the chunk's last position; "none": only fill the KV cache. */
  logits: "last" | "none";
}

/** Incremental detokenizer: never returns half a UTF-8 character. */
export interface StreamDecoder {
  push(token: number): string;
  /** Whatever is still held back (an incomplete character), at the end of the sequence. */
  flush(): string;
}

/** The sampling knobs as numbers (what a request sets and a sampler takes), without the bias map and seed. */
export type SamplingKnobs = Omit<SamplingParams, "logitBias" | "seed">;

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 = off. */
  topK: number;
  /** 0 = off. */
  minP: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** 1 = off (llama.cpp's repeat penalty over the generated tokens). */
  repetitionPenalty: number;
  /** token id → additive bias. */
  logitBias: ReadonlyMap<number, number>;
  seed: number;
}

export interface TokenSampler {
  /** Picks the next token from one row of logits; `generated` are the completion's tokens so far. */
  sample(logits: Float32Array, generated: readonly number[]): number;
}

/** A generated token with its log-probability and, when asked, the top alternatives. */
export interface TokenInfo {
  id: number;
  logprob: number;
  top: Array<{ id: number; logprob: number }>;
}

export interface ModelBackend {
  readonly info: BackendInfo;
  /** Text → tokens; addSpecial adds BOS/EOS as the vocabulary asks. Control tokens in the text are recognised. */
  encode(text: string, addSpecial: boolean): number[];
  /**
   * Renders a conversation into the prompt text, ending where the assistant's reply begins. Throws a
   * BackendError (invalid_request) when the model's chat template fails for these messages.
   */
  renderChat(messages: readonly ChatMessage[]): string;
  /** End-of-generation token (EOS, EOT…)? */
  isEog(token: number): boolean;
  /** The raw bytes of one token (may be part of a UTF-8 character). */
  tokenBytes(token: number): Uint8Array;
  createDecoder(): StreamDecoder;
  createSequence(): number;
  freeSequence(seq: number): void;
  /**
   * One step over several sequences; returns per entry the logits row (n_vocab) for "last", an empty
   * array for "none". May reject with a BackendError (unavailable: e.g. a mesh that lost a stage and
   * could not recover in time).
   */
  forward(batch: readonly BatchEntry[]): Float32Array[] | Promise<Float32Array[]>;
  createSampler(params: SamplingParams): TokenSampler;
  /**
   * Optional "forward + sample" in one call, where the logits are (a mesh samples on its last stage and
   * sends back only the token). setSampling() states once, before a sequence's first step, how its
   * tokens are picked; the backend then keeps the sampler and the sequence's generated tokens (the
   * penalties' history) until freeSequence(). step() returns per entry the sampled token for "last"
   * (with logprobs when the sequence asked for them), null for "none". A backend has both or neither.
   */
  setSampling?(seq: number, params: SamplingParams, logprobs: number | null): void;
  step?(batch: readonly BatchEntry[]): Array<TokenInfo | null> | Promise<Array<TokenInfo | null>>;
  close(): void;
}

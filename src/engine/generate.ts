// generate(): prompt → tokens on a whole-model engine (one that is both first and last stage).
// Prefill in chunks, then one decode step per token. Token ids only; text is the tokenizer's job.
import type { Engine } from "./engine.ts";
import { argmax, type Sampler } from "./sampling.ts";

export interface GenerateOptions {
  /** Stop after this many new tokens. */
  maxTokens: number;
  /** How to pick tokens; default greedy. History given to it = prompt + generated tokens. */
  sampler?: Sampler;
  /** Generation stops after emitting one of these (the stop token is included in the result). */
  stopIds?: Iterable<number>;
  /** Called for every new token with the logits it was sampled from; return false to stop. */
  onToken?: (token: number, logits: Float32Array) => boolean | void;
  /** Continue this existing sequence (its cached tokens precede the prompt); default a fresh one, freed at the end. */
  seq?: number;
  /** Tokens per forward() call during prefill. Default 256. */
  prefillChunk?: number;
}

export interface GenerateResult {
  /** The new tokens (not the prompt). */
  tokens: number[];
  finishReason: "stop" | "length" | "aborted";
}

export function generate(engine: Engine, prompt: readonly number[], opts: GenerateOptions): GenerateResult {
  if (!engine.isFirst || !engine.isLast) throw new Error(`generate() needs a whole-model engine; this one runs layers [${engine.range.start}, ${engine.range.end})`);
  if (prompt.length === 0) throw new Error("generate() needs a non-empty prompt");
  const stop = new Set(opts.stopIds ?? []);
  const chunk = opts.prefillChunk ?? 256;
  const own = opts.seq === undefined;
  const seq = opts.seq ?? engine.createSequence();
  const history = [...prompt];
  const tokens: number[] = [];
  try {
    let logits!: Float32Array;
    for (let i = 0; i < prompt.length; i += chunk) {
      const part = prompt.slice(i, i + chunk);
      const last = i + chunk >= prompt.length;
      [logits] = engine.forward([{ seq, tokens: part, logits: last ? "last" : "none" }]);
    }
    for (;;) {
      if (tokens.length >= opts.maxTokens) return { tokens, finishReason: "length" };
      const token = opts.sampler ? opts.sampler.sample(logits, history) : argmax(logits);
      tokens.push(token);
      history.push(token);
      if (opts.onToken?.(token, logits) === false) return { tokens, finishReason: "aborted" };
      if (stop.has(token)) return { tokens, finishReason: "stop" };
      if (tokens.length >= opts.maxTokens) return { tokens, finishReason: "length" };
      [logits] = engine.forward([{ seq, tokens: [token] }]);
    }
  } finally {
    if (own) engine.freeSequence(seq);
  }
}

// Sampling with the engine's samplers, for the backends and the mesh's last stage: createTokenSampler
// maps the API's sampling parameters onto an engine Sampler; SequenceSamplers keeps, per sequence,
// its sampler, its logprobs setting and the tokens it generated so far (the penalties' history), and
// picks tokens where the logits are (LocalBackend and PipelineBackend in-process, a mesh worker on its
// last stage).
import { Sampler } from "../engine/sampling.ts";
import type { SamplingParams, TokenInfo } from "./backend.ts";
import { tokenLogprobs } from "./logprobs.ts";

/** The engine sampler for the API's sampling parameters (OpenAI's penalties look at the whole completion). */
export function createTokenSampler(p: SamplingParams): Sampler {
  return new Sampler({
    temperature: p.temperature,
    topK: p.topK,
    topP: Math.max(p.topP, 1e-9),
    minP: Math.min(p.minP, 0.999999),
    repeatPenalty: p.repetitionPenalty,
    frequencyPenalty: p.frequencyPenalty,
    presencePenalty: p.presencePenalty,
    penaltyLastN: -1,
    logitBias: p.logitBias,
    seed: p.seed,
  });
}

/**
 * Where sampling happens (in-process, or on a mesh's last stage): per sequence its sampler, whether
 * it wants logprobs, and the tokens generated so far (the penalties' history).
 */
export class SequenceSamplers {
  private readonly seqs = new Map<number, { sampler: Sampler; logprobs: number | null; generated: number[] }>();

  /** `generated`: tokens the sequence already produced elsewhere (a replay): history and RNG continue after them. */
  set(seq: number, params: SamplingParams, logprobs: number | null, generated: readonly number[] = []): void {
    const sampler = createTokenSampler(params);
    sampler.skip(generated.length);
    this.seqs.set(seq, { sampler, logprobs, generated: [...generated] });
  }

  has(seq: number): boolean {
    return this.seqs.has(seq);
  }

  /** The sequence's logprobs setting (null: none asked). */
  logprobsOf(seq: number): number | null {
    return this.seqs.get(seq)?.logprobs ?? null;
  }

  /** Samples the sequence's next token from its logits row and records it in its history. */
  pick(seq: number, logits: Float32Array): TokenInfo {
    const s = this.seqs.get(seq);
    if (!s) throw new Error(`sequence ${seq} has no sampling settings`);
    const id = s.sampler.sample(logits, s.generated);
    s.generated.push(id);
    return s.logprobs === null ? { id, logprob: 0, top: [] } : tokenLogprobs(logits, id, s.logprobs);
  }

  delete(seq: number): void {
    this.seqs.delete(seq);
  }

  clear(): void {
    this.seqs.clear();
  }
}

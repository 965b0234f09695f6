// One choice of one request while it runs: its prompt, how much of it is prefilled, the tokens it
// generated, and the text pipeline token → detokenizer (whole UTF-8 characters) → stop matcher
// (holds back a possible stop-string start) → deltas. Logprobs of tokens are released together with
// the text they produced, so a streamed chunk's logprobs always describe the chunk's text.
import type { ModelBackend, StreamDecoder, TokenInfo, TokenSampler } from "../backend/backend.ts";
import type { FinishReason } from "./openai-types.ts";
import { StopMatcher } from "./stop-matcher.ts";

export interface Delta {
  text: string;
  tokens: TokenInfo[];
}

export class Sequence {
  readonly choice: number;
  readonly prompt: Int32Array;
  readonly maxTokens: number;
  /** KV positions reserved for this sequence (prompt + max completion). */
  readonly reservedTokens: number;
  /** Backend sequence id; -1 until admitted and after it is freed. */
  seq = -1;
  /** Prompt tokens already pushed through forward(). */
  prefilled = 0;
  /** KV positions this sequence holds in the backend. */
  positions = 0;
  readonly generated: number[] = [];
  /** Sampled token not yet fed back (the next decode step's input). */
  pending = -1;
  finishReason: FinishReason | null = null;
  /** ms timestamp of the last sampled token (inter-token latency). */
  lastTokenAt = 0;

  private readonly sampler: TokenSampler;
  private readonly decoder: StreamDecoder;
  private readonly stop: StopMatcher;
  private readonly ignoreEos: boolean;
  private readonly isEog: (t: number) => boolean;
  /** Tokens whose text is not yet emitted, with where their text ends in the raw output. */
  private held: Array<{ info: TokenInfo; start: number; end: number }> = [];
  private rawLength = 0;
  private emittedLength = 0;

  constructor(opts: { choice: number; prompt: Int32Array; maxTokens: number; sampler: TokenSampler; backend: ModelBackend; stop: readonly string[]; ignoreEos: boolean }) {
    this.choice = opts.choice;
    this.prompt = opts.prompt;
    this.maxTokens = opts.maxTokens;
    this.reservedTokens = opts.prompt.length + opts.maxTokens;
    this.sampler = opts.sampler;
    this.decoder = opts.backend.createDecoder();
    this.stop = new StopMatcher(opts.stop);
    this.ignoreEos = opts.ignoreEos;
    this.isEog = (t) => opts.backend.isEog(t);
  }

  get inPrefill(): boolean {
    return this.prefilled < this.prompt.length;
  }

  get finished(): boolean {
    return this.finishReason !== null;
  }

  sample(logits: Float32Array): number {
    return this.sampler.sample(logits, this.generated);
  }

  /**
   * Takes a sampled token. Returns the delta to emit (possibly empty) and sets finishReason when the
   * token ends the choice: an end-of-generation token or a stop string → "stop"; max_tokens → "length".
   */
  accept(info: TokenInfo): Delta {
    const t = info.id;
    this.generated.push(t);
    let out: Delta;
    if (!this.ignoreEos && this.isEog(t)) {
      out = this.finishText();
      this.finishReason = "stop";
      return out;
    }
    const piece = this.decoder.push(t);
    const start = this.rawLength;
    this.rawLength += piece.length;
    this.held.push({ info, start, end: this.rawLength });
    const r = this.stop.push(piece);
    this.emittedLength += r.text.length;
    if (r.stopped) {
      out = { text: r.text, tokens: this.release("stop") };
      this.finishReason = "stop";
      return out;
    }
    out = { text: r.text, tokens: this.release("progress") };
    if (this.generated.length >= this.maxTokens) {
      const tail = this.finishText();
      out = { text: out.text + tail.text, tokens: [...out.tokens, ...tail.tokens] };
      this.finishReason ??= "length";
    } else {
      this.pending = t;
    }
    return out;
  }

  /** Flushes the detokenizer and the stop matcher at the end of generation. */
  private finishText(): Delta {
    const rest = this.decoder.flush();
    this.rawLength += rest.length;
    if (this.held.length > 0) this.held[this.held.length - 1].end = this.rawLength;
    const r = this.stop.push(rest);
    let text = r.text;
    this.emittedLength += r.text.length;
    if (r.stopped) {
      this.finishReason = "stop";
      return { text, tokens: this.release("stop") };
    }
    const tail = this.stop.flush();
    text += tail;
    this.emittedLength += tail.length;
    return { text, tokens: this.release("final") };
  }

  /**
   * Tokens whose text is now emitted. "progress": those whose text lies within the emitted text (a
   * token that produced no text yet, e.g. the first half of a character, waits for the next one);
   * "final": all of them; "stop": those that contributed any emitted character.
   */
  private release(mode: "progress" | "final" | "stop"): TokenInfo[] {
    let n: number;
    if (mode === "final") n = this.held.length;
    else if (mode === "stop") {
      n = 0;
      while (n < this.held.length && this.held[n].start < this.emittedLength) n++;
    } else {
      n = 0;
      for (let i = 0; i < this.held.length && this.held[i].end <= this.emittedLength; i++) {
        if (this.held[i].end > this.held[i].start) n = i + 1;
      }
    }
    const out = this.held.slice(0, n).map((h) => h.info);
    this.held = mode === "progress" ? this.held.slice(n) : [];
    return out;
  }
}

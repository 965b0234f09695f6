// PipelineBackend: the gateway's ModelBackend over the mesh ring. Stage 0 runs in this process; each
// scheduler step goes down the ring as one FORWARD frame, and the last stage samples and sends the
// token ids straight back (N one-way hops for N stages); up to N steps are in flight at once.
import type { ChatMessage } from "../gateway/openai-types.ts";
import type { BackendInfo, BatchEntry, ModelBackend, SamplingParams, StreamDecoder, TokenInfo, TokenSampler } from "../gateway/backend.ts";
import { LocalBackend } from "../gateway/local-backend.ts";
import { Codec } from "./codecs.ts";
import { decodeResult, decodeTokens, encodeForward, encodeFree, encodeJson, MsgKind, readHeader, type ForwardEntry, type SeqConfig } from "./stage-protocol.ts";
import { StageStats } from "./stage-stats.ts";
import type { StageLink } from "./transport.ts";

interface PendingStep {
  /** Takes the step's RESULT or TOKENS frame. */
  settle: (f: Uint8Array) => void;
  reject: (e: Error) => void;
  /** When stage 0 started computing / sent the frame. */
  tStart: number;
  t0: number;
  tokens: number;
}

/** ModelBackend over the pipeline: stage 0 runs here, the rest over the ring; the last stage samples. */
export class PipelineBackend implements ModelBackend {
  readonly info: BackendInfo;
  private readonly local: LocalBackend;
  private readonly down: StageLink | undefined;
  private readonly codec: Codec;
  private readonly onClose: () => Promise<void>;
  private readonly pending = new Map<number, PendingStep>();
  private stepId = 0;
  private sendChain: Promise<void> = Promise.resolve();
  private failure: string | undefined;
  readonly stats = new StageStats();
  /** Ring time (send → result) per step, summed. */
  ringMs = 0;
  /** Bytes of RESULT / TOKENS frames received from the last stage. */
  replyBytes = 0;
  /** Most steps ever in flight at once (micro-batches in the ring). */
  maxInFlight = 0;
  /** Steps of one token of one sequence with nothing else in flight (one stream alone): count and total ms, stage 0 compute to token back. */
  soloSteps = 0;
  soloMs = 0;
  private maxInFlightSinceSolo = 0;

  constructor(local: LocalBackend, down: StageLink | undefined, codec: Codec, nLayer: number, nStages: number, onClose: () => Promise<void>) {
    this.local = local;
    this.down = down;
    this.codec = codec;
    this.onClose = onClose;
    const c = local.engine.config;
    this.info = { ...local.info, kvBytesPerToken: nLayer * c.nHeadKv * (c.headDim + c.headDimV) * 4, pipelineDepth: down ? nStages : 1 };
  }

  encode(text: string, addSpecial: boolean): number[] {
    return this.local.encode(text, addSpecial);
  }
  renderChat(messages: readonly ChatMessage[]): string {
    return this.local.renderChat(messages);
  }
  isEog(token: number): boolean {
    return this.local.isEog(token);
  }
  tokenBytes(token: number): Uint8Array {
    return this.local.tokenBytes(token);
  }
  createDecoder(): StreamDecoder {
    return this.local.createDecoder();
  }
  createSampler(params: SamplingParams): TokenSampler {
    return this.local.createSampler(params);
  }
  createSequence(): number {
    return this.local.createSequence();
  }

  freeSequence(seq: number): void {
    this.local.freeSequence(seq);
    if (this.down && !this.failure) this.enqueue(encodeFree([seq])).catch(() => {});
  }

  setSampling(seq: number, params: SamplingParams, logprobs: number | null): void {
    if (!this.down) return this.local.setSampling(seq, params, logprobs);
    if (this.failure) return;
    const cfg: SeqConfig = {
      seq,
      sampling: {
        temperature: params.temperature, topP: params.topP, topK: params.topK, minP: params.minP, presencePenalty: params.presencePenalty,
        frequencyPenalty: params.frequencyPenalty, repetitionPenalty: params.repetitionPenalty, logitBias: [...params.logitBias], seed: params.seed,
      },
      logprobs,
    };
    this.enqueue(encodeJson(MsgKind.SEQ_CONFIG, cfg)).catch(() => {});
  }

  private enqueue(frame: Uint8Array): Promise<void> {
    const link = this.down!;
    this.sendChain = this.sendChain.then(() => link.send(frame));
    return this.sendChain;
  }

  forward(batch: readonly BatchEntry[]): Float32Array[] | Promise<Float32Array[]> {
    if (!this.down) return this.local.forward(batch);
    return this.send(batch, false, (f) => {
      const r = decodeResult(f);
      const bySeq = new Map<number, Float32Array>();
      r.seqs.forEach((s, i) => bySeq.set(s, r.rows[i]));
      return batch.map((e) => (e.logits === "last" ? (bySeq.get(e.seq) ?? new Float32Array(0)) : new Float32Array(0)));
    });
  }

  step(batch: readonly BatchEntry[]): Array<TokenInfo | null> | Promise<Array<TokenInfo | null>> {
    if (!this.down) return this.local.step(batch);
    return this.send(batch, true, (f) => {
      const r = decodeTokens(f);
      const bySeq = new Map<number, TokenInfo>();
      for (const e of r.entries) bySeq.set(e.seq, { id: e.token, logprob: e.logprob ?? 0, top: e.top ?? [] });
      return batch.map((e) => {
        if (e.logits !== "last") return null;
        const t = bySeq.get(e.seq);
        if (!t) throw new Error(`the last stage returned no token for sequence ${e.seq}`);
        return t;
      });
    });
  }

  /** Runs stage 0 here, sends the hidden states down the ring; settles when the last stage replies. */
  private send<T>(batch: readonly BatchEntry[], sample: boolean, parse: (f: Uint8Array) => T): Promise<T> {
    if (this.failure) return Promise.reject(new Error(this.failure));
    const t0 = performance.now();
    const hidden = this.local.engine.forward(batch.map((e) => ({ seq: e.seq, tokens: e.tokens })));
    const t1 = performance.now();
    const step = (this.stepId = (this.stepId % 0xffffffff) + 1);
    const entries: ForwardEntry[] = batch.map((e) => ({ seq: e.seq, nTokens: e.tokens.length, logits: e.logits === "last", ...(sample && e.logits === "last" ? { sample: true } : {}) }));
    const frame = encodeForward(step, this.codec, entries, hidden, this.local.engine.config.nEmbd);
    let tokens = 0;
    for (const e of entries) tokens += e.nTokens;
    this.stats.computeMs += t1 - t0;
    this.stats.steps++;
    this.stats.tokens += tokens;
    this.stats.bytesOut += frame.length + 4;
    const p = new Promise<T>((resolve, reject) =>
      this.pending.set(step, {
        settle: (f) => {
          try {
            resolve(parse(f));
          } catch (err) {
            reject(err as Error);
          }
        },
        reject, tStart: t0, t0: t1, tokens,
      }),
    );
    this.maxInFlight = Math.max(this.maxInFlight, this.pending.size);
    this.maxInFlightSinceSolo = Math.max(this.maxInFlightSinceSolo, this.pending.size);
    this.enqueue(frame).then(
      () => {
        this.stats.transferMs += performance.now() - t1;
      },
      (err: Error) => this.onError(step, `sending to stage 1 failed: ${err.message}`),
    );
    return p;
  }

  /** A RESULT or TOKENS frame from the last stage. */
  onReply(f: Uint8Array): void {
    const h = readHeader(f);
    const p = this.pending.get(h.step);
    if (!p) return;
    this.pending.delete(h.step);
    const now = performance.now();
    this.ringMs += now - p.t0;
    if (p.tokens === 1 && this.pending.size === 0 && this.maxInFlightSinceSolo <= 1) {
      this.soloSteps++;
      this.soloMs += now - p.tStart;
    }
    this.maxInFlightSinceSolo = this.pending.size;
    this.replyBytes += f.length + 4;
    p.settle(f);
  }

  onError(step: number, message: string): boolean {
    const p = this.pending.get(step);
    if (!p) return false;
    this.pending.delete(step);
    p.reject(new Error(message));
    return true;
  }

  failAll(message: string): void {
    this.failure = message;
    for (const [s, p] of this.pending) {
      this.pending.delete(s);
      p.reject(new Error(message));
    }
  }

  close(): void {
    this.failAll("the mesh is shutting down");
    this.local.close();
    void this.onClose();
  }
}

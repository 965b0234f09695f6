// PipelineBackend: the ModelBackend (src/backend/backend.ts) over the mesh ring. Stage 0 runs in this
// process; each scheduler step goes down the ring as one FORWARD frame, and the last stage samples and
// sends the token ids straight back (N one-way hops for N stages); up to N steps are in flight at once.
//
// Failover: the ring can be swapped under the scheduler's feet. The host pause()s or suspend()s the
// backend (a stage died: the steps in flight are kept, not failed), builds a new ring over the
// surviving peers and resume()s with it. Every sequence then replays on the new ring, the first time
// it is stepped there: what the old ring had in its KV caches (`fed`: prompt plus generated tokens
// fed so far) goes down again as one prefill in front of the step's own tokens, and the last stage
// gets SEQ_CONFIG with the tokens generated so far (penalties' history, RNG position). The steps that
// were in flight are sent again under new step ids. The scheduler sees only a slower step: no token is
// lost or repeated, and greedy text is unchanged. While no ring can be built, steps wait up to
// `recoveryTimeoutMs`, then fail with a BackendError (unavailable: the gateway answers 503).
import type { BackendInfo, BatchEntry, ChatMessage, ModelBackend, SamplingParams, StreamDecoder, TokenInfo, TokenSampler } from "../backend/backend.ts";
import { unavailableError } from "../backend/backend-error.ts";
import { LocalBackend } from "../backend/local-backend.ts";
import { SequenceSamplers } from "../backend/sequence-samplers.ts";
import { Codec } from "./codecs.ts";
import { decodeResult, decodeTokens, encodeForward, encodeFree, encodeJson, MsgKind, readHeader, type ForwardEntry, type SeqConfig } from "./stage-protocol.ts";
import { StageStats } from "./stage-stats.ts";
import type { StageLink } from "./transport.ts";

/** One placement generation: stage 0 here, and the link to stage 1 (none: stage 0 holds every layer). */
export interface Ring {
  local: LocalBackend;
  down: StageLink | undefined;
  nStages: number;
  epoch: number;
}

/** What stage 0 keeps of each live sequence so it can be replayed on another ring. */
interface SeqRecord {
  params: SamplingParams | undefined;
  logprobs: number | null;
  /** Tokens every stage of the ring holds in its KV cache (acknowledged steps only). */
  fed: number[];
  /** Tokens sampled so far (the last one is fed by the next step). */
  generated: number[];
  /** The ring epoch the sequence lives in (-1: none yet) and its stage-0 engine sequence there. */
  epoch: number;
  localSeq: number;
}

interface Step {
  batch: readonly BatchEntry[];
  sample: boolean;
  resolve: (v: Array<Float32Array | TokenInfo | null>) => void;
  reject: (e: Error) => void;
}

interface PendingStep extends Step {
  /** When stage 0 started computing / sent the frame. */
  tStart: number;
  t0: number;
  tokens: number;
  epoch: number;
}

export interface PipelineOptions {
  /** How long steps wait for a ring while none can be built, ms (default 30 s). */
  recoveryTimeoutMs?: number;
  /** Called when sending to stage 1 fails (the host treats stage 1 as gone). */
  onLinkError?: (epoch: number, message: string) => void;
  /** Called when a sequence is replayed on a new ring (its id, the tokens prefilled again). */
  onReplay?: (seq: number, tokens: number) => void;
  onClose: () => Promise<void>;
}

/** ModelBackend over the pipeline: stage 0 runs here, the rest over the ring; the last stage samples. */
export class PipelineBackend implements ModelBackend {
  readonly info: BackendInfo;
  private ring: Ring;
  private readonly codec: Codec;
  private readonly o: PipelineOptions;
  private readonly seqs = new Map<number, SeqRecord>();
  private nextSeq = 1;
  /** Samplers when stage 0 is the whole model (no ring). */
  private readonly samplers = new SequenceSamplers();
  private readonly pending = new Map<number, PendingStep>();
  /** Steps waiting for a ring (in flight when it broke, or submitted since). */
  private waiting: Step[] = [];
  private waitTimer: NodeJS.Timeout | undefined;
  private paused = false;
  private drainWaiters: Array<() => void> = [];
  private stepId = 0;
  private sendChain: Promise<void> = Promise.resolve();
  private closed: string | undefined;
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
  /** Sequences replayed on a new ring, and the tokens their replays prefilled. */
  replayedSequences = 0;
  replayedTokens = 0;
  /** Steps sent again after their ring broke. */
  resentSteps = 0;

  constructor(ring: Ring, codec: Codec, nLayer: number, o: PipelineOptions) {
    this.ring = ring;
    this.codec = codec;
    this.o = o;
    const c = ring.local.engine.config;
    // The scheduler's micro-batch groups are fixed at start, from the first ring's depth; a later ring
    // with more or fewer stages still works (groups only decide how many steps may be in flight).
    this.info = { ...ring.local.info, kvBytesPerToken: nLayer * c.nHeadKv * (c.headDim + c.headDimV) * 4, pipelineDepth: Math.max(1, ring.nStages) };
  }

  private get local(): LocalBackend {
    return this.ring.local;
  }

  /** Stage 0 of the current ring (kept by the host when a re-plan leaves its range unchanged). */
  get stage0(): LocalBackend {
    return this.ring.local;
  }

  get epoch(): number {
    return this.ring.epoch;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Tokens in flight (for the host's per-stage progress deadlines). */
  get tokensInFlight(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.tokens;
    return n;
  }

  get isPaused(): boolean {
    return this.paused;
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
    const id = this.nextSeq;
    this.nextSeq = (this.nextSeq % 0x7fffffff) + 1;
    this.seqs.set(id, { params: undefined, logprobs: null, fed: [], generated: [], epoch: -1, localSeq: -1 });
    return id;
  }

  freeSequence(seq: number): void {
    const r = this.seqs.get(seq);
    if (!r) return;
    this.seqs.delete(seq);
    this.samplers.delete(seq);
    if (r.epoch !== this.ring.epoch) return;
    this.local.freeSequence(r.localSeq);
    if (this.ring.down && !this.paused) this.enqueue(encodeFree([seq])).catch(() => {});
  }

  setSampling(seq: number, params: SamplingParams, logprobs: number | null): void {
    const r = this.seqs.get(seq);
    if (!r) throw new Error(`unknown sequence ${seq}`);
    r.params = params;
    r.logprobs = logprobs;
  }

  private enqueue(frame: Uint8Array): Promise<void> {
    const link = this.ring.down!;
    this.sendChain = this.sendChain.then(() => link.send(frame));
    return this.sendChain;
  }

  forward(batch: readonly BatchEntry[]): Promise<Float32Array[]> {
    return this.submit(batch, false) as Promise<Float32Array[]>;
  }

  step(batch: readonly BatchEntry[]): Promise<Array<TokenInfo | null>> {
    return this.submit(batch, true) as Promise<Array<TokenInfo | null>>;
  }

  private submit(batch: readonly BatchEntry[], sample: boolean): Promise<Array<Float32Array | TokenInfo | null>> {
    if (this.closed) return Promise.reject(new Error(this.closed));
    return new Promise((resolve, reject) => {
      const s: Step = { batch, sample, resolve, reject };
      if (this.paused) this.wait(s);
      else this.dispatch(s);
    });
  }

  private wait(s: Step): void {
    this.waiting.push(s);
    if (this.waitTimer || this.o.recoveryTimeoutMs === 0) return;
    const ms = this.o.recoveryTimeoutMs ?? 30_000;
    this.waitTimer = setTimeout(() => {
      this.waitTimer = undefined;
      const err = unavailableError(`The mesh lost a stage and no placement over the remaining peers has come up within ${ms / 1000} s; try again later.`, "mesh_unavailable");
      const w = this.waiting;
      this.waiting = [];
      for (const x of w) x.reject(err);
    }, ms);
    this.waitTimer.unref();
  }

  /** Runs stage 0 here and sends the hidden states down the ring (or samples here when stage 0 is the whole model). */
  private dispatch(s: Step): void {
    const ring = this.ring;
    const local = ring.local;
    const items: Array<{ seq: number; tokens: Int32Array; logits: "last" | "none" }> = [];
    const seqConfigs: Uint8Array[] = [];
    for (const e of s.batch) {
      const r = this.seqs.get(e.seq);
      if (!r) return s.reject(new Error(`unknown sequence ${e.seq}`));
      let tokens = e.tokens;
      if (r.epoch !== ring.epoch) {
        // First step of this sequence on this ring: create it, replay what the old ring held.
        r.epoch = ring.epoch;
        r.localSeq = local.createSequence();
        if (r.fed.length > 0) {
          tokens = new Int32Array(r.fed.length + e.tokens.length);
          tokens.set(r.fed);
          tokens.set(e.tokens, r.fed.length);
          this.replayedSequences++;
          this.replayedTokens += r.fed.length;
          this.o.onReplay?.(e.seq, r.fed.length);
        }
        if (r.params) {
          if (ring.down) seqConfigs.push(encodeJson(MsgKind.SEQ_CONFIG, seqConfig(e.seq, r)));
          else this.samplers.set(e.seq, r.params, r.logprobs, r.generated);
        }
      }
      items.push({ seq: r.localSeq, tokens, logits: e.logits });
    }
    const t0 = performance.now();
    if (!ring.down) {
      // Stage 0 is the whole model: logits here, sampled here.
      let outs: Float32Array[];
      try {
        outs = local.engine.forward(items);
      } catch (err) {
        return s.reject(err as Error);
      }
      this.stats.computeMs += performance.now() - t0;
      this.stats.steps++;
      const res = s.batch.map((e, i) => (!s.sample ? outs[i] : e.logits === "last" ? this.samplers.pick(e.seq, outs[i]) : null));
      this.acknowledge(s, res);
      return s.resolve(res);
    }
    let hidden: Float32Array[];
    try {
      hidden = local.engine.forward(items.map((x) => ({ seq: x.seq, tokens: x.tokens })));
    } catch (err) {
      return s.reject(err as Error);
    }
    const t1 = performance.now();
    const step = (this.stepId = (this.stepId % 0xffffffff) + 1);
    const entries: ForwardEntry[] = s.batch.map((e, i) => ({ seq: e.seq, nTokens: items[i].tokens.length, logits: e.logits === "last", ...(s.sample && e.logits === "last" ? { sample: true } : {}) }));
    const frame = encodeForward(step, this.codec, entries, hidden, local.engine.config.nEmbd);
    let tokens = 0;
    for (const e of entries) tokens += e.nTokens;
    this.stats.computeMs += t1 - t0;
    this.stats.steps++;
    this.stats.tokens += tokens;
    this.stats.bytesOut += frame.length + 4;
    this.pending.set(step, { ...s, tStart: t0, t0: t1, tokens, epoch: ring.epoch });
    this.maxInFlight = Math.max(this.maxInFlight, this.pending.size);
    this.maxInFlightSinceSolo = Math.max(this.maxInFlightSinceSolo, this.pending.size);
    for (const c of seqConfigs) this.enqueue(c).catch(() => {});
    this.enqueue(frame).then(
      () => {
        this.stats.transferMs += performance.now() - t1;
      },
      (err: Error) => {
        if (ring.epoch === this.ring.epoch) this.o.onLinkError?.(ring.epoch, `sending to stage 1 failed: ${err.message}`);
      },
    );
  }

  /** A finished step: its tokens are now in every stage's KV cache; sampled tokens join the history. */
  private acknowledge(s: Step, res: ReadonlyArray<Float32Array | TokenInfo | null>): void {
    s.batch.forEach((e, i) => {
      const r = this.seqs.get(e.seq);
      if (!r) return;
      for (const t of e.tokens) r.fed.push(t);
      const out = res[i];
      if (s.sample && out && !(out instanceof Float32Array)) r.generated.push(out.id);
    });
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
    let res: Array<Float32Array | TokenInfo | null>;
    try {
      res = p.sample ? parseTokens(f, p.batch) : parseResult(f, p.batch);
    } catch (err) {
      p.reject(err as Error);
      this.checkDrained();
      return;
    }
    this.acknowledge(p, res);
    p.resolve(res);
    this.checkDrained();
  }

  /** An ERROR frame for one step (e.g. a stage's engine refused it): that step fails, the ring stays. */
  onError(step: number, message: string): boolean {
    const p = this.pending.get(step);
    if (!p) return false;
    this.pending.delete(step);
    p.reject(new Error(message));
    this.checkDrained();
    return true;
  }

  private checkDrained(): void {
    if (this.pending.size > 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /**
   * Stops sending new steps (they wait) and resolves when the steps in flight have come back, or after
   * `timeoutMs` (then the stragglers are kept and sent again on the next ring). For a planned switch.
   */
  async pause(timeoutMs: number): Promise<void> {
    this.paused = true;
    if (this.pending.size > 0) {
      await new Promise<void>((res) => {
        this.drainWaiters.push(res);
        setTimeout(res, timeoutMs).unref();
      });
    }
    this.suspend();
  }

  /** The ring broke: steps in flight are kept to be sent again on the next ring; new steps wait. */
  suspend(): void {
    this.paused = true;
    const inFlight = [...this.pending.entries()].sort((a, b) => a[0] - b[0]);
    this.pending.clear();
    this.checkDrained();
    for (const [, p] of inFlight) {
      this.resentSteps++;
      this.wait({ batch: p.batch, sample: p.sample, resolve: p.resolve, reject: p.reject });
    }
  }

  /** Continues on a new ring: closes the old link to stage 1, frees the old ring's sequences here, then sends what waited. */
  resume(ring: Ring): void {
    const old = this.ring;
    if (old.down !== ring.down) old.down?.close();
    if (old.local !== ring.local) old.local.close();
    else for (const id of ring.local.engine.sequenceIds) ring.local.engine.freeSequence(id);
    this.ring = ring;
    this.sendChain = Promise.resolve();
    this.paused = false;
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    const w = this.waiting;
    this.waiting = [];
    for (const s of w) this.dispatch(s);
  }

  /** Fails everything for good (shutdown). */
  failAll(message: string): void {
    this.closed = message;
    for (const [s, p] of this.pending) {
      this.pending.delete(s);
      p.reject(new Error(message));
    }
    const w = this.waiting;
    this.waiting = [];
    for (const x of w) x.reject(new Error(message));
    this.checkDrained();
  }

  close(): void {
    this.failAll("the mesh is shutting down");
    this.local.close();
    void this.o.onClose();
  }
}

function seqConfig(seq: number, r: SeqRecord): SeqConfig {
  const p = r.params!;
  return {
    seq,
    sampling: {
      temperature: p.temperature, topP: p.topP, topK: p.topK, minP: p.minP, presencePenalty: p.presencePenalty,
      frequencyPenalty: p.frequencyPenalty, repetitionPenalty: p.repetitionPenalty, logitBias: [...p.logitBias], seed: p.seed,
    },
    logprobs: r.logprobs,
    ...(r.generated.length > 0 ? { generated: r.generated } : {}),
  };
}

function parseResult(f: Uint8Array, batch: readonly BatchEntry[]): Float32Array[] {
  const r = decodeResult(f);
  const bySeq = new Map<number, Float32Array>();
  r.seqs.forEach((s, i) => bySeq.set(s, r.rows[i]));
  return batch.map((e) => (e.logits === "last" ? (bySeq.get(e.seq) ?? new Float32Array(0)) : new Float32Array(0)));
}

function parseTokens(f: Uint8Array, batch: readonly BatchEntry[]): Array<TokenInfo | null> {
  const r = decodeTokens(f);
  const bySeq = new Map<number, TokenInfo>();
  for (const e of r.entries) bySeq.set(e.seq, { id: e.token, logprob: e.logprob ?? 0, top: e.top ?? [] });
  return batch.map((e) => {
    if (e.logits !== "last") return null;
    const t = bySeq.get(e.seq);
    if (!t) throw new Error(`the last stage returned no token for sequence ${e.seq}`);
    return t;
  });
}

// Continuous batching over a ModelBackend.
//
// Every step runs ONE backend.forward() over all running sequences: each decoding sequence feeds its
// last sampled token, and sequences still reading their prompt get a chunk of it (at most
// `prefillChunk` prompt tokens per step in all, so a long prompt is prefilled over several steps
// while the running streams keep getting a token every step). Waiting requests join between steps
// when a batch slot and KV budget are free (FIFO: the oldest waits first, nobody overtakes it).
// Finished or cancelled sequences are freed at once. Between steps the loop yields to the event loop
// (setImmediate), so HTTP I/O, new requests and disconnects are handled while generation runs.
//
// Sampling: when the backend offers step() ("forward + sample" where the logits are, e.g. a mesh's
// last stage), each sequence's sampling settings are handed over once (setSampling) and every step
// returns tokens; otherwise forward() returns logits and the sequence's sampler picks here.
//
// Pipelining: with pipelineDepth D > 1 (a mesh of D stages) the running jobs are split into D groups,
// each with its own step loop; a group's next step starts when its tokens return, so up to D
// micro-batches are in flight and every stage can be busy. A job stays in its group; a new job goes to
// the group with the fewest running sequences. Results do not depend on grouping (each sequence's
// tokens depend only on its own inputs and sampler).
import { randomInt } from "node:crypto";
import { totalmem } from "node:os";
import type { ModelBackend, TokenInfo } from "../backend/backend.ts";
import { tokenLogprobs } from "../backend/logprobs.ts";
import { ApiError, invalidRequest, knownApiError, queueFull, serverError, unavailable } from "./errors.ts";
import type { GenerationEvent, GenerationHandle, GenerationRequest, Generator, SchedulerStats } from "./generator.ts";
import { defaultKvCapacity, KvBudget } from "./kv-budget.ts";
import { RequestQueue } from "./request-queue.ts";
import { Sequence, type Delta } from "./sequence.ts";

/** What the scheduler reports as it goes (metrics.ts implements it). Times in seconds. */
export interface SchedulerObserver {
  onQueued?(queueSeconds: number): void;
  onFirstToken?(ttftSeconds: number): void;
  onToken?(interTokenSeconds: number): void;
  onRequestDone?(e2eSeconds: number, promptTokens: number, completionTokens: number): void;
  onPromptTokens?(n: number): void;
  onGeneratedTokens?(n: number): void;
  onStep?(seconds: number, sequences: number, tokens: number): void;
}

export interface SchedulerOptions {
  /** Sequences that run together at most (a request with n choices takes n). */
  maxBatch: number;
  /** Requests that may wait for a slot; more are refused with 429. */
  maxQueue: number;
  /** Prompt tokens prefilled per step at most (over all sequences). */
  prefillChunk?: number;
  /** KV budget in positions; default maxBatch × context length, capped at 40% of RAM (see defaultKvCapacity). */
  kvCapacityTokens?: number;
  /** Retry-After seconds sent with 429. */
  retryAfterSeconds?: number;
  observer?: SchedulerObserver;
  /** Micro-batches (groups of sequences) stepping at once; default the backend's pipelineDepth, or 1. */
  pipelineDepth?: number;
}

type RequestState = "queued" | "active" | "done";

class Job {
  readonly req: GenerationRequest;
  readonly arrival = performance.now();
  state: RequestState = "queued";
  seqs: Sequence[] = [];
  /** The micro-batch group it steps in. */
  group = 0;
  firstTokenAt = 0;
  finishedSeqs = 0;
  promptTokens = 0;
  timer: NodeJS.Timeout | undefined;
  resolve!: () => void;
  readonly done: Promise<void>;

  constructor(req: GenerationRequest) {
    this.req = req;
    this.done = new Promise<void>((r) => (this.resolve = r));
    for (const p of req.prompts) this.promptTokens += p.length;
  }

  get reservedTokens(): number {
    let t = 0;
    for (const p of this.req.prompts) t += (p.length + this.req.maxTokens) * this.req.n;
    return t;
  }

  get nSequences(): number {
    return this.req.prompts.length * this.req.n;
  }

  /** Set once cancelled: no more events reach the listener. */
  silenced = false;

  emit(ev: GenerationEvent): void {
    if (this.state === "done" || this.silenced) return;
    try {
      this.req.onEvent(ev);
    } catch {
      // A listener that throws must not take the scheduler down; the route will notice its socket.
    }
  }
}

export class Scheduler implements Generator {
  readonly backend: ModelBackend;
  readonly maxBatch: number;
  readonly prefillChunk: number;
  readonly kv: KvBudget;
  private readonly queue: RequestQueue<Job>;
  private readonly retryAfter: number;
  private readonly observer: SchedulerObserver;
  /** Admitted jobs, in admission order. */
  private active: Job[] = [];
  /** Groups whose step loop is running / whose step is in the backend right now. */
  private readonly running = new Set<number>();
  private readonly inFlight = new Set<number>();
  readonly pipelineDepth: number;
  /** The backend samples (step()) instead of returning logits. */
  private readonly backendSamples: boolean;
  private closed = false;
  /** Jobs cancelled while a step was in flight: freed when it returns. */
  private deferred = new Set<Job>();
  private idleWaiters: Array<() => void> = [];

  constructor(backend: ModelBackend, opts: SchedulerOptions) {
    if (!(Number.isInteger(opts.maxBatch) && opts.maxBatch >= 1)) throw new RangeError(`maxBatch must be a positive integer, got ${opts.maxBatch}`);
    this.backend = backend;
    this.maxBatch = opts.maxBatch;
    this.prefillChunk = Math.max(1, opts.prefillChunk ?? 128);
    this.queue = new RequestQueue<Job>(opts.maxQueue);
    const info = backend.info;
    this.kv = new KvBudget(opts.kvCapacityTokens ?? defaultKvCapacity(opts.maxBatch, info.contextLength, info.kvBytesPerToken, totalmem()), info.kvBytesPerToken);
    this.retryAfter = opts.retryAfterSeconds ?? 1;
    this.observer = opts.observer ?? {};
    this.pipelineDepth = Math.max(1, Math.floor(opts.pipelineDepth ?? info.pipelineDepth ?? 1));
    this.backendSamples = typeof backend.step === "function" && typeof backend.setSampling === "function";
  }

  stats(): SchedulerStats {
    let seqs = 0;
    for (const j of this.active) seqs += j.seqs.filter((s) => s.seq >= 0).length;
    return {
      queued: this.queue.size,
      activeRequests: this.active.length,
      activeSequences: seqs,
      kvUsedTokens: this.kv.usedTokens,
      kvReservedTokens: this.kv.reservedTokens,
      kvCapacityTokens: this.kv.capacityTokens,
      kvBytesPerToken: this.kv.bytesPerToken,
    };
  }

  submit(req: GenerationRequest): GenerationHandle {
    if (this.closed) throw unavailable("The server is shutting down.", "shutting_down");
    const job = new Job(req);
    if (job.nSequences > this.maxBatch) {
      throw invalidRequest(`This request needs ${job.nSequences} sequences (prompts × n) but the server runs at most ${this.maxBatch} at once.`, "n", "too_many_sequences");
    }
    if (!this.kv.canEverFit(job.reservedTokens)) {
      throw invalidRequest(
        `This request needs ${job.reservedTokens} tokens of KV cache (prompt + max_tokens for each choice) but the server's KV budget is ${this.kv.capacityTokens} tokens. Please reduce the prompt, max_tokens or n.`,
        "max_tokens",
        "kv_budget_exceeded",
      );
    }
    // Join now if there is room and nobody is waiting ahead; else wait in the queue.
    const joinNow = this.queue.size === 0 && this.inFlight.size === 0 && this.fits(job);
    if (!joinNow && !this.queue.push(job)) throw queueFull(this.retryAfter);
    if (req.timeoutMs > 0) {
      job.timer = setTimeout(() => this.fail(job, new ApiError(504, `The request timed out after ${req.timeoutMs / 1000} s.`, { type: "timeout_error", code: "timeout" })), req.timeoutMs);
      job.timer.unref?.();
    }
    if (joinNow) this.admit(job);
    this.kick();
    return { cancel: () => this.cancel(job), done: job.done };
  }

  /** Refuses new requests from now on. */
  close(): void {
    this.closed = true;
  }

  /** Ends every queued and running request with `error` (shutdown past its deadline). */
  abortAll(error: ApiError): void {
    for (const j of this.queue.drain()) this.fail(j, error);
    for (const j of [...this.active]) this.fail(j, error);
  }

  /** Resolves when nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (this.active.length === 0 && this.queue.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  // ---- admission ----

  /** Whether the job's sequences and KV reservation fit in the batch now. */
  private fits(job: Job): boolean {
    let running = 0;
    for (const j of this.active) running += j.nSequences - j.finishedSeqs;
    return running + job.nSequences <= this.maxBatch && job.reservedTokens <= this.kv.freeTokens;
  }

  /** Starts a job that fits (not in the queue any more): reserves KV, creates its sequences. */
  private admit(job: Job): void {
    if (!this.kv.tryReserve(job.reservedTokens)) throw new Error("admit() called for a job that does not fit");
    const req = job.req;
    const baseSeed = req.sampling.seed;
    const created: number[] = [];
    job.group = this.leastLoadedGroup();
    try {
      let choice = 0;
      for (const prompt of req.prompts) {
        for (let i = 0; i < req.n; i++, choice++) {
          const seed = baseSeed === undefined ? randomInt(0, 2 ** 32) : (baseSeed + choice) >>> 0;
          const sampler = this.backend.createSampler({ ...req.sampling, seed });
          const s = new Sequence({ choice, prompt, maxTokens: req.maxTokens, sampler, backend: this.backend, stop: req.stop, ignoreEos: req.ignoreEos });
          s.seq = this.backend.createSequence();
          created.push(s.seq);
          if (this.backendSamples) this.backend.setSampling!(s.seq, { ...req.sampling, seed }, req.logprobs);
          job.seqs.push(s);
        }
      }
    } catch (err) {
      for (const id of created) this.safeFree(id);
      this.kv.release(job.reservedTokens);
      job.seqs = [];
      this.fail(job, knownApiError(err) ?? serverError(`Could not start the request: ${(err as Error).message}`));
      return;
    }
    job.state = "active";
    this.active.push(job);
    const queued = (performance.now() - job.arrival) / 1000;
    this.observer.onQueued?.(queued);
    this.observer.onPromptTokens?.(job.promptTokens * req.n);
    job.emit({ type: "admitted", queueMs: queued * 1000 });
  }

  private admitWaiting(): void {
    let admitted = false;
    while (this.queue.size > 0) {
      const head = this.queue.peek()!;
      if (!this.fits(head)) break;
      this.queue.shift();
      this.admit(head);
      admitted = true;
    }
    // A job may have landed in a group whose loop is idle.
    if (admitted) this.kick();
  }

  /** The group with the fewest running sequences (lowest index among ties). */
  private leastLoadedGroup(): number {
    if (this.pipelineDepth === 1) return 0;
    const load = new Array<number>(this.pipelineDepth).fill(0);
    for (const j of this.active) load[j.group] += j.nSequences - j.finishedSeqs;
    let best = 0;
    for (let g = 1; g < load.length; g++) if (load[g] < load[best]) best = g;
    return best;
  }

  private groupHasWork(g: number): boolean {
    return this.active.some((j) => j.group === g);
  }

  // ---- the loops (one per group) ----

  private kick(): void {
    for (let g = 0; g < this.pipelineDepth; g++) {
      if (this.running.has(g) || !this.groupHasWork(g)) continue;
      this.running.add(g);
      setImmediate(() => void this.loop(g));
    }
  }

  private async loop(g: number): Promise<void> {
    try {
      while (this.groupHasWork(g)) {
        await this.step(g);
        this.admitWaiting();
        if (!this.groupHasWork(g)) break;
        await new Promise<void>((r) => setImmediate(r));
        this.admitWaiting();
      }
    } catch (err) {
      // step() handles its own failures; this is a last resort so the process never dies here.
      this.inFlight.delete(g);
      const e = serverError(`Scheduler failure: ${(err as Error).message}`);
      for (const j of this.active.filter((j) => j.group === g)) this.fail(j, e);
    } finally {
      this.running.delete(g);
      if (this.active.length > 0) this.kick();
      else this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    if (this.active.length > 0 || this.queue.size > 0) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }

  private async step(g: number): Promise<void> {
    const entries: Array<{ seq: number; tokens: Int32Array; logits: "last" | "none" }> = [];
    const owners: Array<{ job: Job; s: Sequence; prefill: number }> = [];
    // Decode: one token for every sequence past its prompt.
    for (const job of this.active) {
      if (job.group !== g) continue;
      for (const s of job.seqs) {
        if (s.finished || s.inPrefill || s.pending < 0) continue;
        entries.push({ seq: s.seq, tokens: Int32Array.of(s.pending), logits: "last" });
        owners.push({ job, s, prefill: 0 });
      }
    }
    // Prefill: chunks of prompts, oldest first, within the per-step budget.
    let budget = this.prefillChunk;
    for (const job of this.active) {
      if (job.group !== g) continue;
      for (const s of job.seqs) {
        if (budget <= 0) break;
        if (s.finished || !s.inPrefill) continue;
        const n = Math.min(budget, s.prompt.length - s.prefilled);
        const end = s.prefilled + n;
        entries.push({ seq: s.seq, tokens: s.prompt.subarray(s.prefilled, end), logits: end === s.prompt.length ? "last" : "none" });
        owners.push({ job, s, prefill: n });
        budget -= n;
      }
    }
    if (entries.length === 0) return;

    const t0 = performance.now();
    let outs: Array<Float32Array | TokenInfo | null>;
    this.inFlight.add(g);
    try {
      outs = this.backendSamples ? await this.backend.step!(entries) : await this.backend.forward(entries);
      if (!Array.isArray(outs) || outs.length !== entries.length) throw new Error(`backend returned ${Array.isArray(outs) ? outs.length : typeof outs} results for ${entries.length} entries`);
    } catch (err) {
      this.inFlight.delete(g);
      // A BackendError (e.g. a mesh that lost a stage and could not recover in time) becomes its API error
      // (unavailable: 503); anything else is an internal failure (500).
      const e = knownApiError(err) ?? serverError(`The model failed during generation: ${(err as Error).message}`);
      for (const job of new Set(owners.map((o) => o.job))) this.fail(job, e);
      this.flushDeferred();
      return;
    }
    this.inFlight.delete(g);
    const now = performance.now();
    let nTokens = 0;
    for (const e of entries) nTokens += e.tokens.length;
    this.observer.onStep?.((now - t0) / 1000, entries.length, nTokens);

    let generated = 0;
    for (let i = 0; i < owners.length; i++) {
      const { job, s, prefill } = owners[i];
      if (job.state !== "active" || this.deferred.has(job) || s.seq < 0) continue;
      const fed = entries[i].tokens.length;
      s.positions += fed;
      this.kv.addUsed(fed);
      if (prefill > 0) {
        s.prefilled += prefill;
        if (s.inPrefill) continue;
      }
      s.pending = -1;
      try {
        const out = outs[i];
        if (out === null || out instanceof Float32Array) {
          if (!(out instanceof Float32Array)) throw new Error("the backend returned no logits");
          const token = s.sample(out);
          const k = job.req.logprobs;
          this.acceptToken(job, s, k === null ? { id: token, logprob: 0, top: [] } : tokenLogprobs(out, token, k), now);
        } else {
          this.acceptToken(job, s, out, now);
        }
        generated++;
      } catch (err) {
        this.fail(job, serverError(`Sampling failed: ${(err as Error).message}`));
      }
    }
    if (generated > 0) this.observer.onGeneratedTokens?.(generated);
    this.flushDeferred();
  }

  private acceptToken(job: Job, s: Sequence, info: TokenInfo, now: number): void {
    if (job.firstTokenAt === 0) {
      job.firstTokenAt = now;
      this.observer.onFirstToken?.((now - job.arrival) / 1000);
    }
    if (s.lastTokenAt > 0) this.observer.onToken?.((now - s.lastTokenAt) / 1000);
    s.lastTokenAt = now;
    const delta: Delta = s.accept(info);
    if (delta.text.length > 0 || delta.tokens.length > 0) job.emit({ type: "delta", choice: s.choice, text: delta.text, tokens: delta.tokens });
    if (s.finished) this.finishSequence(job, s);
  }

  // ---- endings ----

  private finishSequence(job: Job, s: Sequence): void {
    this.freeSeq(s);
    job.finishedSeqs++;
    job.emit({ type: "finish", choice: s.choice, reason: s.finishReason ?? "stop" });
    if (job.finishedSeqs === job.seqs.length) {
      let completion = 0;
      for (const x of job.seqs) completion += x.generated.length;
      const promptTokens = job.promptTokens * job.req.n;
      job.emit({ type: "done", promptTokens, completionTokens: completion });
      this.observer.onRequestDone?.((performance.now() - job.arrival) / 1000, promptTokens, completion);
      this.retire(job);
    }
  }

  private freeSeq(s: Sequence): void {
    if (s.seq < 0) return;
    this.safeFree(s.seq);
    s.seq = -1;
    this.kv.removeUsed(s.positions);
    s.positions = 0;
    this.kv.release(s.reservedTokens);
  }

  private safeFree(id: number): void {
    try {
      this.backend.freeSequence(id);
    } catch {
      // already gone
    }
  }

  /** Removes the job from the queue / batch and frees what it holds. */
  private retire(job: Job): void {
    if (job.state === "done") return;
    if (job.timer) clearTimeout(job.timer);
    if (job.state === "queued") this.queue.remove(job);
    else {
      for (const s of job.seqs) this.freeSeq(s);
      const i = this.active.indexOf(job);
      if (i >= 0) this.active.splice(i, 1);
    }
    job.state = "done";
    job.resolve();
    // Room may have opened for waiting requests.
    if (this.inFlight.size === 0) {
      this.admitWaiting();
      this.kick();
      this.notifyIdle();
    }
  }

  private cancel(job: Job): void {
    if (job.state === "done") return;
    if (job.state === "active" && this.inFlight.has(job.group)) {
      // The backend is working on this job's sequences right now: free them when it returns.
      this.deferred.add(job);
      job.silenced = true;
      return;
    }
    this.retire(job);
  }

  private fail(job: Job, error: ApiError): void {
    if (job.state === "done") return;
    job.emit({ type: "error", error });
    this.cancel(job);
  }

  private flushDeferred(): void {
    if (this.deferred.size === 0) return;
    const jobs = [...this.deferred].filter((j) => !this.inFlight.has(j.group));
    for (const j of jobs) {
      this.deferred.delete(j);
      this.retire(j);
    }
  }
}

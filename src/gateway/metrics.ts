// Prometheus metrics (prom-client), on a registry of the gateway's own (so several servers in one
// process — tests — do not collide). Latency histograms use geometric buckets (×1.25 from 0.5 ms to
// ~2 min) so p50/p99/p99.9 can be read with a few percent of resolution. Gauges for the scheduler's
// state are read at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { SchedulerStats } from "./generator.ts";
import type { SchedulerObserver } from "./scheduler.ts";

/** Geometric buckets: start, start·factor, … up to and including the first ≥ end. */
export function geometricBuckets(start: number, factor: number, end: number): number[] {
  const out: number[] = [];
  for (let v = start; ; v *= factor) {
    out.push(Number(v.toPrecision(4)));
    if (v >= end) break;
  }
  return out;
}

const LATENCY_BUCKETS = geometricBuckets(0.0005, 1.25, 120);

export class GatewayMetrics implements SchedulerObserver {
  readonly registry = new Registry();
  readonly ttft: Histogram;
  readonly itl: Histogram;
  readonly e2e: Histogram;
  readonly queueTime: Histogram;
  readonly stepTime: Histogram;
  readonly stepSequences: Histogram;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly requests: Counter<"endpoint" | "status">;
  private statsSource: () => SchedulerStats | undefined = () => undefined;

  constructor(opts: { defaultMetrics?: boolean; prefix?: string } = {}) {
    const p = opts.prefix ?? "llmesh_";
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: p });
    this.ttft = new Histogram({ name: `${p}time_to_first_token_seconds`, help: "Time from request arrival to its first generated token.", buckets: LATENCY_BUCKETS, registers });
    this.itl = new Histogram({ name: `${p}inter_token_latency_seconds`, help: "Time between consecutive generated tokens of one sequence.", buckets: LATENCY_BUCKETS, registers });
    this.e2e = new Histogram({ name: `${p}e2e_request_latency_seconds`, help: "Time from request arrival to its last token.", buckets: LATENCY_BUCKETS, registers });
    this.queueTime = new Histogram({ name: `${p}request_queue_time_seconds`, help: "Time a request waited for a batch slot.", buckets: LATENCY_BUCKETS, registers });
    this.stepTime = new Histogram({ name: `${p}forward_step_seconds`, help: "Duration of one batched forward step.", buckets: LATENCY_BUCKETS, registers });
    this.stepSequences = new Histogram({ name: `${p}forward_step_sequences`, help: "Sequences in one batched forward step.", buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256], registers });
    this.promptTokens = new Counter({ name: `${p}prompt_tokens_total`, help: "Prompt tokens processed.", registers });
    this.generationTokens = new Counter({ name: `${p}generation_tokens_total`, help: "Tokens generated.", registers });
    this.requests = new Counter({ name: `${p}requests_total`, help: "HTTP requests answered, by endpoint and status code.", labelNames: ["endpoint", "status"], registers });
    const source = () => this.statsSource();
    const stat = <K extends keyof SchedulerStats>(k: K, f: (s: SchedulerStats) => number = (s) => s[k]) =>
      function (this: Gauge) {
        const s = source();
        this.set(s ? f(s) : 0);
      };
    new Gauge({ name: `${p}queue_depth`, help: "Requests waiting for a batch slot.", registers, collect: stat("queued") });
    new Gauge({ name: `${p}active_requests`, help: "Requests being generated.", registers, collect: stat("activeRequests") });
    new Gauge({ name: `${p}active_sequences`, help: "Sequences in the running batch.", registers, collect: stat("activeSequences") });
    new Gauge({ name: `${p}kv_cache_used_tokens`, help: "KV-cache positions held by running sequences.", registers, collect: stat("kvUsedTokens") });
    new Gauge({ name: `${p}kv_cache_used_bytes`, help: "KV-cache memory held by running sequences.", registers, collect: stat("kvUsedTokens", (s) => s.kvUsedTokens * s.kvBytesPerToken) });
    new Gauge({ name: `${p}kv_cache_reserved_tokens`, help: "KV-cache positions reserved by admitted requests (prompt + max_tokens).", registers, collect: stat("kvReservedTokens") });
    new Gauge({ name: `${p}kv_cache_reserved_bytes`, help: "KV-cache memory reserved by admitted requests.", registers, collect: stat("kvReservedTokens", (s) => s.kvReservedTokens * s.kvBytesPerToken) });
    new Gauge({ name: `${p}kv_cache_capacity_tokens`, help: "KV-cache budget in positions.", registers, collect: stat("kvCapacityTokens") });
    new Gauge({ name: `${p}kv_cache_capacity_bytes`, help: "KV-cache budget in bytes.", registers, collect: stat("kvCapacityTokens", (s) => s.kvCapacityTokens * s.kvBytesPerToken) });
  }

  /** Where the scheduler gauges read from (set once the model is loaded). */
  setStatsSource(f: () => SchedulerStats | undefined): void {
    this.statsSource = f;
  }

  // SchedulerObserver
  onQueued(s: number): void {
    this.queueTime.observe(s);
  }
  onFirstToken(s: number): void {
    this.ttft.observe(s);
  }
  onToken(s: number): void {
    this.itl.observe(s);
  }
  onRequestDone(s: number): void {
    this.e2e.observe(s);
  }
  onPromptTokens(n: number): void {
    this.promptTokens.inc(n);
  }
  onGeneratedTokens(n: number): void {
    this.generationTokens.inc(n);
  }
  onStep(seconds: number, sequences: number): void {
    this.stepTime.observe(seconds);
    this.stepSequences.observe(sequences);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

// The mesh host (`llmesh serve --mesh`): stage 0 and the API. Accepts workers that prove the mesh
// secret and hold the same model file, measures the links (libp2p ping, host ↔ worker and worker →
// worker), places layers with the planner (src/planner: measured per-layer times, memory, RTTs; the
// host is stage 0; `--split` overrides),
// has the stages load downstream-first, then serves a PipelineBackend: one FORWARD per scheduler
// step goes down the ring, the last stage samples and sends the token ids straight back (N one-way
// hops); up to N steps (micro-batches of different sequences) are in flight at once.
import { basename } from "node:path";
import type { ModelBackend } from "../gateway/backend.ts";
import { LocalBackend } from "../gateway/local-backend.ts";
import { openGGUF } from "../gguf/reader.ts";
import { readModelConfig } from "../engine/model-config.ts";
import { Codec, codecName } from "./codecs.ts";
import { acceptHandshake, dialHandshake } from "./handshake.ts";
import { encodeInvite, type Invite } from "./identity.ts";
import { measureCapacity, type StageCapacity } from "./placement.ts";
import { evaluatePlacement, plan, profileFromGGUF, type Cluster, type Link, type ModelProfile, type Plan, type PlanOptions } from "../planner/index.ts";
import { CONTROL_PROTOCOL, decodeJson, encodeJson, kindName, MsgKind, PROTOCOL_VERSION, readHeader, STAGE_PROTOCOL, type Assign, type JoinInfo } from "./stage-protocol.ts";
import type { StageStatsSnapshot } from "./stage-stats.ts";
import { PipelineBackend } from "./pipeline-backend.ts";
import type { StageLink, Transport } from "./transport.ts";

export interface HostOptions {
  transport: Transport;
  secret: Uint8Array;
  modelPath: string;
  fingerprint: string;
  /** Workers to wait for before placing layers. */
  peers: number;
  codec?: Codec;
  /** Layers per stage (host first); default proportional to capacity. */
  split?: number[];
  maxContext?: number;
  /** Streams the placement is planned for (the gateway's max batch); default 8. */
  batch?: number;
  /** What the planner optimises: one stream's latency (default) or throughput with `batch` streams. */
  objective?: "interactive" | "batch";
  /** Link bandwidth the planner assumes (bytes/s): ping measures RTT only. Default 1 Gbit/s. */
  linkBytesPerSec?: number;
  modelId?: string;
  enginePath?: "fast" | "reference";
  /** Compute threads for stage 0's engine (default: the number of cores). */
  threads?: number;
  log?: (msg: string) => void;
}

interface WorkerPeer {
  peer: string;
  info: JoinInfo;
  control: StageLink;
  range?: { start: number; end: number };
  ready: boolean;
  rttMs?: number;
  stats?: StageStatsSnapshot;
  rssBytes?: number;
  waiters: Map<number, (f: Uint8Array) => void>;
}

/** How the layers were placed and what the planner predicts for it, beside what is measured. */
export interface PlacementStatus {
  source: "planner" | "--split";
  objective: "interactive" | "batch";
  /** Link bandwidth assumed by the planner (bytes/s); RTTs are measured. */
  assumedBytesPerSec: number;
  /** One stream, one token: Σ stage compute + Σ hops (ms). */
  predictedMsPerToken: number;
  /** Measured: mean time of single-token steps (one stream decoding alone) at stage 0, ring included; else of all steps. */
  measuredMsPerToken?: number;
  measuredFrom?: "single-token steps" | "all steps";
  predictedTokPerSec: number;
  stages: Array<{ peer: string; predictedMsPerToken: number }>;
  hops: Array<{ from: string; to: string; rttMs: number; predictedMs: number }>;
  notes: string[];
}

export interface MeshStatus {
  protocolVersion: number;
  ready: boolean;
  phase: string;
  codec: string;
  model: string;
  fingerprint: string;
  expectedPeers: number;
  placement?: PlacementStatus;
  /** Steps in flight at most so far, and bytes the last stage sent back per step. */
  pipeline?: { maxInFlight: number; replyBytesPerStep: number };
  stages: Array<{
    index: number;
    peer: string;
    name: string;
    role: "host" | "worker";
    range?: { start: number; end: number };
    rttMs?: number;
    msPerLayer: number;
    freeMemoryBytes: number;
    /** Resident memory of the peer's process (bytes): its share of the weights plus its KV, not the whole model. */
    rssBytes?: number;
    stats?: StageStatsSnapshot;
  }>;
}

export class MeshHost {
  private readonly o: HostOptions;
  readonly invite: string;
  private readonly workers: WorkerPeer[] = [];
  private phase = "waiting for peers";
  private readonly hostCap: StageCapacity;
  private hostRange: { start: number; end: number } | undefined;
  private pipeline: PipelineBackend | undefined;
  /** Resolves with the backend once every stage is ready. */
  readonly backend: Promise<ModelBackend>;
  private resolveBackend!: (b: ModelBackend) => void;
  private rejectBackend!: (e: Error) => void;
  private pingTimer: NodeJS.Timeout | undefined;
  private reqId = 1;
  private readonly nLayer: number;
  private readonly profile: ModelProfile;
  private placementStatus: PlacementStatus | undefined;

  private constructor(o: HostOptions) {
    this.o = o;
    const gguf = openGGUF(o.modelPath);
    try {
      const cfg = readModelConfig((k) => gguf.getValue(k), gguf.tensors);
      this.nLayer = cfg.nLayer;
      this.profile = profileFromGGUF(gguf);
      this.hostCap = measureCapacity(gguf, o.threads);
    } finally {
      gguf.close();
    }
    const inv: Invite = { v: 1, addrs: o.transport.addresses(), secret: Buffer.from(o.secret).toString("hex"), fp: o.fingerprint, model: basename(o.modelPath) };
    this.invite = encodeInvite(inv);
    this.backend = new Promise((res, rej) => {
      this.resolveBackend = res;
      this.rejectBackend = rej;
    });
    this.backend.catch(() => {});
  }

  static async start(o: HostOptions): Promise<MeshHost> {
    const h = new MeshHost(o);
    await o.transport.handle(CONTROL_PROTOCOL, (link) => {
      void h.acceptWorker(link);
    });
    h.pingTimer = setInterval(() => h.pingAll(), 2000);
    h.pingTimer.unref();
    if (o.peers === 0) void h.formMesh();
    return h;
  }

  private log(m: string): void {
    this.o.log?.(m);
  }

  private hs() {
    return { secret: this.o.secret, fingerprint: this.o.fingerprint, peer: this.o.transport.peerId };
  }

  private async acceptWorker(link: StageLink): Promise<void> {
    try {
      await acceptHandshake(link, this.hs());
    } catch (err) {
      this.log(`refused ${link.remotePeer}: ${(err as Error).message}`);
      return;
    }
    const f = await link.next();
    if (!f || readHeader(f).kind !== MsgKind.JOIN) {
      link.close();
      return;
    }
    const info = decodeJson<JoinInfo>(f);
    if (this.workers.length >= this.o.peers) {
      await link.send(encodeJson(MsgKind.REFUSE, { reason: "the mesh is complete (no stage left to assign)", code: "state" })).catch(() => {});
      link.close();
      return;
    }
    const w: WorkerPeer = { peer: link.remotePeer, info, control: link, ready: false, waiters: new Map() };
    this.workers.push(w);
    this.log(`peer ${w.peer} (${info.name}) joined: ${info.msPerLayer.toFixed(3)} ms/layer/token, ${(info.freeMemoryBytes / 2 ** 30).toFixed(1)} GiB free (${this.workers.length}/${this.o.peers})`);
    void this.controlLoop(w);
    if (this.workers.length === this.o.peers) void this.formMesh();
  }

  private async controlLoop(w: WorkerPeer): Promise<void> {
    let why = "closed";
    try {
      for (;;) {
        const f = await w.control.next();
        if (!f) break;
        const h = readHeader(f);
        if (h.kind === MsgKind.RESULT || h.kind === MsgKind.TOKENS) this.pipeline?.onReply(f);
        else if (h.kind === MsgKind.ERROR) {
          if (h.step !== 0 && this.pipeline?.onError(h.step, String(decodeJson(f).message))) continue;
          w.waiters.get(0)?.(f);
        } else if (h.kind === MsgKind.READY) w.waiters.get(0)?.(f);
        else if (h.kind === MsgKind.PONG) w.rttMs = Math.round((performance.now() - Number(decodeJson(f).t)) * 1000) / 1000;
        else if (h.kind === MsgKind.STATS) {
          const st = decodeJson<{ stats: StageStatsSnapshot; rssBytes?: number }>(f);
          w.stats = st.stats;
          if (st.rssBytes !== undefined) w.rssBytes = st.rssBytes;
          w.waiters.get(h.step)?.(f);
        } else if (h.kind === MsgKind.PROBED) {
          w.waiters.get(h.step)?.(f);
        } else throw new Error(`unexpected ${kindName(h.kind)} on a control link`);
      }
    } catch (err) {
      why = (err as Error).message;
    }
    this.log(`peer ${w.peer} left (${why})`);
    w.ready = false;
    this.pipeline?.failAll(`mesh stage ${w.peer} is gone (${why})`);
    this.rejectBackend(new Error(`peer ${w.peer} left before the mesh was ready`));
    this.phase = "degraded: a stage left";
  }

  private pingAll(): void {
    for (const w of this.workers) w.control.send(encodeJson(MsgKind.PING, { t: performance.now() })).catch(() => {});
  }

  private async formMesh(): Promise<void> {
    try {
      const nStages = this.workers.length + 1;
      this.phase = "measuring links";
      const cluster = await this.measureCluster();
      const opts: Partial<PlanOptions> = {
        stages: nStages, firstPeer: this.o.transport.peerId, codec: codecName(this.o.codec ?? Codec.F32) as PlanOptions["codec"], batch: this.o.batch ?? 8,
        contextTokens: this.o.maxContext && this.o.maxContext > 0 ? this.o.maxContext : 512, keepGroups: false, maxHopSec: Infinity, objective: this.o.objective ?? "interactive",
      };
      let ranges: Array<{ start: number; end: number }> = [];
      let chosen: Plan | undefined;
      if (this.o.split) {
        const split = this.o.split;
        if (split.length !== nStages || split.reduce((a, b) => a + b, 0) !== this.nLayer || split.some((x) => !Number.isInteger(x) || x < 1)) {
          throw new Error(`layer split ${split.join(",")} does not fit ${nStages} stages and ${this.nLayer} layers`);
        }
        let s = 0;
        for (const k of split) {
          ranges.push({ start: s, end: s + k });
          s += k;
        }
        const ids = [this.o.transport.peerId, ...this.workers.map((w) => w.peer)];
        try {
          chosen = evaluatePlacement(this.profile, cluster, ranges.map((r, i) => ({ peer: ids[i], ...r })), opts);
        } catch (err) {
          this.log(`placement (--split): no prediction: ${(err as Error).message}`);
        }
      } else {
        chosen = plan(this.profile, cluster, opts);
        // Ring order: the planner's (the host first); workers follow it.
        const order = chosen.placement.slice(1).map((st) => this.workers.find((w) => w.peer === st.peer)!);
        this.workers.splice(0, this.workers.length, ...order);
        ranges = chosen.placement.map((st) => ({ start: st.start, end: st.end }));
      }
      if (chosen) {
        const p = chosen.prediction;
        this.placementStatus = {
          source: this.o.split ? "--split" : "planner", objective: this.o.objective ?? "interactive", assumedBytesPerSec: this.linkBytesPerSec, predictedMsPerToken: p.decodeTokenSec * 1000, predictedTokPerSec: p.throughputTokPerSec,
          stages: p.stages.map((st) => ({ peer: st.peer, predictedMsPerToken: st.decodeSec * 1000 })),
          hops: p.hops.map((h) => ({ from: h.from, to: h.to, rttMs: h.rttSec * 1000, predictedMs: h.tokenSec * 1000 })),
          notes: chosen.notes,
        };
        this.log(`placement predicted: ${(p.decodeTokenSec * 1000).toFixed(2)} ms/token for one stream, ${p.throughputTokPerSec.toFixed(1)} tok/s with ${opts.batch} streams`);
      }
      this.phase = "loading stages";
      this.log(`placement: ${ranges.map((r, i) => `stage ${i} [${r.start}, ${r.end})`).join(", ")}`);
      const codec = this.o.codec ?? Codec.F32;
      const maxContext = this.o.maxContext ?? 0;
      // Downstream stages load first.
      for (let i = this.workers.length - 1; i >= 0; i--) {
        const w = this.workers[i];
        const next = i + 1 < this.workers.length ? this.workers[i + 1].info.addrs : [];
        const a: Assign = { range: ranges[i + 1], codec, maxContext, next, stageIndex: i + 1, nStages: ranges.length };
        const reply = new Promise<Uint8Array>((res) => w.waiters.set(0, res));
        await w.control.send(encodeJson(MsgKind.ASSIGN, a));
        const f = await reply;
        w.waiters.delete(0);
        if (readHeader(f).kind !== MsgKind.READY) throw new Error(`peer ${w.peer} failed to load layers [${a.range.start}, ${a.range.end}): ${String(decodeJson(f).message)}`);
        w.range = a.range;
        w.ready = true;
      }
      this.hostRange = ranges[0];
      const local = LocalBackend.load({
        path: this.o.modelPath, range: ranges[0], enginePath: this.o.enginePath ?? "fast", ...(this.o.threads !== undefined ? { threads: this.o.threads } : {}),
        ...(this.o.maxContext !== undefined ? { maxContext: this.o.maxContext } : {}), ...(this.o.modelId ? { id: this.o.modelId } : {}),
      });
      let down: StageLink | undefined;
      if (this.workers.length > 0) {
        down = await this.o.transport.dial(this.workers[0].info.addrs, STAGE_PROTOCOL);
        await dialHandshake(down, "stage", this.hs());
      }
      this.pipeline = new PipelineBackend(local, down, codec, this.nLayer, ranges.length, () => this.close());
      this.phase = "ready";
      this.log(`mesh ready: ${ranges.length} stage(s), codec ${codecName(codec)}`);
      this.resolveBackend(this.pipeline);
    } catch (err) {
      this.phase = `failed: ${(err as Error).message}`;
      this.rejectBackend(err as Error);
    }
  }

  private get linkBytesPerSec(): number {
    return this.o.linkBytesPerSec ?? 125e6;
  }

  /** Asks a worker and waits for the reply with the same step id (ms at most). */
  private async ask(w: WorkerPeer, kind: number, body: unknown, timeoutMs: number): Promise<Uint8Array | undefined> {
    const id = this.reqId++;
    const got = new Promise<Uint8Array | undefined>((res) => {
      w.waiters.set(id, res);
      setTimeout(() => res(undefined), timeoutMs).unref();
    });
    await w.control.send(encodeJson(kind, body, id)).catch(() => {});
    const f = await got;
    w.waiters.delete(id);
    return f;
  }

  /**
   * The cluster as the planner sees it: every peer's measured per-layer time and free memory; RTTs by
   * libp2p ping, host ↔ worker from here and worker → worker from each worker (PROBE). Bandwidth is
   * not measured: the planner assumes linkBytesPerSec.
   */
  private async measureCluster(): Promise<Cluster> {
    const host = this.o.transport.peerId;
    const bw = this.linkBytesPerSec;
    const peers = [
      { id: host, memBytes: this.hostCap.freeMemoryBytes, decodeSecPerLayer: this.hostCap.msPerLayer / 1000 },
      ...this.workers.map((w) => ({ id: w.peer, memBytes: w.info.freeMemoryBytes, decodeSecPerLayer: w.info.msPerLayer / 1000 })),
    ];
    const links: Link[] = [];
    for (const w of this.workers) {
      let rtt: number | undefined;
      try {
        if (this.o.transport.ping) rtt = await this.o.transport.ping(w.info.addrs);
      } catch (err) {
        this.log(`could not ping ${w.peer}: ${(err as Error).message}`);
      }
      rtt ??= (w.rttMs ?? 1) / 1000;
      w.rttMs = rtt * 1000;
      links.push({ from: host, to: w.peer, rttSec: rtt, bytesPerSec: bw }, { from: w.peer, to: host, rttSec: rtt, bytesPerSec: bw });
    }
    await Promise.all(
      this.workers.map(async (w) => {
        const targets = this.workers.filter((x) => x !== w).map((x) => ({ peer: x.peer, addrs: x.info.addrs }));
        if (targets.length === 0) return;
        const f = await this.ask(w, MsgKind.PROBE, { targets }, 20_000);
        const rtts = f ? decodeJson<{ rttSec: Record<string, number> }>(f).rttSec : {};
        for (const t of targets) {
          // Unmeasured: assume the worse of the two peers' RTTs to the host.
          const fallback = Math.max(...[w, this.workers.find((x) => x.peer === t.peer)!].map((x) => (x.rttMs ?? 1) / 1000));
          links.push({ from: w.peer, to: t.peer, rttSec: rtts[t.peer] ?? fallback, bytesPerSec: bw });
        }
      }),
    );
    return { peers, links };
  }

  /** Peers, ranges, RTTs and per-stage timings (asks each worker for fresh stats, 1 s at most). */
  async status(): Promise<MeshStatus> {
    await Promise.all(
      this.workers.map(async (w) => {
        const id = this.reqId++;
        const got = new Promise<void>((res) => {
          w.waiters.set(id, () => res());
          setTimeout(res, 1000).unref();
        });
        await w.control.send(encodeJson(MsgKind.STATS_REQ, {}, id)).catch(() => {});
        await got;
        w.waiters.delete(id);
      }),
    );
    return {
      protocolVersion: PROTOCOL_VERSION,
      ready: this.phase === "ready",
      phase: this.phase,
      codec: codecName(this.o.codec ?? Codec.F32),
      model: basename(this.o.modelPath),
      fingerprint: this.o.fingerprint,
      expectedPeers: this.o.peers,
      ...(this.placementStatus ? { placement: { ...this.placementStatus, ...this.measuredPerToken() } } : {}),
      ...(this.pipeline ? { pipeline: { maxInFlight: this.pipeline.maxInFlight, replyBytesPerStep: Math.round(this.pipeline.replyBytes / Math.max(1, this.pipeline.stats.steps)) } } : {}),
      stages: [
        {
          index: 0, peer: this.o.transport.peerId, name: "host", role: "host", ...(this.hostRange ? { range: this.hostRange } : {}),
          msPerLayer: this.hostCap.msPerLayer, freeMemoryBytes: this.hostCap.freeMemoryBytes, rssBytes: process.memoryUsage().rss, ...(this.pipeline ? { stats: this.pipeline.stats.snapshot() } : {}),
        },
        ...this.workers.map((w, i) => ({
          index: i + 1, peer: w.peer, name: w.info.name, role: "worker" as const, ...(w.range ? { range: w.range } : {}), ...(w.rttMs !== undefined ? { rttMs: w.rttMs } : {}),
          msPerLayer: w.info.msPerLayer, freeMemoryBytes: w.info.freeMemoryBytes, ...(w.rssBytes !== undefined ? { rssBytes: w.rssBytes } : {}), ...(w.stats ? { stats: w.stats } : {}),
        })),
      ],
    };
  }

  private measuredPerToken(): Pick<PlacementStatus, "measuredMsPerToken" | "measuredFrom"> {
    const p = this.pipeline;
    if (!p) return {};
    if (p.soloSteps > 0) return { measuredMsPerToken: p.soloMs / p.soloSteps, measuredFrom: "single-token steps" };
    if (p.stats.steps > 0) return { measuredMsPerToken: (p.stats.computeMs + p.ringMs) / p.stats.steps, measuredFrom: "all steps" };
    return {};
  }

  async close(): Promise<void> {
    clearInterval(this.pingTimer);
    for (const w of this.workers) {
      await w.control.send(encodeJson(MsgKind.BYE, {})).catch(() => {});
      w.control.close();
    }
    await this.o.transport.stop().catch(() => {});
  }
}

// The mesh host (`llmesh serve --mesh`): stage 0 and the API. Accepts workers that prove the mesh
// secret and hold the same model file, places layers (proportional to capacity, within memory),
// has the stages load downstream-first, then serves a PipelineBackend: one FORWARD per scheduler
// step goes down the ring, the last stage sends the logits straight back (N one-way hops).
import { basename } from "node:path";
import type { ChatMessage } from "../gateway/openai-types.ts";
import type { BackendInfo, BatchEntry, ModelBackend, SamplingParams, StreamDecoder, TokenSampler } from "../gateway/backend.ts";
import { LocalBackend } from "../gateway/local-backend.ts";
import { openGGUF } from "../gguf/reader.ts";
import { readModelConfig } from "../engine/model-config.ts";
import { Codec, codecName } from "./codecs.ts";
import { acceptHandshake, dialHandshake } from "./handshake.ts";
import { encodeInvite, type Invite } from "./identity.ts";
import { bytesPerLayer, measureCapacity, proportionalSplit, type StageCapacity } from "./placement.ts";
import {
  CONTROL_PROTOCOL, decodeJson, decodeResult, encodeForward, encodeFree, encodeJson, kindName, MsgKind, PROTOCOL_VERSION, readHeader, STAGE_PROTOCOL,
  type Assign, type ForwardEntry, type JoinInfo,
} from "./stage-protocol.ts";
import { StageStats, type StageStatsSnapshot } from "./stage-stats.ts";
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
  modelId?: string;
  enginePath?: "fast" | "reference";
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
  waiters: Map<number, (f: Uint8Array) => void>;
}

export interface MeshStatus {
  protocolVersion: number;
  ready: boolean;
  phase: string;
  codec: string;
  model: string;
  fingerprint: string;
  expectedPeers: number;
  stages: Array<{
    index: number;
    peer: string;
    name: string;
    role: "host" | "worker";
    range?: { start: number; end: number };
    rttMs?: number;
    msPerLayer: number;
    freeMemoryBytes: number;
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
  private readonly layerBytes: number;

  private constructor(o: HostOptions) {
    this.o = o;
    const gguf = openGGUF(o.modelPath);
    try {
      const cfg = readModelConfig((k) => gguf.getValue(k), gguf.tensors);
      this.nLayer = cfg.nLayer;
      this.layerBytes = bytesPerLayer(gguf, cfg.nLayer);
      this.hostCap = measureCapacity(gguf);
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
        if (h.kind === MsgKind.RESULT) this.pipeline?.onResult(f);
        else if (h.kind === MsgKind.ERROR) {
          if (h.step !== 0 && this.pipeline?.onError(h.step, String(decodeJson(f).message))) continue;
          w.waiters.get(0)?.(f);
        } else if (h.kind === MsgKind.READY) w.waiters.get(0)?.(f);
        else if (h.kind === MsgKind.PONG) w.rttMs = Math.round((performance.now() - Number(decodeJson(f).t)) * 1000) / 1000;
        else if (h.kind === MsgKind.STATS) {
          w.stats = decodeJson<{ stats: StageStatsSnapshot }>(f).stats;
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
      const caps = [this.hostCap, ...this.workers.map((w) => ({ msPerLayer: w.info.msPerLayer, freeMemoryBytes: w.info.freeMemoryBytes }))];
      const split = this.o.split ?? proportionalSplit(this.nLayer, caps, this.layerBytes);
      if (split.length !== caps.length || split.reduce((a, b) => a + b, 0) !== this.nLayer || split.some((x) => x < 1)) {
        throw new Error(`layer split ${split.join(",")} does not fit ${caps.length} stages and ${this.nLayer} layers`);
      }
      const ranges: Array<{ start: number; end: number }> = [];
      let s = 0;
      for (const k of split) {
        ranges.push({ start: s, end: s + k });
        s += k;
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
        path: this.o.modelPath, range: ranges[0], enginePath: this.o.enginePath ?? "fast",
        ...(this.o.maxContext !== undefined ? { maxContext: this.o.maxContext } : {}), ...(this.o.modelId ? { id: this.o.modelId } : {}),
      });
      let down: StageLink | undefined;
      if (this.workers.length > 0) {
        down = await this.o.transport.dial(this.workers[0].info.addrs, STAGE_PROTOCOL);
        await dialHandshake(down, "stage", this.hs());
      }
      this.pipeline = new PipelineBackend(local, down, codec, this.nLayer, () => this.close());
      this.phase = "ready";
      this.log(`mesh ready: ${ranges.length} stage(s), codec ${codecName(codec)}`);
      this.resolveBackend(this.pipeline);
    } catch (err) {
      this.phase = `failed: ${(err as Error).message}`;
      this.rejectBackend(err as Error);
    }
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
      stages: [
        {
          index: 0, peer: this.o.transport.peerId, name: "host", role: "host", ...(this.hostRange ? { range: this.hostRange } : {}),
          msPerLayer: this.hostCap.msPerLayer, freeMemoryBytes: this.hostCap.freeMemoryBytes, ...(this.pipeline ? { stats: this.pipeline.stats.snapshot() } : {}),
        },
        ...this.workers.map((w, i) => ({
          index: i + 1, peer: w.peer, name: w.info.name, role: "worker" as const, ...(w.range ? { range: w.range } : {}), ...(w.rttMs !== undefined ? { rttMs: w.rttMs } : {}),
          msPerLayer: w.info.msPerLayer, freeMemoryBytes: w.info.freeMemoryBytes, ...(w.stats ? { stats: w.stats } : {}),
        })),
      ],
    };
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

interface PendingStep {
  batch: readonly BatchEntry[];
  resolve: (rows: Float32Array[]) => void;
  reject: (e: Error) => void;
  t0: number;
  tokens: number;
}

/** ModelBackend over the pipeline: stage 0 runs here, the rest over the ring. */
export class PipelineBackend implements ModelBackend {
  readonly info: BackendInfo;
  private readonly local: LocalBackend;
  private readonly down: StageLink | undefined;
  private readonly codec: Codec;
  private readonly onClose: () => Promise<void>;
  private readonly pending = new Map<number, PendingStep>();
  private step = 0;
  private sendChain: Promise<void> = Promise.resolve();
  private failure: string | undefined;
  readonly stats = new StageStats();
  /** Ring time (send → result) per step, summed. */
  ringMs = 0;

  constructor(local: LocalBackend, down: StageLink | undefined, codec: Codec, nLayer: number, onClose: () => Promise<void>) {
    this.local = local;
    this.down = down;
    this.codec = codec;
    this.onClose = onClose;
    const c = local.engine.config;
    this.info = { ...local.info, kvBytesPerToken: nLayer * c.nHeadKv * (c.headDim + c.headDimV) * 4 };
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
    if (this.down && !this.failure) this.enqueue(encodeFree([seq]));
  }

  private enqueue(frame: Uint8Array): Promise<void> {
    const link = this.down!;
    this.sendChain = this.sendChain.then(() => link.send(frame));
    return this.sendChain;
  }

  forward(batch: readonly BatchEntry[]): Float32Array[] | Promise<Float32Array[]> {
    if (!this.down) return this.local.forward(batch);
    if (this.failure) return Promise.reject(new Error(this.failure));
    const t0 = performance.now();
    const hidden = this.local.engine.forward(batch.map((e) => ({ seq: e.seq, tokens: e.tokens })));
    const t1 = performance.now();
    const step = (this.step = (this.step % 0xffffffff) + 1);
    const entries: ForwardEntry[] = batch.map((e) => ({ seq: e.seq, nTokens: e.tokens.length, logits: e.logits === "last" }));
    const frame = encodeForward(step, this.codec, entries, hidden, this.local.engine.config.nEmbd);
    let tokens = 0;
    for (const e of entries) tokens += e.nTokens;
    this.stats.computeMs += t1 - t0;
    this.stats.steps++;
    this.stats.tokens += tokens;
    this.stats.bytesOut += frame.length + 4;
    const p = new Promise<Float32Array[]>((resolve, reject) => this.pending.set(step, { batch, resolve, reject, t0: t1, tokens }));
    this.enqueue(frame).then(
      () => {
        this.stats.transferMs += performance.now() - t1;
      },
      (err: Error) => this.onError(step, `sending to stage 1 failed: ${err.message}`),
    );
    return p;
  }

  onResult(f: Uint8Array): void {
    const r = decodeResult(f);
    const p = this.pending.get(r.step);
    if (!p) return;
    this.pending.delete(r.step);
    this.ringMs += performance.now() - p.t0;
    const bySeq = new Map<number, Float32Array>();
    r.seqs.forEach((s, i) => bySeq.set(s, r.rows[i]));
    p.resolve(p.batch.map((e) => (e.logits === "last" ? (bySeq.get(e.seq) ?? new Float32Array(0)) : new Float32Array(0))));
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

// The mesh host (`llmesh serve --mesh`): stage 0 and the API. Accepts workers that prove the mesh
// secret and hold the same model file, measures the links (libp2p ping, host ↔ worker and worker →
// worker), places layers with the planner (src/planner: measured per-layer times, memory, RTTs; the
// host is stage 0; `--split` overrides), has the stages load downstream-first, then serves a
// PipelineBackend: one FORWARD per scheduler step goes down the ring, the last stage samples and sends
// the token ids straight back (N one-way hops); up to N steps are in flight at once.
//
// Membership (failover): a worker is gone when its control link closes, when it stays silent past the
// liveness limit (liveness.ts), when it sends a malformed frame (to us, or to the next stage, which
// reports a FAULT), or when sending to it fails. It is quarantined (its links closed) and the host
// re-plans over the peers left (spares included), assigns the new ranges with a new epoch, and resumes
// the PipelineBackend on the new ring, which replays every live sequence (see pipeline-backend.ts). A
// peer that joins later is measured and kept as a spare unless the planner says switching pays
// (shouldReplan); then the mesh drains between steps and switches. A worker that leaves (LEAVE) is
// drained off the same way before it gets BYE. While no placement can hold the model, steps wait
// `recoveryTimeoutMs` and then fail with 503. The head itself is not replicated: if it dies, clients
// lose their connections and workers stop (see README, Mesh → failover).
import { basename } from "node:path";
import type { ModelBackend } from "../backend/backend.ts";
import { LocalBackend } from "../backend/local-backend.ts";
import { openGGUF } from "../gguf/reader.ts";
import { readModelConfig } from "../engine/model-config.ts";
import { Codec, codecName } from "./codecs.ts";
import { serveBandwidthProbe } from "./bandwidth-probe.ts";
import { acceptHandshake, dialHandshake } from "./handshake.ts";
import { encodeInvite, type Invite } from "./identity.ts";
import { LinkTable, type ProbeReply } from "./link-table.ts";
import { DEFAULT_LIVENESS, Liveness, type LivenessOptions } from "./liveness.ts";
import { processMemory, type MeshEvent, type MeshEventType, type MeshStatus, type PlacementStatus } from "./mesh-status.ts";
import { measureCapacity, type StageCapacity } from "./placement.ts";
import { profileFromGGUF, shouldReplan, type Cluster, type Plan } from "../planner/index.ts";
import { PlacementPolicy } from "./placement-policy.ts";
import { CONTROL_PROTOCOL, decodeJson, encodeJson, kindName, MsgKind, PROTOCOL_VERSION, readHeader, STAGE_PROTOCOL, type Assign, type JoinInfo } from "./stage-protocol.ts";
import type { StageStatsSnapshot } from "./stage-stats.ts";
import { PipelineBackend, type Ring } from "./pipeline-backend.ts";
import type { StageLink, Transport } from "./transport.ts";

export type { MeshEvent, MeshStatus, PlacementStatus } from "./mesh-status.ts";

export interface HostOptions {
  transport: Transport;
  secret: Uint8Array;
  modelPath: string;
  fingerprint: string;
  /** Workers to wait for before placing layers. */
  peers: number;
  codec?: Codec;
  /** Layers per stage (host first); default proportional to capacity. Used for the first placement only. */
  split?: number[];
  maxContext?: number;
  /** Streams the placement is planned for (the gateway's max batch); default 8. */
  batch?: number;
  /** What the planner optimises: one stream's latency (default) or throughput with `batch` streams. */
  objective?: "interactive" | "batch";
  /**
   * Link bandwidth for the planner (bytes/s). Default: measured per directed link by the bandwidth
   * probe (bandwidth-probe.ts); given, it overrides the probe (and 1 Gbit/s is the fallback when a
   * probe fails).
   */
  linkBytesPerSec?: number;
  modelId?: string;
  enginePath?: "fast" | "reference";
  /** Compute threads for stage 0's engine (default: the number of cores). */
  threads?: number;
  /** Memory this peer offers for weights and KV (bytes; default: the machine's free memory). */
  memoryBytes?: number;
  /** Failure detection (default: a beat every 250 ms, dead after 4 missed). */
  liveness?: LivenessOptions;
  /** How long steps wait for a ring while none can be built, ms (default 30 s); then 503. */
  recoveryTimeoutMs?: number;
  /**
   * Let the planner choose how many peers to use (fewer stages when splitting does not pay; a peer that
   * cannot help waits as a spare). Default: every peer that joined is a stage (`--peers N` → N + 1).
   */
  autoStages?: boolean;
  /** Every link's RTT and bandwidth are measured again this often (ms; default 5 min; 0 = never). */
  probeIntervalMs?: number;
  /** A joiner replaces the running placement only when the planner predicts at least this gain (default 0.1). */
  replanThreshold?: number;
  log?: (msg: string) => void;
  /** Every membership event (join, leave, death, re-plan, replay…), for metrics. */
  onEvent?: (e: MeshEvent) => void;
}

interface WorkerPeer {
  peer: string;
  info: JoinInfo;
  control: StageLink;
  range?: { start: number; end: number };
  /** "spare": joined, holds no layers; "leaving": asked to leave; "gone": dead or left. */
  state: "spare" | "stage" | "leaving" | "gone";
  rttMs?: number;
  stats?: StageStatsSnapshot;
  memory?: { rssBytes: number; heapBytes: number; kernelBytes: number };
  waiters: Map<number, (f: Uint8Array | undefined) => void>;
}

export class MeshHost {
  private readonly o: HostOptions;
  readonly invite: string;
  /** Every joined, live worker; ring order = the order of the `stage` ones. */
  private workers: WorkerPeer[] = [];
  private phase = "waiting for peers";
  private readonly hostCap: StageCapacity;
  private hostRange: { start: number; end: number } | undefined;
  private pipeline: PipelineBackend | undefined;
  /** Resolves with the backend once every stage is ready. */
  readonly backend: Promise<ModelBackend>;
  private resolveBackend!: (b: ModelBackend) => void;
  private rejectBackend!: (e: Error) => void;
  private beatTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Times every link was re-measured (the periodic refresh). */
  private linksRefreshed = 0;
  private readonly liveness: Liveness;
  private reqId = 1;
  private readonly nLayer: number;
  private readonly policy: PlacementPolicy;
  private placementStatus: PlacementStatus | undefined;
  private current: Plan | undefined;
  private epoch = 0;
  /** Measured links (RTT, bandwidth), kept across re-plans. */
  private readonly links: LinkTable;
  /** Re-plans run one at a time; `again` asks for one more after the running one. */
  private reconfiguring: Promise<void> | undefined;
  private again: { reason: string; drain: boolean } | undefined;
  private formed = false;
  private closing = false;
  /** When the ring went down (failover), for the recovery time. */
  private downSince: number | undefined;
  private readonly events: Partial<Record<MeshEventType, number>> = {};
  private worstRecoveryMs = 0;

  private constructor(o: HostOptions) {
    this.o = o;
    const gguf = openGGUF(o.modelPath);
    try {
      const cfg = readModelConfig((k) => gguf.getValue(k), gguf.tensors);
      this.nLayer = cfg.nLayer;
      this.policy = new PlacementPolicy(profileFromGGUF(gguf), {
        firstPeer: o.transport.peerId, codec: o.codec ?? Codec.F32, batch: o.batch ?? 8, maxContext: o.maxContext ?? 0, objective: o.objective ?? "interactive", autoStages: o.autoStages ?? false,
      });
      this.hostCap = measureCapacity(gguf, o.threads, o.memoryBytes);
    } finally {
      gguf.close();
    }
    this.liveness = new Liveness(o.liveness ?? DEFAULT_LIVENESS);
    this.links = new LinkTable({
      transport: o.transport, log: (m) => this.log(m), ...(o.linkBytesPerSec !== undefined ? { fixedBytesPerSec: o.linkBytesPerSec } : {}),
      askProbe: async (w, targets, bandwidth) => {
        const f = await this.ask(w as WorkerPeer, MsgKind.PROBE, { targets, bandwidth }, 8000 * targets.length);
        return f ? decodeJson<ProbeReply>(f) : undefined;
      },
    });
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
    await serveBandwidthProbe(o.transport);
    h.beatTimer = setInterval(() => h.beat(), h.liveness.options.beatMs);
    h.beatTimer.unref();
    const every = o.probeIntervalMs ?? 300_000;
    if (every > 0) {
      h.probeTimer = setInterval(() => h.refreshLinks(), every);
      h.probeTimer.unref();
    }
    if (o.peers === 0) h.requestReconfigure("the first placement", false);
    return h;
  }

  private log(m: string): void {
    this.o.log?.(m);
  }

  private event(e: MeshEvent): void {
    this.events[e.type] = (this.events[e.type] ?? 0) + 1;
    this.o.onEvent?.(e);
  }

  private hs() {
    return { secret: this.o.secret, fingerprint: this.o.fingerprint, peer: this.o.transport.peerId };
  }

  private get live(): WorkerPeer[] {
    return this.workers.filter((w) => w.state !== "gone");
  }

  /** Workers holding layers, in ring order (stage 1 first). */
  private get stages(): WorkerPeer[] {
    return this.ringPeers.filter((w) => w.state !== "gone" && w.range);
  }

  private async acceptWorker(link: StageLink): Promise<void> {
    try {
      await acceptHandshake(link, this.hs());
    } catch (err) {
      this.log(`refused ${link.remotePeer}: ${(err as Error).message}`);
      return;
    }
    const f = await link.next().catch(() => undefined);
    if (!f || readHeader(f).kind !== MsgKind.JOIN) {
      link.close();
      return;
    }
    const info = decodeJson<JoinInfo>(f);
    if (this.closing) {
      link.close();
      return;
    }
    const prev = this.workers.find((w) => w.peer === link.remotePeer && w.state !== "gone");
    if (prev) this.markGone(prev, "it joined again (a restart)", "death");
    const w: WorkerPeer = { peer: link.remotePeer, info, control: link, state: "spare", waiters: new Map() };
    this.workers.push(w);
    this.liveness.heard(w.peer);
    this.log(`peer ${w.peer} (${info.name}) joined: ${info.msPerLayer.toFixed(3)} ms/layer/token, ${(info.freeMemoryBytes / 2 ** 30).toFixed(1)} GiB free (${this.live.length}/${this.o.peers})`);
    this.event({ type: "join", peer: w.peer });
    void this.controlLoop(w);
    if (!this.formed) {
      if (this.live.length >= this.o.peers) this.requestReconfigure("the first placement", false);
    } else if (!this.pipeline || this.pipeline.isPaused || this.phase !== "ready") {
      // No working ring (or one being rebuilt): the joiner may be what is missing.
      this.requestReconfigure(`peer ${w.peer} joined while the mesh is ${this.phase}`, false);
    } else {
      void this.considerJoiner(w);
    }
  }

  private async controlLoop(w: WorkerPeer): Promise<void> {
    let why = "its connection closed";
    try {
      for (;;) {
        const f = await w.control.next();
        if (!f) break;
        if (w.state === "gone") return;
        this.liveness.heard(w.peer);
        const h = readHeader(f);
        if (h.kind === MsgKind.RESULT || h.kind === MsgKind.TOKENS) this.pipeline?.onReply(f);
        else if (h.kind === MsgKind.ERROR) {
          if (h.step !== 0 && this.pipeline?.onError(h.step, String(decodeJson(f).message))) continue;
          w.waiters.get(0)?.(f);
        } else if (h.kind === MsgKind.READY) w.waiters.get(0)?.(f);
        else if (h.kind === MsgKind.PONG) w.rttMs = Math.round((performance.now() - Number(decodeJson(f).t)) * 1000) / 1000;
        else if (h.kind === MsgKind.STATS) {
          const st = decodeJson<{ stats: StageStatsSnapshot; rssBytes?: number; heapBytes?: number; kernelBytes?: number }>(f);
          w.stats = st.stats;
          if (st.rssBytes !== undefined) w.memory = { rssBytes: st.rssBytes, heapBytes: st.heapBytes ?? 0, kernelBytes: st.kernelBytes ?? 0 };
          w.waiters.get(h.step)?.(f);
        } else if (h.kind === MsgKind.PROBED) {
          w.waiters.get(h.step)?.(f);
        } else if (h.kind === MsgKind.LEAVE) {
          void this.onLeave(w);
        } else if (h.kind === MsgKind.FAULT) {
          const { peer, message } = decodeJson<{ peer: string; message: string }>(f);
          const bad = this.workers.find((x) => x.peer === peer && x.state !== "gone");
          if (bad) this.markGone(bad, `it sent a malformed frame to ${w.peer} (${message})`, "quarantine");
        } else throw new Error(`unexpected ${kindName(h.kind)} on a control link`);
      }
    } catch (err) {
      why = `its control link failed: ${(err as Error).message}`;
    }
    if (w.state !== "gone") this.markGone(w, why, "death");
  }

  /** Takes a peer out of the mesh for good (dead, quarantined or left) and re-plans if it held layers. */
  private markGone(w: WorkerPeer, why: string, type: "death" | "quarantine" | "leave"): void {
    if (w.state === "gone") return;
    const held = w.range !== undefined && (w.state === "stage" || w.state === "leaving");
    w.state = "gone";
    this.liveness.forget(w.peer);
    for (const r of w.waiters.values()) r(undefined);
    w.waiters.clear();
    if (type !== "leave") w.control.send(encodeJson(MsgKind.BYE, { reason: why })).catch(() => {});
    w.control.close();
    this.workers = this.workers.filter((x) => x !== w);
    this.log(`peer ${w.peer} (${w.info.name}) ${type === "leave" ? "left" : type === "quarantine" ? "quarantined" : "is gone"}: ${why}`);
    this.event({ type, peer: w.peer, reason: why });
    if (this.closing) return;
    if (!this.formed) {
      this.rejectBackend(new Error(`peer ${w.peer} left before the mesh was ready`));
      this.phase = "failed: a peer left before the mesh was ready";
      return;
    }
    if (held) {
      // Also while a planned switch is draining: the steps this stage held will never come back, so
      // they are kept for the next ring instead of being waited for.
      if (this.pipeline) {
        this.pipeline.suspend();
        this.downSince ??= performance.now();
      }
      this.phase = `recovering: ${w.peer} ${type === "leave" ? "left" : "is gone"}`;
      this.requestReconfigure(`peer ${w.peer} ${type === "leave" ? "left" : "is gone"} (${why})`, false);
    }
  }

  private async onLeave(w: WorkerPeer): Promise<void> {
    if (w.state === "gone") return;
    this.log(`peer ${w.peer} (${w.info.name}) is leaving: moving its layers off`);
    if (w.state === "spare" || !w.range) {
      await w.control.send(encodeJson(MsgKind.BYE, { reason: "leave granted" })).catch(() => {});
      this.markGone(w, "it asked to leave", "leave");
      return;
    }
    w.state = "leaving";
    this.requestReconfigure(`peer ${w.peer} is leaving`, true);
  }

  /** Heartbeat: PING every peer; declare dead those silent past the limit (allowing for their work in flight). */
  private beat(): void {
    for (const w of this.live) w.control.send(encodeJson(MsgKind.PING, { t: performance.now() })).catch(() => {});
    // Let the replies already received be read before judging (setImmediate runs after I/O).
    setImmediate(() => {
      const tokens = this.pipeline?.tokensInFlight ?? 0;
      // Bandwidth probes share the peers' connections and can hold their PONGs back: while they run,
      // silence is judged more leniently (a closed connection still counts at once).
      const probing = this.measuring > 0 ? PROBING_ALLOWANCE_MS : 0;
      const dead = this.liveness.check((peer) => {
        const w = this.workers.find((x) => x.peer === peer);
        if (!w?.range || tokens === 0) return probing;
        // A generous allowance: 4× the measured per-token compute of its layers for every token in flight.
        return probing + 4 * tokens * w.info.msPerLayer * (w.range.end - w.range.start);
      });
      for (const peer of dead) {
        const w = this.workers.find((x) => x.peer === peer);
        if (w) this.markGone(w, `silent for ${Math.round(this.liveness.silentMs(peer) ?? 0)} ms (${this.liveness.options.missBeats} missed beats)`, "death");
      }
    });
  }

  /** A joiner after the first placement: kept as a spare unless the planner says switching pays. */
  private async considerJoiner(w: WorkerPeer): Promise<void> {
    await this.considerReplan(`peer ${w.peer} joined`, () => w.state === "spare", `peer ${w.peer} kept as a spare`);
  }

  /**
   * Re-measures what is missing (or everything, after `refresh`), then switches placement only when
   * the planner predicts a gain of at least the threshold (hysteresis: no reshuffle for less).
   */
  private async considerReplan(why: string, still: () => boolean, keptMsg: string): Promise<void> {
    try {
      const cluster = await this.measureCluster();
      if (!still() || !this.current || this.phase !== "ready") return;
      const running = [{ peer: this.o.transport.peerId, ...this.hostRange! }, ...this.stages.map((s) => ({ peer: s.peer, ...s.range! }))];
      const current = this.policy.evaluate(cluster, running);
      if (current) this.setPlacementStatus(current, this.placementStatus?.source ?? "planner", false);
      const candidate = this.policy.best(cluster, [this.stageCount, this.stageCount + 1]);
      if (shouldReplan(current, candidate, this.o.replanThreshold ?? 0.1)) {
        this.requestReconfigure(`${why} and the planner predicts ${fmtCost(candidate)} instead of ${current ? fmtCost(current) : "an invalid placement"}`, true);
      } else {
        this.log(`${keptMsg}: the planner predicts no gain worth a switch (${current ? fmtCost(current) : "?"} now, ${fmtCost(candidate)} otherwise)`);
      }
    } catch (err) {
      this.log(`could not re-evaluate the placement (${why}): ${(err as Error).message}`);
    }
  }

  /** Periodic re-measurement of every link (RTT and bandwidth), with a re-plan if it pays. */
  private refreshLinks(): void {
    if (this.phase !== "ready" || this.reconfiguring || this.measuring > 0 || this.live.length === 0) return;
    this.links.clear();
    this.linksRefreshed++;
    void this.considerReplan("the links were re-measured", () => true, "placement kept after re-measuring the links");
  }

  /** Stages of the running placement (host included; 0 before the first). */
  private get stageCount(): number {
    return this.hostRange ? this.stages.length + 1 : 0;
  }

  private requestReconfigure(reason: string, drain: boolean): void {
    if (this.closing) return;
    if (this.reconfiguring) {
      this.again = { reason: this.again ? `${this.again.reason}; ${reason}` : reason, drain: (this.again?.drain ?? true) && drain };
      return;
    }
    this.reconfiguring = this.reconfigure(reason, drain).finally(() => {
      this.reconfiguring = undefined;
      const a = this.again;
      this.again = undefined;
      if (a) this.requestReconfigure(a.reason, a.drain);
    });
  }

  /**
   * Places the layers over the live peers and brings the new ring up: plan, ASSIGN downstream-first
   * (new epoch), stage 0's own range, the link to stage 1, then resume the backend (which replays).
   * drain: a planned switch (join, leave): let the steps in flight finish on the old ring first.
   */
  private async reconfigure(reason: string, drain: boolean): Promise<void> {
    const first = !this.formed;
    const t0 = performance.now();
    try {
      this.phase = first ? "measuring links" : `re-planning: ${reason}`;
      const cluster = await this.measureCluster();
      const candidates = this.live.filter((w) => w.state !== "leaving");
      const ids = [this.o.transport.peerId, ...candidates.map((w) => w.peer)];
      const sub: Cluster = { peers: cluster.peers.filter((p) => ids.includes(p.id)), links: cluster.links.filter((l) => ids.includes(l.from) && ids.includes(l.to)) };
      let chosen: Plan | undefined;
      let ranges: Array<{ peer: string; start: number; end: number }>;
      if (first && this.o.split) {
        ranges = this.policy.split(this.o.split, ids);
        chosen = this.policy.evaluate(sub, ranges) ?? undefined;
        if (!chosen) this.log("placement (--split): the planner cannot predict this split (memory?)");
      } else {
        try {
          chosen = this.policy.best(sub, [first ? ids.length : Math.max(this.lastStageCount, 1)]);
        } catch (err) {
          throw new Error(`no placement over the ${ids.length} peer(s) left can hold the model: ${(err as Error).message}`);
        }
        ranges = chosen.placement.map((st) => ({ peer: st.peer, start: st.start, end: st.end }));
      }
      const codec = this.o.codec ?? Codec.F32;
      const maxContext = this.o.maxContext ?? 0;
      if (drain && this.pipeline && !this.pipeline.isPaused) {
        // Spares that the new placement uses load their future layers first, while the running ring
        // keeps serving; the final ASSIGN below (same range) then keeps those weights.
        this.phase = `preparing a new placement: ${reason}`;
        await Promise.all(ranges.slice(1).map(async (r, i) => {
          const w = this.workers.find((x) => x.peer === r.peer);
          if (!w) throw new Error(`peer ${r.peer} went away before the switch`);
          if (w.state !== "spare" || w.range) return;
          await this.assign(w, { range: { start: r.start, end: r.end }, codec, maxContext, next: [], stageIndex: i + 1, nStages: ranges.length, epoch: this.epoch });
          this.log(`peer ${w.peer} (${w.info.name}) loaded its future layers [${r.start}, ${r.end}) while the mesh kept serving`);
        }));
        this.phase = `switching placement: ${reason}`;
        await this.pipeline.pause(30_000);
        this.downSince = performance.now();
      }
      const epoch = ++this.epoch;
      const ring = ranges.slice(1).map((r) => this.workers.find((w) => w.peer === r.peer)!);
      this.phase = first ? "loading stages" : `loading stages (epoch ${epoch})`;
      this.log(`placement (epoch ${epoch}): ${ranges.map((r, i) => `stage ${i} [${r.start}, ${r.end})${i > 0 ? ` on ${ring[i - 1].info.name}` : ""}`).join(", ")}`);
      // Downstream stages load first.
      for (let i = ring.length - 1; i >= 0; i--) {
        const w = ring[i];
        const next = i + 1 < ring.length ? ring[i + 1].info.addrs : [];
        const a: Assign = { range: { start: ranges[i + 1].start, end: ranges[i + 1].end }, codec, maxContext, next, stageIndex: i + 1, nStages: ranges.length, epoch };
        await this.assign(w, a);
        w.range = a.range;
        if (w.state === "spare") w.state = "stage";
      }
      // Peers left out of this placement become spares (a leaving one is let go below).
      for (const w of this.live) if (!ring.includes(w)) {
        w.range = undefined;
        if (w.state === "stage") w.state = "spare";
      }
      const hostRange = { start: ranges[0].start, end: ranges[0].end };
      const sameLocal = this.pipeline && this.hostRange && this.hostRange.start === hostRange.start && this.hostRange.end === hostRange.end;
      const local = sameLocal ? this.pipeline!.stage0 : await LocalBackend.loadAsync({
        path: this.o.modelPath, range: hostRange, enginePath: this.o.enginePath ?? "fast", ...(this.o.threads !== undefined ? { threads: this.o.threads } : {}),
        ...(this.o.maxContext !== undefined ? { maxContext: this.o.maxContext } : {}), ...(this.o.modelId ? { id: this.o.modelId } : {}),
      });
      let down: StageLink | undefined;
      if (ring.length > 0) {
        down = await this.o.transport.dial(ring[0].info.addrs, STAGE_PROTOCOL);
        await dialHandshake(down, "stage", this.hs());
      }
      this.hostRange = hostRange;
      this.ringPeers = ring;
      this.lastStageCount = ranges.length;
      const r: Ring = { local, down, nStages: ranges.length, epoch };
      this.current = chosen;
      this.setPlacementStatus(chosen, first && this.o.split ? "--split" : "planner");
      if (!this.pipeline) {
        this.pipeline = new PipelineBackend(r, codec, this.nLayer, {
          ...(this.o.recoveryTimeoutMs !== undefined ? { recoveryTimeoutMs: this.o.recoveryTimeoutMs } : {}),
          onLinkError: (ep, msg) => {
            if (ep !== this.epoch) return;
            const w = this.stages[0];
            if (w) this.markGone(w, msg, "death");
          },
          onReplay: (seq, tokens) => this.event({ type: "replay", reason: `sequence ${seq}`, tokens, epoch: this.epoch }),
          onClose: () => this.close(),
        });
        this.formed = true;
        this.phase = "ready";
        this.log(`mesh ready: ${ranges.length} stage(s), codec ${codecName(codec)}`);
        this.resolveBackend(this.pipeline);
      } else {
        const replayedBefore = this.pipeline.replayedTokens;
        this.pipeline.resume(r);
        const downMs = this.downSince !== undefined ? performance.now() - this.downSince : performance.now() - t0;
        this.downSince = undefined;
        this.worstRecoveryMs = Math.max(this.worstRecoveryMs, downMs);
        this.phase = "ready";
        this.log(`re-planned (epoch ${epoch}, ${reason}): ${ranges.length} stage(s); ring down ${downMs.toFixed(0)} ms; replaying ${this.pipeline.replayedTokens - replayedBefore} token(s) so far`);
        this.event({ type: "replan", reason, ms: downMs, epoch });
      }
      // Peers that asked to leave hold nothing now: let them go.
      for (const w of this.workers.filter((x) => x.state === "leaving")) {
        await w.control.send(encodeJson(MsgKind.BYE, { reason: "leave granted: your layers were moved" })).catch(() => {});
        this.markGone(w, "it asked to leave; its layers were moved", "leave");
      }
    } catch (err) {
      const msg = (err as Error).message;
      if (first) {
        this.phase = `failed: ${msg}`;
        this.rejectBackend(err as Error);
        return;
      }
      if (this.pipeline && !this.pipeline.isPaused) {
        this.pipeline.suspend();
        this.downSince ??= performance.now();
      }
      if (this.again) {
        this.log(`re-plan failed (${msg}); trying again`);
        return;
      }
      this.phase = `unavailable: ${msg}; waiting for peers`;
      this.log(`re-plan failed: ${msg}`);
      this.event({ type: "unavailable", reason: msg });
    }
  }

  private ringPeers: WorkerPeer[] = [];
  /** measureCluster() calls running (probes in progress). */
  private measuring = 0;
  /** Stages of the last placement that was up (kept while the mesh recovers). */
  private lastStageCount = 0;

  private setPlacementStatus(chosen: Plan | undefined, source: "planner" | "--split", log = true): void {
    if (!chosen) return;
    const p = chosen.prediction;
    this.placementStatus = {
      source, objective: this.o.objective ?? "interactive", bandwidth: this.o.linkBytesPerSec !== undefined ? "--link-bandwidth" : "probed", predictedMsPerToken: p.decodeTokenSec * 1000, predictedTokPerSec: p.throughputTokPerSec,
      stages: p.stages.map((st) => ({ peer: st.peer, predictedMsPerToken: st.decodeSec * 1000 })),
      hops: p.hops.map((h) => ({ from: h.from, to: h.to, rttMs: h.rttSec * 1000, bytesPerSec: this.links.bytesPerSec(h.from, h.to), predictedMs: h.tokenSec * 1000 })),
      notes: chosen.notes,
    };
    if (log) this.log(`placement predicted: ${(p.decodeTokenSec * 1000).toFixed(2)} ms/token for one stream, ${p.throughputTokPerSec.toFixed(1)} tok/s with ${this.o.batch ?? 8} streams`);
  }


  /**
   * ASSIGN and wait for READY; throws when the peer is gone or cannot load (it is quarantined then: the
   * next re-plan leaves it out).
   */
  private async assign(w: WorkerPeer, a: Assign): Promise<void> {
    const what = `layers [${a.range.start}, ${a.range.end})`;
    if (w.state === "gone") throw new Error(`peer ${w.peer} went away before loading ${what}`);
    const reply = new Promise<Uint8Array | undefined>((res) => w.waiters.set(0, res));
    await w.control.send(encodeJson(MsgKind.ASSIGN, a)).catch(() => {});
    const f = await reply;
    w.waiters.delete(0);
    if (!f) throw new Error(`peer ${w.peer} went away while loading ${what}`);
    if (readHeader(f).kind !== MsgKind.READY) {
      const msg = String(decodeJson(f).message);
      this.markGone(w, `it could not load ${what}: ${msg}`, "quarantine");
      throw new Error(`peer ${w.peer} failed to load ${what}: ${msg}`);
    }
  }

  /** Asks a worker and waits for the reply with the same step id (ms at most). */
  private async ask(w: WorkerPeer, kind: number, body: unknown, timeoutMs: number): Promise<Uint8Array | undefined> {
    const id = this.reqId++;
    if (w.state === "gone") return undefined;
    const got = new Promise<Uint8Array | undefined>((res) => {
      w.waiters.set(id, res);
      setTimeout(() => res(undefined), timeoutMs).unref();
    });
    await w.control.send(encodeJson(kind, body, id)).catch(() => {});
    const f = await got;
    w.waiters.delete(id);
    return f;
  }

  /** The cluster as the planner sees it (link-table.ts; only links not yet measured are probed). */
  private async measureCluster(): Promise<Cluster> {
    this.measuring++;
    try {
      const host = { id: this.o.transport.peerId, memBytes: this.hostCap.freeMemoryBytes, decodeSecPerLayer: this.hostCap.msPerLayer / 1000 };
      return await this.links.measure(host, this.live);
    } finally {
      this.measuring--;
    }
  }

  /** Peers, ranges, RTTs and per-stage timings (asks each worker for fresh stats, 1 s at most). */
  async status(): Promise<MeshStatus> {
    await Promise.all(this.live.map((w) => this.ask(w, MsgKind.STATS_REQ, {}, 1000)));
    const p = this.pipeline;
    return {
      protocolVersion: PROTOCOL_VERSION,
      ready: this.phase === "ready",
      phase: this.phase,
      epoch: this.epoch,
      linksRefreshed: this.linksRefreshed,
      codec: codecName(this.o.codec ?? Codec.F32),
      model: basename(this.o.modelPath),
      fingerprint: this.o.fingerprint,
      expectedPeers: this.o.peers,
      ...(this.placementStatus ? { placement: { ...this.placementStatus, ...this.measuredPerToken() } } : {}),
      ...(p ? { pipeline: { maxInFlight: p.maxInFlight, replyBytesPerStep: Math.round(p.replyBytes / Math.max(1, p.stats.steps)) } } : {}),
      failover: {
        events: { ...this.events }, replayedSequences: p?.replayedSequences ?? 0, replayedTokens: p?.replayedTokens ?? 0, resentSteps: p?.resentSteps ?? 0,
        worstRecoveryMs: Math.round(this.worstRecoveryMs),
      },
      stages: [
        {
          index: 0, peer: this.o.transport.peerId, name: "host", role: "host", ...(this.hostRange ? { range: this.hostRange } : {}),
          msPerLayer: this.hostCap.msPerLayer, freeMemoryBytes: this.hostCap.freeMemoryBytes, ...processMemory(p?.stage0.engine), ...(p ? { stats: p.stats.snapshot() } : {}),
        },
        ...this.stages.map((w, i) => ({
          index: i + 1, peer: w.peer, name: w.info.name, role: "worker" as const, ...(w.range ? { range: w.range } : {}), ...(w.rttMs !== undefined ? { rttMs: w.rttMs } : {}),
          msPerLayer: w.info.msPerLayer, freeMemoryBytes: w.info.freeMemoryBytes, ...(w.memory ?? {}), ...(w.stats ? { stats: w.stats } : {}),
        })),
      ],
      spares: this.live.filter((w) => w.state === "spare").map((w) => ({ peer: w.peer, name: w.info.name, msPerLayer: w.info.msPerLayer, freeMemoryBytes: w.info.freeMemoryBytes })),
    };
  }

  /** Epoch, stage and spare counts (for metrics gauges; no I/O). */
  gauges(): { epoch: number; stages: number; spares: number } {
    return { epoch: this.epoch, stages: this.stageCount, spares: this.live.filter((w) => w.state === "spare").length };
  }

  private measuredPerToken(): Pick<PlacementStatus, "measuredMsPerToken" | "measuredFrom"> {
    const p = this.pipeline;
    if (!p) return {};
    if (p.soloSteps > 0) return { measuredMsPerToken: p.soloMs / p.soloSteps, measuredFrom: "single-token steps" };
    if (p.stats.steps > 0) return { measuredMsPerToken: (p.stats.computeMs + p.ringMs) / p.stats.steps, measuredFrom: "all steps" };
    return {};
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.beatTimer);
    clearInterval(this.probeTimer);
    for (const w of this.live) {
      await w.control.send(encodeJson(MsgKind.BYE, {})).catch(() => {});
      w.control.close();
    }
    await this.o.transport.stop().catch(() => {});
  }
}

/** Extra silence tolerated while link probes run (ms). */
const PROBING_ALLOWANCE_MS = 4000;
function fmtCost(p: Plan): string {
  return p.objective === "batch" ? `${(1 / p.cost).toFixed(1)} tok/s` : `${(p.cost * 1000).toFixed(2)} ms/token`;
}

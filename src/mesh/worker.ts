// A mesh worker (`llmesh join`): dials the host's control link, proves the secret, advertises its
// capacity, loads the layer range it is assigned from its OWN local GGUF, links to the next stage
// (or sends results back to the host when it is the last), then runs stage frames until the host
// says BYE or goes away. The last stage samples: it keeps each sequence's sampler and generated tokens
// (from SEQ_CONFIG) and returns token ids (TOKENS), logprobs only when asked, never the logits.
//
// Re-plans: every ASSIGN carries an epoch; a new one drops all sequences and the old epoch's stage
// links (keeping the weights when the range is unchanged), then the stage serves the new ring. A
// malformed frame from the upstream stage is reported to the host (FAULT), which quarantines the
// sender. leave() (SIGINT/SIGTERM) asks the host to move this stage's layers off before it exits.
import { hostname } from "node:os";
import { SequenceSamplers } from "../backend/sequence-samplers.ts";
import { Engine } from "../engine/engine.ts";
import { openGGUF, type GGUFFile } from "../gguf/reader.ts";
import { codecName } from "./codecs.ts";
import { probeBandwidth, serveBandwidthProbe } from "./bandwidth-probe.ts";
import { acceptHandshake, dialHandshake, RefusedError } from "./handshake.ts";
import type { Invite } from "./identity.ts";
import { measureCapacity } from "./placement.ts";
import {
  CONTROL_PROTOCOL, decodeForward, decodeFree, decodeJson, encodeForward, encodeFree, encodeJson, encodeResult, encodeTokens, kindName, MsgKind, ProtocolError, readHeader, STAGE_PROTOCOL,
  type Assign, type JoinInfo, type SampledEntry, type SeqConfig,
} from "./stage-protocol.ts";
import { StageStats } from "./stage-stats.ts";
import { processMemory } from "./mesh-status.ts";
import type { StageLink, Transport } from "./transport.ts";

export interface WorkerOptions {
  transport: Transport;
  invite: Invite;
  modelPath: string;
  fingerprint: string;
  name?: string;
  /** Compute threads for this stage's engine (default: the number of cores). */
  threads?: number;
  /** For tests only: claim another protocol version. */
  protocolVersion?: number;
  /** Memory this peer offers for weights and KV (bytes; default: the machine's free memory). */
  memoryBytes?: number;
  /** For tests only: report this many times the measured compute time (a slower machine, to the planner). */
  computeScale?: number;
  /** For tests only (a failpoint): after this many FORWARD frames, send a malformed frame downstream instead. */
  garbageAfterSteps?: number;
  log?: (msg: string) => void;
}

export class MeshWorker {
  private readonly o: WorkerOptions;
  private readonly secret: Uint8Array;
  private control!: StageLink;
  private gguf: GGUFFile | undefined;
  private engine: Engine | undefined;
  /** The ASSIGN being carried out (they run one after another, beside the control loop). */
  private assigning: Promise<void> = Promise.resolve();
  private assign: Assign | undefined;
  private downstream: StageLink | undefined;
  /** Placement generation of the current assignment; stage links accepted under another one are dropped. */
  private epoch = 0;
  private readonly upstreams = new Map<StageLink, number>();
  private forwards = 0;
  private readonly seqMap = new Map<number, number>();
  /** Last stage: sampling state per (stage 0's) sequence id. */
  private readonly samplers = new SequenceSamplers();
  readonly stats = new StageStats();
  private sendChain: Promise<void> = Promise.resolve();
  /** Settles when the worker has stopped (host gone or BYE). */
  readonly done: Promise<string>;
  private resolveDone!: (why: string) => void;

  private constructor(o: WorkerOptions) {
    this.o = o;
    this.secret = Buffer.from(o.invite.secret, "hex");
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /**
   * Joins the mesh; resolves once JOIN is sent (throws RefusedError when the handshake is refused).
   * `assigned` settles when the first layer range is loaded (a spare may wait for it a long time).
   */
  static async join(o: WorkerOptions): Promise<MeshWorker> {
    const w = new MeshWorker(o);
    await w.start();
    return w;
  }

  /** Resolves when this peer first holds layers (READY sent); rejects when refused or the host goes away first. */
  assigned!: Promise<void>;

  private log(msg: string): void {
    this.o.log?.(msg);
  }

  private hs() {
    return { secret: this.secret, fingerprint: this.o.fingerprint, peer: this.o.transport.peerId, ...(this.o.protocolVersion !== undefined ? { version: this.o.protocolVersion } : {}) };
  }

  private async start(): Promise<void> {
    const t = this.o.transport;
    await t.handle(STAGE_PROTOCOL, (link) => {
      void this.acceptUpstream(link);
    });
    await serveBandwidthProbe(t);
    this.control = await t.dial(this.o.invite.addrs, CONTROL_PROTOCOL);
    await dialHandshake(this.control, "join", this.hs());
    this.gguf = openGGUF(this.o.modelPath);
    const cap = measureCapacity(this.gguf, this.o.threads, this.o.memoryBytes);
    const info: JoinInfo = { name: this.o.name ?? hostname(), freeMemoryBytes: cap.freeMemoryBytes, msPerLayer: cap.msPerLayer * (this.o.computeScale ?? 1), addrs: t.addresses() };
    await this.control.send(encodeJson(MsgKind.JOIN, info));
    this.log(`joined the mesh (host ${this.control.remotePeer}); ${cap.msPerLayer.toFixed(3)} ms/layer/token; waiting for an assignment`);
    let ready!: () => void;
    let failed!: (e: Error) => void;
    this.assigned = new Promise<void>((res, rej) => {
      ready = res;
      failed = rej;
    });
    this.assigned.catch(() => {});
    void this.controlLoop(ready, failed);
  }

  private async controlLoop(ready: () => void, failed: (e: Error) => void): Promise<void> {
    let why = "the host closed the connection";
    try {
      for (;;) {
        const f = await this.control.next();
        if (!f) break;
        const h = readHeader(f);
        if (h.kind === MsgKind.ASSIGN) {
          // Loads run beside this loop (one at a time), which keeps answering PINGs: a stage loading
          // gigabytes is busy, not dead. A failed load is reported; the host re-plans without this peer.
          const a = decodeJson<Assign>(f);
          this.assigning = this.assigning.then(async () => {
            try {
              await this.load(a);
              await this.control.send(encodeJson(MsgKind.READY, { range: this.assign!.range, epoch: this.epoch }));
              ready();
            } catch (err) {
              this.log(`could not take the assignment: ${(err as Error).message}`);
              await this.control.send(encodeJson(MsgKind.ERROR, { message: (err as Error).message })).catch(() => {});
            }
          });
        } else if (h.kind === MsgKind.PING) {
          await this.control.send(encodeJson(MsgKind.PONG, decodeJson(f)));
        } else if (h.kind === MsgKind.STATS_REQ) {
          await this.control.send(encodeJson(MsgKind.STATS, { stats: this.stats.snapshot(), range: this.assign?.range, ...processMemory(this.engine) }, h.step));
        } else if (h.kind === MsgKind.PROBE) {
          const { targets, bandwidth } = decodeJson<{ targets: Array<{ peer: string; addrs: string[] }>; bandwidth?: boolean }>(f);
          const rttSec: Record<string, number> = {};
          const bytesPerSec: Record<string, number> = {};
          for (const t of targets) {
            try {
              if (this.o.transport.ping) rttSec[t.peer] = await this.o.transport.ping(t.addrs);
              if (bandwidth) bytesPerSec[t.peer] = (await probeBandwidth(this.o.transport, t.addrs, { timeoutMs: 5000 })).bytesPerSec;
            } catch (err) {
              this.log(`could not measure the link to ${t.peer}: ${(err as Error).message}`);
            }
          }
          await this.control.send(encodeJson(MsgKind.PROBED, { rttSec, bytesPerSec }, h.step));
        } else if (h.kind === MsgKind.BYE) {
          why = "the host ended the mesh";
          break;
        } else if (h.kind === MsgKind.REFUSE) {
          failed(new RefusedError(String(decodeJson(f).reason), "state"));
          break;
        } else {
          throw new Error(`unexpected ${kindName(h.kind)} on the control link`);
        }
      }
    } catch (err) {
      why = `control link failed: ${(err as Error).message}`;
    }
    failed(new Error(why));
    this.stop();
    this.resolveDone(why);
  }

  private async load(a: Assign): Promise<void> {
    // Leave the old epoch: its stage links close (frames still in them are dropped), its sequences go.
    this.epoch = a.epoch;
    for (const l of this.upstreams.keys()) l.close();
    this.upstreams.clear();
    if (this.downstream && this.downstream !== this.control) this.downstream.close();
    this.downstream = undefined;
    this.sendChain = Promise.resolve();
    this.seqMap.clear();
    this.samplers.clear();
    const old = this.assign;
    this.assign = a;
    if (this.engine && old && old.range.start === a.range.start && old.range.end === a.range.end && old.maxContext === a.maxContext) {
      for (const id of this.engine.sequenceIds) this.engine.freeSequence(id);
      this.log(`stage ${a.stageIndex + 1}/${a.nStages} (epoch ${a.epoch}): keeping layers [${a.range.start}, ${a.range.end})`);
    } else {
      this.engine?.dispose(); // its memory is reused for the new range
      this.engine = undefined;
      const t0 = performance.now();
      this.engine = await Engine.loadAsync(this.gguf!, { range: a.range, ...(a.maxContext > 0 ? { maxContext: a.maxContext } : {}), ...(this.o.threads !== undefined ? { threads: this.o.threads } : {}) });
      this.log(`stage ${a.stageIndex + 1}/${a.nStages} (epoch ${a.epoch}): layers [${a.range.start}, ${a.range.end}) loaded in ${(performance.now() - t0).toFixed(0)} ms; codec ${codecName(a.codec)}`);
    }
    if (a.next.length > 0) {
      this.downstream = await this.o.transport.dial(a.next, STAGE_PROTOCOL);
      await dialHandshake(this.downstream, "stage", this.hs());
    } else {
      this.downstream = this.control;
    }
  }

  private send(frame: Uint8Array): Promise<void> {
    const link = this.downstream!;
    this.sendChain = this.sendChain.then(() => link.send(frame));
    return this.sendChain;
  }

  private async acceptUpstream(link: StageLink): Promise<void> {
    try {
      await acceptHandshake(link, this.hs());
    } catch (err) {
      this.log(`refused a stage link from ${link.remotePeer}: ${(err as Error).message}`);
      return;
    }
    const epoch = this.epoch;
    this.upstreams.set(link, epoch);
    let tWait = performance.now();
    try {
      for (;;) {
        const f = await link.next();
        if (!f || this.epoch !== epoch) break;
        const now = performance.now();
        this.stats.waitMs += now - tWait;
        await this.onFrame(f);
        tWait = performance.now();
      }
    } catch (err) {
      if (this.epoch === epoch && err instanceof ProtocolError) {
        // The upstream stage sent garbage: tell the host, which quarantines it.
        this.log(`malformed frame from ${link.remotePeer}: ${err.message}`);
        await this.control.send(encodeJson(MsgKind.FAULT, { peer: link.remotePeer, message: err.message })).catch(() => {});
      } else if (this.epoch === epoch) this.log(`stage link failed: ${(err as Error).message}`);
    }
    link.close();
    this.upstreams.delete(link);
  }

  private async onFrame(f: Uint8Array): Promise<void> {
    const h = readHeader(f);
    const engine = this.engine;
    const a = this.assign;
    if (!engine || !a) throw new Error("stage frame before the stage was loaded");
    if (h.kind === MsgKind.FORWARD) {
      let out: Float32Array[];
      const fwd = decodeForward(f);
      const t0 = performance.now();
      if (this.o.garbageAfterSteps !== undefined && ++this.forwards > this.o.garbageAfterSteps) {
        // Failpoint (tests): a frame of an unknown kind where the hidden states should be.
        await this.send(Uint8Array.of(0xee, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8));
        return;
      }
      try {
        const items = fwd.entries.map((e, i) => {
          let local = this.seqMap.get(e.seq);
          if (local === undefined) {
            local = engine.createSequence();
            this.seqMap.set(e.seq, local);
          }
          return { seq: local, hidden: fwd.rows[i], logits: e.logits ? ("last" as const) : ("none" as const) };
        });
        out = engine.forward(items);
      } catch (err) {
        await this.send(encodeJson(MsgKind.ERROR, { message: `stage [${a.range.start}, ${a.range.end}): ${(err as Error).message}` }, h.step));
        return;
      }
      const t1 = performance.now();
      let nTok = 0;
      for (const e of fwd.entries) nTok += e.nTokens;
      this.stats.computeMs += t1 - t0;
      this.stats.steps++;
      this.stats.tokens += nTok;
      let frame: Uint8Array;
      try {
        frame = engine.isLast ? this.reply(h.step, fwd.entries, out) : encodeForward(h.step, a.codec, fwd.entries, out, engine.config.nEmbd);
      } catch (err) {
        await this.send(encodeJson(MsgKind.ERROR, { message: `stage [${a.range.start}, ${a.range.end}): ${(err as Error).message}` }, h.step));
        return;
      }
      this.stats.bytesOut += frame.length + 4;
      await this.send(frame);
      this.stats.transferMs += performance.now() - t1;
    } else if (h.kind === MsgKind.SEQ_CONFIG) {
      if (!engine.isLast) return this.send(f);
      const c = decodeJson<SeqConfig>(f);
      this.samplers.set(c.seq, { ...c.sampling, logitBias: new Map(c.sampling.logitBias) }, c.logprobs, Array.isArray(c.generated) ? c.generated : []);
    } else if (h.kind === MsgKind.FREE) {
      const seqs = decodeFree(f);
      for (const s of seqs) {
        this.samplers.delete(s);
        const local = this.seqMap.get(s);
        if (local !== undefined) {
          engine.freeSequence(local);
          this.seqMap.delete(s);
        }
      }
      if (!engine.isLast) await this.send(encodeFree(seqs));
    } else if (h.kind === MsgKind.ERROR) {
      await this.send(f);
    } else {
      throw new ProtocolError(`unexpected ${kindName(h.kind)} on a stage link`);
    }
  }

  /** The last stage's reply to a FORWARD: sampled tokens (TOKENS), or logits (RESULT) when not asked to sample. */
  private reply(step: number, entries: ReadonlyArray<{ seq: number; logits: boolean; sample?: boolean }>, out: Float32Array[]): Uint8Array {
    const withOut = entries.map((e, i) => ({ e, row: out[i] })).filter((x) => x.e.logits);
    const nSample = withOut.filter((x) => x.e.sample).length;
    if (nSample === 0) return encodeResult(step, withOut.map((x) => x.e.seq), withOut.map((x) => x.row), this.engine!.config.nVocab);
    if (nSample !== withOut.length) throw new Error("a FORWARD mixes sampled and raw-logits entries");
    const sampled: SampledEntry[] = withOut.map(({ e, row }) => {
      const t = this.samplers.pick(e.seq, row);
      return this.samplers.logprobsOf(e.seq) === null ? { seq: e.seq, token: t.id } : { seq: e.seq, token: t.id, logprob: t.logprob, top: t.top };
    });
    return encodeTokens(step, sampled);
  }

  /**
   * Leaves gracefully: asks the host to move this stage's layers to the other peers (nothing in flight
   * is lost) and resolves when it says BYE, or after timeoutMs.
   */
  async leave(timeoutMs = 30_000): Promise<void> {
    await this.control?.send(encodeJson(MsgKind.LEAVE, {})).catch(() => {});
    await Promise.race([this.done, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.stop();
  }

  stop(): void {
    this.control?.close();
    if (this.downstream && this.downstream !== this.control) this.downstream.close();
    this.gguf?.close();
    this.gguf = undefined;
  }
}


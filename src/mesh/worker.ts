// A mesh worker (`llmesh join`): dials the host's control link, proves the secret, advertises its
// capacity, loads the layer range it is assigned from its OWN local GGUF, links to the next stage
// (or sends results back to the host when it is the last), then runs stage frames until the host
// says BYE or goes away. The last stage samples: it keeps each sequence's sampler and generated tokens
// (from SEQ_CONFIG) and returns token ids (TOKENS), logprobs only when asked, never the logits.
import { hostname } from "node:os";
import { Engine } from "../engine/engine.ts";
import { SequenceSamplers } from "../gateway/local-backend.ts";
import { openGGUF, type GGUFFile } from "../gguf/reader.ts";
import { codecName } from "./codecs.ts";
import { acceptHandshake, dialHandshake, RefusedError } from "./handshake.ts";
import type { Invite } from "./identity.ts";
import { measureCapacity } from "./placement.ts";
import {
  CONTROL_PROTOCOL, decodeForward, decodeFree, decodeJson, encodeForward, encodeFree, encodeJson, encodeResult, encodeTokens, kindName, MsgKind, readHeader, STAGE_PROTOCOL,
  type Assign, type JoinInfo, type SampledEntry, type SeqConfig,
} from "./stage-protocol.ts";
import { StageStats } from "./stage-stats.ts";
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
  log?: (msg: string) => void;
}

export class MeshWorker {
  private readonly o: WorkerOptions;
  private readonly secret: Uint8Array;
  private control!: StageLink;
  private gguf: GGUFFile | undefined;
  private engine: Engine | undefined;
  private assign: Assign | undefined;
  private downstream: StageLink | undefined;
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

  /** Joins the mesh; resolves once this stage is loaded and READY was sent. Throws RefusedError when refused. */
  static async join(o: WorkerOptions): Promise<MeshWorker> {
    const w = new MeshWorker(o);
    await w.start();
    return w;
  }

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
    this.control = await t.dial(this.o.invite.addrs, CONTROL_PROTOCOL);
    await dialHandshake(this.control, "join", this.hs());
    this.gguf = openGGUF(this.o.modelPath);
    const cap = measureCapacity(this.gguf, this.o.threads);
    const info: JoinInfo = { name: this.o.name ?? hostname(), freeMemoryBytes: cap.freeMemoryBytes, msPerLayer: cap.msPerLayer, addrs: t.addresses() };
    await this.control.send(encodeJson(MsgKind.JOIN, info));
    this.log(`joined the mesh (host ${this.control.remotePeer}); ${cap.msPerLayer.toFixed(3)} ms/layer/token; waiting for an assignment`);
    let ready!: () => void;
    let failed!: (e: Error) => void;
    const readyP = new Promise<void>((res, rej) => {
      ready = res;
      failed = rej;
    });
    void this.controlLoop(ready, failed);
    await readyP;
  }

  private async controlLoop(ready: () => void, failed: (e: Error) => void): Promise<void> {
    let why = "the host closed the connection";
    try {
      for (;;) {
        const f = await this.control.next();
        if (!f) break;
        const h = readHeader(f);
        if (h.kind === MsgKind.ASSIGN) {
          try {
            await this.load(decodeJson<Assign>(f));
            await this.control.send(encodeJson(MsgKind.READY, { range: this.assign!.range }));
            ready();
          } catch (err) {
            await this.control.send(encodeJson(MsgKind.ERROR, { message: (err as Error).message })).catch(() => {});
            failed(err as Error);
            throw err;
          }
        } else if (h.kind === MsgKind.PING) {
          await this.control.send(encodeJson(MsgKind.PONG, decodeJson(f)));
        } else if (h.kind === MsgKind.STATS_REQ) {
          await this.control.send(encodeJson(MsgKind.STATS, { stats: this.stats.snapshot(), range: this.assign?.range, rssBytes: process.memoryUsage().rss }, h.step));
        } else if (h.kind === MsgKind.PROBE) {
          const { targets } = decodeJson<{ targets: Array<{ peer: string; addrs: string[] }> }>(f);
          const rttSec: Record<string, number> = {};
          for (const t of targets) {
            try {
              if (this.o.transport.ping) rttSec[t.peer] = await this.o.transport.ping(t.addrs);
            } catch (err) {
              this.log(`could not ping ${t.peer}: ${(err as Error).message}`);
            }
          }
          await this.control.send(encodeJson(MsgKind.PROBED, { rttSec }, h.step));
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
    this.assign = a;
    const t0 = performance.now();
    this.engine = Engine.load(this.gguf!, { range: a.range, ...(a.maxContext > 0 ? { maxContext: a.maxContext } : {}), ...(this.o.threads !== undefined ? { threads: this.o.threads } : {}) });
    this.log(`stage ${a.stageIndex + 1}/${a.nStages}: layers [${a.range.start}, ${a.range.end}) loaded in ${(performance.now() - t0).toFixed(0)} ms; codec ${codecName(a.codec)}`);
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
    let tWait = performance.now();
    try {
      for (;;) {
        const f = await link.next();
        if (!f) break;
        const now = performance.now();
        this.stats.waitMs += now - tWait;
        await this.onFrame(f);
        tWait = performance.now();
      }
    } catch (err) {
      this.log(`stage link failed: ${(err as Error).message}`);
      link.close();
    }
  }

  private async onFrame(f: Uint8Array): Promise<void> {
    const h = readHeader(f);
    const engine = this.engine;
    const a = this.assign;
    if (!engine || !a) throw new Error("stage frame before the stage was loaded");
    if (h.kind === MsgKind.FORWARD) {
      let out: Float32Array[];
      let fwd;
      const t0 = performance.now();
      try {
        fwd = decodeForward(f);
        const items = fwd.entries.map((e, i) => {
          let local = this.seqMap.get(e.seq);
          if (local === undefined) {
            local = engine.createSequence();
            this.seqMap.set(e.seq, local);
          }
          return { seq: local, hidden: fwd!.rows[i], logits: e.logits ? ("last" as const) : ("none" as const) };
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
      this.samplers.set(c.seq, { ...c.sampling, logitBias: new Map(c.sampling.logitBias) }, c.logprobs);
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
      throw new Error(`unexpected ${kindName(h.kind)} on a stage link`);
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

  stop(): void {
    this.control?.close();
    if (this.downstream && this.downstream !== this.control) this.downstream.close();
    this.gguf?.close();
    this.gguf = undefined;
  }
}

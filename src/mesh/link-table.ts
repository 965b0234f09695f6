// The links of a mesh as the planner needs them: RTT (libp2p ping) and bandwidth (bandwidth-probe.ts)
// per directed link, host ↔ worker measured by the host (both directions), worker → worker by each
// worker (asked through PROBE). A link measured once is kept until clear() (the periodic refresh): a
// re-plan after a death must not wait for probes. A fixed bandwidth (--link-bandwidth) replaces the
// probe.
import type { Cluster, Link, PeerProfile } from "../planner/index.ts";
import { probeBandwidth } from "./bandwidth-probe.ts";
import type { JoinInfo } from "./stage-protocol.ts";
import type { Transport } from "./transport.ts";

/** Planner's link bandwidth when a probe fails and none is given: 1 Gbit/s. */
export const FALLBACK_BYTES_PER_SEC = 125e6;
/** A bandwidth probe gives up after this long (ms): a frozen peer must not hold a re-plan for long. */
const PROBE_TIMEOUT_MS = 5000;

/** A worker as the table sees it; rttMs is updated with the host's measurement. */
export interface MeasuredPeer {
  peer: string;
  info: JoinInfo;
  rttMs?: number;
  /** "gone": the peer left meanwhile (stop probing it). */
  state: string;
}

/** What a worker's PROBED reply says about its links to `targets`. */
export interface ProbeReply {
  rttSec: Record<string, number>;
  bytesPerSec?: Record<string, number>;
}

export interface LinkTableOptions {
  transport: Transport;
  /** Fixed bandwidth for every link (bytes/s) instead of probing. */
  fixedBytesPerSec?: number;
  log: (msg: string) => void;
  /** Asks a worker to measure its links to these peers (undefined: no answer in time). */
  askProbe: (w: MeasuredPeer, targets: Array<{ peer: string; addrs: string[] }>, bandwidth: boolean) => Promise<ProbeReply | undefined>;
}

export class LinkTable {
  private readonly o: LinkTableOptions;
  private readonly links = new Map<string, Link>();

  constructor(o: LinkTableOptions) {
    this.o = o;
  }

  /** Forgets every measurement (the next measure() probes every link again). */
  clear(): void {
    this.links.clear();
  }

  /** Bandwidth of a measured link (bytes/s), 0 when unknown. */
  bytesPerSec(from: string, to: string): number {
    return this.links.get(key(from, to))?.bytesPerSec ?? 0;
  }

  /** Measures the links still unknown among host + workers and returns the cluster for the planner. */
  async measure(host: PeerProfile, workers: readonly MeasuredPeer[]): Promise<Cluster> {
    const fixed = this.o.fixedBytesPerSec;
    for (const w of workers) if (!this.links.has(key(host.id, w.peer))) await this.measureHostLink(host.id, w);
    await Promise.all(
      workers.map(async (w) => {
        const targets = workers.filter((x) => x !== w && !this.links.has(key(w.peer, x.peer))).map((x) => ({ peer: x.peer, addrs: x.info.addrs }));
        if (targets.length === 0) return;
        const got = (await this.o.askProbe(w, targets, fixed === undefined)) ?? { rttSec: {} };
        for (const t of targets) {
          const other = workers.find((x) => x.peer === t.peer);
          // Unmeasured: assume the worse of the two peers' RTTs to the host.
          const fallback = Math.max(...[w, other].map((x) => (x?.rttMs ?? 1) / 1000));
          this.links.set(key(w.peer, t.peer), { from: w.peer, to: t.peer, rttSec: got.rttSec[t.peer] ?? fallback, bytesPerSec: fixed ?? got.bytesPerSec?.[t.peer] ?? FALLBACK_BYTES_PER_SEC });
        }
      }),
    );
    const peers: PeerProfile[] = [host, ...workers.map((w) => ({ id: w.peer, memBytes: w.info.freeMemoryBytes, decodeSecPerLayer: w.info.msPerLayer / 1000 }))];
    const ids = new Set(peers.map((p) => p.id));
    return { peers, links: [...this.links.values()].filter((l) => ids.has(l.from) && ids.has(l.to)) };
  }

  private async measureHostLink(host: string, w: MeasuredPeer): Promise<void> {
    const { transport, fixedBytesPerSec: fixed, log } = this.o;
    let rtt: number | undefined;
    try {
      if (transport.ping) rtt = await transport.ping(w.info.addrs);
    } catch (err) {
      log(`could not ping ${w.peer}: ${(err as Error).message}`);
    }
    rtt ??= (w.rttMs ?? 1) / 1000;
    w.rttMs = rtt * 1000;
    const bw = { send: fixed ?? FALLBACK_BYTES_PER_SEC, receive: fixed ?? FALLBACK_BYTES_PER_SEC };
    if (fixed === undefined) {
      for (const direction of ["send", "receive"] as const) {
        if (w.state === "gone") break;
        try {
          bw[direction] = (await probeBandwidth(transport, w.info.addrs, { direction, timeoutMs: PROBE_TIMEOUT_MS })).bytesPerSec;
        } catch (err) {
          log(`could not probe the bandwidth to ${w.peer} (${direction}): ${(err as Error).message}; assuming ${FALLBACK_BYTES_PER_SEC * 8e-6} Mbit/s`);
        }
      }
      log(`link host ↔ ${w.info.name}: RTT ${(rtt * 1000).toFixed(2)} ms, ${((bw.send * 8) / 1e6).toFixed(1)} Mbit/s out, ${((bw.receive * 8) / 1e6).toFixed(1)} Mbit/s in`);
    }
    this.links.set(key(host, w.peer), { from: host, to: w.peer, rttSec: rtt, bytesPerSec: bw.send });
    this.links.set(key(w.peer, host), { from: w.peer, to: host, rttSec: rtt, bytesPerSec: bw.receive });
  }
}

function key(from: string, to: string): string {
  return `${from}>${to}`;
}

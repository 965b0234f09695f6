// The machines and the network, as the planner sees them. The live mesh fills the same types with
// measurements (per-layer times at startup, RTT and bandwidth per directed link); `llmesh plan` fills
// them from flags or a scenario file with datasheet figures.

export interface PeerProfile {
  id: string;
  /** Memory available to llmesh on this peer for weights and KV cache, in bytes (before headroom). */
  memBytes: number;
  /** Locality label (e.g. "eu"): a pipeline stays inside one group when one group can hold the model. */
  group?: string;
  /** Measured: seconds to run one layer for one token (batch 1 decode). Overrides memBandwidth. */
  decodeSecPerLayer?: number;
  /** Measured: seconds per token per layer in a long prefill chunk (compute-bound). Overrides flops. */
  prefillSecPerTokenPerLayer?: number;
  /** Datasheet: memory bandwidth in bytes per second (decode of one token reads every weight once). */
  memBandwidth?: number;
  /** Datasheet: sustained FLOP/s for matrix products (2 FLOPs per weight per token). */
  flops?: number;
}

/** One direction of a link: from → to. */
export interface Link {
  from: string;
  to: string;
  /** Round-trip time in seconds; a one-way hop costs half. */
  rttSec: number;
  /** Bytes per second. */
  bytesPerSec: number;
}

export interface LinkFigures {
  rttSec: number;
  bytesPerSec: number;
}

export interface Cluster {
  peers: PeerProfile[];
  /** Directed links; a pair without one uses defaultLink. */
  links: Link[];
  defaultLink?: LinkFigures;
}

/** Both directions of a symmetric link. */
export function symmetricLink(a: string, b: string, rttSec: number, bytesPerSec: number): Link[] {
  return [{ from: a, to: b, rttSec, bytesPerSec }, { from: b, to: a, rttSec, bytesPerSec }];
}

/** Link lookups in O(1). */
export class LinkTable {
  private readonly map = new Map<string, LinkFigures>();
  private readonly fallback?: LinkFigures;

  constructor(cluster: Cluster) {
    for (const l of cluster.links) this.map.set(`${l.from}\u0000${l.to}`, l);
    this.fallback = cluster.defaultLink;
  }

  /** The link from → to; throws when neither a link nor a default is known. */
  get(from: string, to: string): LinkFigures {
    if (from === to) return { rttSec: 0, bytesPerSec: Infinity };
    const l = this.map.get(`${from}\u0000${to}`) ?? this.fallback;
    if (!l) throw new Error(`no link from ${from} to ${to} and no default link`);
    return l;
  }
}

/** Checks ids are unique and figures are sane; throws with the first problem found. */
export function validateCluster(c: Cluster): void {
  const ids = new Set<string>();
  for (const p of c.peers) {
    if (!p.id) throw new Error("a peer has no id");
    if (ids.has(p.id)) throw new Error(`two peers are named "${p.id}"`);
    ids.add(p.id);
    if (!(p.memBytes > 0)) throw new Error(`peer ${p.id}: memory must be positive`);
    const speed = [p.decodeSecPerLayer, p.prefillSecPerTokenPerLayer, p.memBandwidth, p.flops];
    if (speed.every((x) => x === undefined)) throw new Error(`peer ${p.id}: give its memory bandwidth (bw=) or FLOP rate (tflops=), or measured per-layer times`);
    if (speed.some((x) => x !== undefined && !(x > 0))) throw new Error(`peer ${p.id}: speed figures must be positive`);
  }
  for (const l of c.links) {
    if (!ids.has(l.from) || !ids.has(l.to)) throw new Error(`link ${l.from} → ${l.to} names an unknown peer`);
    if (!(l.rttSec >= 0) || !(l.bytesPerSec > 0)) throw new Error(`link ${l.from} → ${l.to}: RTT must be ≥ 0 and bandwidth > 0`);
  }
}

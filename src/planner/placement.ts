// Placement: which peers, in what ring order, hold which contiguous layer ranges.
//
// Search. For a candidate order of peers, a dynamic programme over layer boundaries finds the best ranges
// (each peer in the order gets a non-empty range, within its memory). Orders: every ordered subset of the
// peers for small meshes (≤ exhaustiveMaxPeers, default 7: a depth-first walk over prefixes shares the
// programme's rows, so 7 peers make 13,699 prefixes), otherwise nearest-neighbour orders from the fastest
// peers improved by pairwise swaps. The programme's stage cost is the objective's:
//   interactive  the sum of stage compute (1 token) and one-way hops — exactly the per-token latency;
//   batch        the largest stage compute for a decode step of the whole batch plus its incoming transfer
//                (a proxy for throughput; every candidate is then scored exactly by cost-model.ts and the
//                best of each stage count is polished by moving boundaries one layer at a time).
// Rules, in order: memory limits with headroom (weights + KV for the workload) are hard; a link whose
// one-way time for a decode step of the batch exceeds the per-hop budget is never used; when peers carry
// group labels and one group can hold the model, the pipeline stays inside a group; among the best plan of
// each stage count, the fewest stages within `minGain` of the best wins (a peer that cannot help is left
// out rather than slowing everyone).
import { LinkTable, validateCluster, type Cluster, type PeerProfile } from "./cluster.ts";
import { DEFAULT_WORKLOAD, hopSec, kvBytesPerLayer, predict, usableMemoryBytes, type Placement, type Prediction, type Workload } from "./cost-model.ts";
import { activationBytesPerToken, totalWeightBytes, type ModelProfile } from "./model-profile.ts";
import { formatDuration, formatMemBytes } from "./units.ts";
import { scored, SearchContext } from "./placement-search.ts";

export { objectiveCost } from "./placement-search.ts";

export type Objective = "interactive" | "batch";

export interface PlanOptions extends Workload {
  objective: Objective;
  /** Force this many stages (default: the planner's choice). */
  stages?: number;
  /** More stages must be at least this much better (fraction) to be chosen. */
  minGain: number;
  /** A link whose one-way time for a decode step of the batch exceeds this is not used (seconds). */
  maxHopSec: number;
  /** Stay inside one peer group when one can hold the model. */
  keepGroups: boolean;
  /** Up to this many peers, every ordered subset is tried. */
  exhaustiveMaxPeers: number;
  /** This peer must be stage 0 (a live mesh: the host, where tokens enter the ring). */
  firstPeer?: string;
}

export const DEFAULT_PLAN_OPTIONS: PlanOptions = {
  ...DEFAULT_WORKLOAD, objective: "interactive", minGain: 0.05, maxHopSec: 0.2, keepGroups: true, exhaustiveMaxPeers: 7,
};

export interface StageCountOption {
  stages: number;
  cost: number;
  /** The other objective's cost: breaks ties (equal latency → the better-balanced, higher-throughput split). */
  secondary: number;
  /** Then Σ (stage compute per token)²: among equals, the most even split. */
  balance: number;
  placement: Placement;
  prediction: Prediction;
}

export interface Plan {
  objective: Objective;
  placement: Placement;
  prediction: Prediction;
  /** The objective as a cost, lower is better: seconds per token (interactive) or 1 / tokens per second (batch). */
  cost: number;
  search: "exhaustive" | "heuristic" | "given";
  /** The best plan found for each stage count, fewest stages first. */
  options: StageCountOption[];
  /** Peers not in the placement and why. */
  leftOut: Array<{ peer: string; reason: string }>;
  notes: string[];
}

export class PlacementError extends Error {
  override name = "PlacementError";
}


function withDefaults(o: Partial<PlanOptions>): PlanOptions {
  const r: PlanOptions = { ...DEFAULT_PLAN_OPTIONS };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v;
  return r;
}

/** Smallest stage count whose cost is within minGain of the best. */
function choose(options: StageCountOption[], minGain: number): StageCountOption | undefined {
  if (options.length === 0) return undefined;
  const best = Math.min(...options.map((o) => o.cost));
  return [...options].sort((a, b) => a.stages - b.stages).find((o) => o.cost <= best * (1 + minGain));
}

function searchOver(model: ModelProfile, cluster: Cluster, peers: PeerProfile[], opts: PlanOptions, maxHopSec: number): StageCountOption[] {
  if (peers.length === 0) return [];
  if (opts.firstPeer !== undefined && !peers.some((p) => p.id === opts.firstPeer)) return [];
  return new SearchContext(model, cluster, peers, opts, maxHopSec).run();
}

/** The minimum memory the model needs (one stage holding everything, with KV for the workload). */
export function minimumMemoryBytes(model: ModelProfile, w: Workload): number {
  return totalWeightBytes(model) + model.nLayer * kvBytesPerLayer(model, w);
}

/**
 * Plans a placement. Throws PlacementError ("cannot place: …") when no placement satisfies memory, the
 * hop budget and the forced stage count.
 */
export function plan(model: ModelProfile, cluster: Cluster, options: Partial<PlanOptions> = {}): Plan {
  const opts = withDefaults(options);
  validateCluster(cluster);
  const peers = cluster.peers;
  const notes: string[] = [];
  if (peers.length === 0) throw new PlacementError("cannot place: the cluster has no peers");
  if (opts.firstPeer !== undefined && !peers.some((p) => p.id === opts.firstPeer)) throw new PlacementError(`cannot place: the first stage's peer ${opts.firstPeer} is not in the cluster`);
  if (opts.stages !== undefined) {
    if (!Number.isInteger(opts.stages) || opts.stages < 1) throw new PlacementError(`cannot place: --stages must be a positive integer, got ${opts.stages}`);
    if (opts.stages > peers.length) throw new PlacementError(`cannot place on ${opts.stages} stages: the cluster has ${peers.length} peer${peers.length === 1 ? "" : "s"}`);
    if (opts.stages > model.nLayer) throw new PlacementError(`cannot place on ${opts.stages} stages: the model has ${model.nLayer} layers`);
  }
  const need = minimumMemoryBytes(model, opts);
  const have = peers.reduce((a, p) => a + usableMemoryBytes(p, opts), 0);
  if (need > have) {
    throw new PlacementError(
      `cannot place: needs ${formatMemBytes(need)} (weights ${formatMemBytes(totalWeightBytes(model))} + KV ${formatMemBytes(need - totalWeightBytes(model))} for ${opts.batch} × ${opts.contextTokens} tokens), ` +
      `cluster has ${formatMemBytes(have)} (${formatMemBytes(peers.reduce((a, p) => a + p.memBytes, 0))} less ${Math.round(opts.headroom * 100)}% headroom)`,
    );
  }

  // Groups: stay inside one when one can hold the model.
  const groups = new Map<string, PeerProfile[]>();
  for (const p of peers) groups.set(p.group ?? "", [...(groups.get(p.group ?? "") ?? []), p]);
  let options_: StageCountOption[] = [];
  let inGroup: string | undefined;
  if (opts.keepGroups && groups.size > 1) {
    for (const [g, members] of groups) {
      const found = searchOver(model, cluster, members, opts, opts.maxHopSec);
      const c = choose(found, opts.minGain);
      const cur = choose(options_, opts.minGain);
      if (c && (!cur || c.cost < cur.cost)) { options_ = found; inGroup = g; }
    }
    if (inGroup !== undefined) notes.push(`the pipeline stays inside group "${inGroup || "(none)"}", which can hold the model`);
  }
  if (inGroup === undefined) options_ = searchOver(model, cluster, peers, opts, opts.maxHopSec);
  const chosen = choose(options_, opts.minGain);
  const kText = opts.stages !== undefined ? ` on ${opts.stages} stages` : "";
  if (!chosen) {
    const relaxed = searchOver(model, cluster, peers, opts, Infinity);
    if (relaxed.length > 0) {
      throw new PlacementError(`cannot place${kText}: every placement that fits in memory uses a link over the per-hop budget of ${formatDuration(opts.maxHopSec)} (one-way, one decode step of ${opts.batch})`);
    }
    throw new PlacementError(`cannot place${kText}: no split into contiguous layer ranges fits the peers' memory (needs ${formatMemBytes(need)} in all, ${formatMemBytes(have)} usable; the largest peer holds ${formatMemBytes(Math.max(...peers.map((p) => usableMemoryBytes(p, opts))))})`);
  }
  const best = Math.min(...options_.map((o) => o.cost));
  if (chosen.cost > best) {
    const better = options_.find((o) => o.cost === best)!;
    notes.push(`${chosen.stages} stage${chosen.stages === 1 ? "" : "s"} chosen over ${better.stages}: ${better.stages} would be only ${((1 - best / chosen.cost) * 100).toFixed(1)}% better (threshold ${Math.round(opts.minGain * 100)}%)`);
  }

  const inPlan = new Set(chosen.placement.map((s) => s.peer));
  const links = new LinkTable(cluster);
  const act = activationBytesPerToken(model.nEmbd, opts.codec);
  const leftOut = peers.filter((p) => !inPlan.has(p.id)).map((p) => {
    if (inGroup !== undefined && (p.group ?? "") !== inGroup) return { peer: p.id, reason: `outside group "${inGroup || "(none)"}": the pipeline stays in one group` };
    const others = peers.filter((q) => q.id !== p.id);
    const over = others.length > 0 && others.every((q) => hopSec(links.get(q.id, p.id), opts.batch * act) > opts.maxHopSec && hopSec(links.get(p.id, q.id), opts.batch * act) > opts.maxHopSec);
    if (over) return { peer: p.id, reason: `every link is over the ${formatDuration(opts.maxHopSec)} hop budget` };
    const firstLayer = model.layerBytes[0] + kvBytesPerLayer(model, opts) + model.globalBytes;
    if (usableMemoryBytes(p, opts) < firstLayer) return { peer: p.id, reason: `cannot hold one layer (${formatMemBytes(firstLayer)})` };
    if (opts.stages !== undefined) return { peer: p.id, reason: `not among the best ${opts.stages}` };
    return { peer: p.id, reason: "adding it would not help enough (slower or under the gain threshold)" };
  });

  return {
    objective: opts.objective, placement: chosen.placement, prediction: chosen.prediction, cost: chosen.cost,
    search: peers.length <= opts.exhaustiveMaxPeers ? "exhaustive" : "heuristic",
    options: options_, leftOut, notes,
  };
}

/**
 * Scores a given placement on a (possibly changed) cluster, e.g. the running one after a membership change.
 * Throws PlacementError when it no longer fits: a peer gone, memory exceeded, a link over the hop budget.
 */
export function evaluatePlacement(model: ModelProfile, cluster: Cluster, placement: Placement, options: Partial<PlanOptions> = {}): Plan {
  const opts = withDefaults(options);
  const ids = new Set(cluster.peers.map((p) => p.id));
  const gone = placement.filter((s) => !ids.has(s.peer)).map((s) => s.peer);
  if (gone.length > 0) throw new PlacementError(`placement no longer valid: peer${gone.length > 1 ? "s" : ""} ${gone.join(", ")} left`);
  let prediction: Prediction;
  try {
    prediction = predict(model, cluster, placement, opts);
  } catch (e) {
    throw new PlacementError(`placement not valid: ${(e as Error).message}`);
  }
  const over = prediction.stages.find((s) => s.memUsedBytes > s.memUsableBytes);
  if (over) throw new PlacementError(`placement no longer fits: ${over.peer} needs ${formatMemBytes(over.memUsedBytes)}, has ${formatMemBytes(over.memUsableBytes)} usable`);
  const slow = prediction.hops.find((h) => h.batchStepSec > opts.maxHopSec);
  if (slow) throw new PlacementError(`placement no longer fits: link ${slow.from} → ${slow.to} takes ${formatDuration(slow.batchStepSec)} per hop, over the ${formatDuration(opts.maxHopSec)} budget`);
  const o = scored(placement, prediction, opts.objective);
  return {
    objective: opts.objective, placement, prediction, cost: o.cost, search: "given", options: [o], leftOut: [], notes: [],
  };
}

// How the live mesh asks the planner (src/planner) for a placement: the options it plans with (the
// host is stage 0, the gateway's batch, the context length, the objective), the stage counts it
// considers, and `--split` checked against the model. Pure: data in, plans out.
import { Codec, codecName } from "./codecs.ts";
import { evaluatePlacement, plan, type Cluster, type ModelProfile, type Plan, type PlanOptions } from "../planner/index.ts";

export interface PolicyOptions {
  /** The host's peer id: always stage 0 (tokens enter the ring there). */
  firstPeer: string;
  codec: Codec;
  batch: number;
  /** Positions per sequence (0 or undefined: 512 for planning). */
  maxContext?: number;
  objective: "interactive" | "batch";
  /** The planner picks the stage count itself (else the mesh keeps the count it is given). */
  autoStages: boolean;
}

export class PlacementPolicy {
  readonly profile: ModelProfile;
  private readonly o: PolicyOptions;

  constructor(profile: ModelProfile, o: PolicyOptions) {
    this.profile = profile;
    this.o = o;
  }

  options(stages?: number): Partial<PlanOptions> {
    return {
      ...(stages !== undefined ? { stages } : {}), firstPeer: this.o.firstPeer, codec: codecName(this.o.codec) as PlanOptions["codec"], batch: this.o.batch,
      contextTokens: this.o.maxContext && this.o.maxContext > 0 ? this.o.maxContext : 512, keepGroups: false, maxHopSec: Infinity, objective: this.o.objective,
    };
  }

  /**
   * The best plan with one of these stage counts (the operator's mesh size is kept: `--peers N` asked
   * for N + 1 stages); with --auto-stages, or when none is feasible (memory), the planner's own choice.
   */
  best(cluster: Cluster, counts: number[]): Plan {
    if (this.o.autoStages) return plan(this.profile, cluster, this.options());
    let best: Plan | undefined;
    for (const n of new Set(counts.map((c) => Math.min(c, cluster.peers.length, this.profile.nLayer)))) {
      try {
        const p = plan(this.profile, cluster, this.options(n));
        if (!best || p.cost < best.cost) best = p;
      } catch {
        // infeasible with n stages
      }
    }
    return best ?? plan(this.profile, cluster, this.options());
  }

  /** The prediction for a given placement; null when it is not valid on this cluster (memory, a peer gone). */
  evaluate(cluster: Cluster, placement: Array<{ peer: string; start: number; end: number }>): Plan | null {
    try {
      return evaluatePlacement(this.profile, cluster, placement, this.options());
    } catch {
      return null;
    }
  }

  /** `--split 2,2,1` over these peers (host first), checked against the model. */
  split(split: readonly number[], peers: readonly string[]): Array<{ peer: string; start: number; end: number }> {
    const n = this.profile.nLayer;
    if (split.length !== peers.length || split.reduce((a, b) => a + b, 0) !== n || split.some((x) => !Number.isInteger(x) || x < 1)) {
      throw new Error(`layer split ${split.join(",")} does not fit ${peers.length} stages and ${n} layers`);
    }
    let s = 0;
    return split.map((k, i) => ({ peer: peers[i], start: s, end: (s += k) }));
  }
}

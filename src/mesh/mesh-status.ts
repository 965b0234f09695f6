// What GET /v1/mesh and `llmesh status` show: peers, ranges, RTTs, per-stage timings, the planner's
// prediction beside the measurement, and the membership events so far.
import type { Engine } from "../engine/engine.ts";
import type { StageStatsSnapshot } from "./stage-stats.ts";

/** How the layers were placed and what the planner predicts for it, beside what is measured. */
export interface PlacementStatus {
  source: "planner" | "--split";
  objective: "interactive" | "batch";
  /** Where the link bandwidths came from: the probe, or the operator's --link-bandwidth. RTTs are pinged. */
  bandwidth: "probed" | "--link-bandwidth";
  /** One stream, one token: Σ stage compute + Σ hops (ms). */
  predictedMsPerToken: number;
  /** Measured: mean time of single-token steps (one stream decoding alone) at stage 0, ring included; else of all steps. */
  measuredMsPerToken?: number;
  measuredFrom?: "single-token steps" | "all steps";
  predictedTokPerSec: number;
  stages: Array<{ peer: string; predictedMsPerToken: number }>;
  hops: Array<{ from: string; to: string; rttMs: number; bytesPerSec: number; predictedMs: number }>;
  notes: string[];
}

/** Membership events, counted (also logged, and exported as llmesh_mesh_events_total). */
export type MeshEventType = "join" | "leave" | "death" | "quarantine" | "replan" | "replay" | "unavailable";

export interface MeshEvent {
  type: MeshEventType;
  peer?: string;
  reason?: string;
  /** replan: how long the mesh was without a ring (ms). replay: tokens replayed. */
  ms?: number;
  tokens?: number;
  epoch?: number;
}

export interface MeshStatus {
  protocolVersion: number;
  ready: boolean;
  phase: string;
  /** Placement generation (1 = the first; +1 per re-plan). */
  epoch: number;
  /** Times every link was re-measured since the start (periodic refresh, `--probe-interval`). */
  linksRefreshed: number;
  codec: string;
  model: string;
  fingerprint: string;
  expectedPeers: number;
  placement?: PlacementStatus;
  /** Steps in flight at most so far, and bytes the last stage sent back per step. */
  pipeline?: { maxInFlight: number; replyBytesPerStep: number };
  /** Failover so far: events by type, sequences/tokens replayed, steps sent again, the longest time without a ring. */
  failover: { events: Partial<Record<MeshEventType, number>>; replayedSequences: number; replayedTokens: number; resentSteps: number; worstRecoveryMs: number };
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
    /** The JS heap's share of rssBytes (V8 heapTotal). */
    heapBytes?: number;
    /** The kernel (wasm) memory holding the stage's packed weights, KV caches and scratch. */
    kernelBytes?: number;
    stats?: StageStatsSnapshot;
  }>;
  /** Joined peers that hold no layers (the planner found no use for them yet, or they are being loaded). */
  spares: Array<{ peer: string; name: string; msPerLayer: number; freeMemoryBytes: number }>;
}

/** What a stage reports of its memory: the process's resident set, the JS heap, the kernel memory. */
export function processMemory(engine: Engine | undefined): { rssBytes: number; heapBytes: number; kernelBytes: number } {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapBytes: m.heapTotal, kernelBytes: engine?.kernelBytes ?? 0 };
}

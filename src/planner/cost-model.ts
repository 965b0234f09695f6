// Predictions for one placement: per-token decode latency, aggregate decode throughput with many streams
// in flight, prefill time, memory per stage. Pure arithmetic over the model profile, the peers' speeds
// and the links; no I/O.
//
// The model (every term is a number the live mesh can measure and feed back):
// - A stage's compute for n tokens at once (a decode step of n streams, or a prefill chunk of n tokens):
//     max(weight bytes / memory bandwidth, 2 · params · n / FLOP rate)
//   i.e. memory-bound at small n (every weight read once per step), compute-bound at large n. The last
//   stage adds the output head for each logit row. Attention over the KV cache and sampling are not
//   counted. Measured per-layer times stand in for bandwidth and FLOP rate (see peerSpeed).
// - A one-way hop of `bytes`: RTT/2 + bytes / bandwidth. K stages make a ring of K hops per token: K−1
//   hops carry activations (n_embd values per token in the chosen codec), the last carries the sampled
//   token id straight back to stage 0. One stage makes no hop.
// - Per-token decode latency (one stream alone): Σ stage(1) + Σ hop(1).
// - Throughput with B streams in flight, split into micro-batches of b tokens: each stream waits for its
//   own ring, so rate ≤ B / ring(b); each stage and its outgoing edge handle every micro-batch in turn, so
//   rate ≤ b / max_i(stage_i(b) + transfer_i(b)). The best b in 1..B is taken.
// - Prefill of N tokens in chunks of C with transfers overlapped with compute: the first chunk crosses the
//   whole pipeline, every further chunk adds the slowest of any stage's compute or any link's transfer;
//   the last stage computes logits for one row per sequence.
// - Memory of a stage: its weights (model-profile.ts) + KV for `batch` sequences of `contextTokens`, which
//   must fit in memBytes · (1 − headroom).
import type { Cluster, LinkFigures, PeerProfile } from "./cluster.ts";
import { LinkTable } from "./cluster.ts";
import {
  activationBytesPerToken, kvBytesPerElement, stageWeightBytes, TOKEN_ID_BYTES,
  type Codec, type KVType, type ModelProfile,
} from "./model-profile.ts";

/** One pipeline stage: a peer and its half-open layer range. */
export interface StageRange {
  peer: string;
  start: number;
  end: number;
}

/** Stages in ring order; stage 0 starts at layer 0, the last ends at n_layer. */
export type Placement = StageRange[];

/** What the cluster is asked to serve. */
export interface Workload {
  codec: Codec;
  /** Concurrent sequences (streams in flight); KV is reserved for all of them. */
  batch: number;
  /** KV positions reserved per sequence (prompt + generated tokens). */
  contextTokens: number;
  kvType: KVType;
  /** Tokens prefilled at once (e.g. batch × prompt length). */
  prefillTokens: number;
  /** Tokens per prefill chunk sent down the pipeline. */
  prefillChunk: number;
  /** Fraction of each peer's memory kept free (runtime buffers, the OS, fragmentation). */
  headroom: number;
}

export const DEFAULT_WORKLOAD: Workload = {
  codec: "f16", batch: 8, contextTokens: 612, kvType: "f32", prefillTokens: 8 * 512, prefillChunk: 128, headroom: 0.1,
};

/** A peer's effective speed: Infinity where a term is unknown (it then bounds nothing). */
export interface PeerSpeed {
  /** Bytes of weights read per second. */
  memBandwidth: number;
  /** FLOP/s. */
  flops: number;
}

function mean(a: number[]): number {
  return a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
}

/**
 * Measured per-layer times become an effective bandwidth (mean layer bytes / decode time) and FLOP rate
 * (2 · mean layer params / prefill time per token), so the same formulas serve measured and datasheet peers.
 */
export function peerSpeed(p: PeerProfile, m: ModelProfile): PeerSpeed {
  const memBandwidth = p.decodeSecPerLayer !== undefined ? mean(m.layerBytes) / p.decodeSecPerLayer : (p.memBandwidth ?? Infinity);
  const flops = p.prefillSecPerTokenPerLayer !== undefined ? (2 * mean(m.layerParams)) / p.prefillSecPerTokenPerLayer : (p.flops ?? Infinity);
  if (memBandwidth === Infinity && flops === Infinity) throw new Error(`peer ${p.id} has no speed figures`);
  return { memBandwidth, flops };
}

/** Seconds to push n tokens through matrices of `bytes` holding `params` weights. */
export function computeSec(s: PeerSpeed, bytes: number, params: number, nTokens: number): number {
  if (nTokens <= 0 || bytes <= 0) return 0;
  return Math.max(bytes / s.memBandwidth, (2 * params * nTokens) / s.flops);
}

/** Compute of stage [start, end) for n tokens, of which `logitRows` need the output head (last stage). */
export function stageComputeSec(s: PeerSpeed, m: ModelProfile, start: number, end: number, nTokens: number, logitRows: number): number {
  let bytes = 0;
  let params = 0;
  for (let l = start; l < end; l++) { bytes += m.layerBytes[l]; params += m.layerParams[l]; }
  let t = computeSec(s, bytes, params, nTokens);
  if (end === m.nLayer && logitRows > 0) t += computeSec(s, m.headBytes, m.headParams, logitRows);
  return t;
}

/** One-way time of a message of `bytes` over a link. */
export function hopSec(l: LinkFigures, bytes: number): number {
  return l.rttSec / 2 + bytes / l.bytesPerSec;
}

export function kvBytesPerLayer(m: ModelProfile, w: Workload): number {
  return m.kvElementsPerTokenPerLayer * kvBytesPerElement(w.kvType) * w.contextTokens * w.batch;
}

/** Memory stage [start, end) needs: weights + KV for the workload. */
export function stageMemoryBytes(m: ModelProfile, start: number, end: number, w: Workload): number {
  return stageWeightBytes(m, start, end) + (end - start) * kvBytesPerLayer(m, w);
}

export function usableMemoryBytes(p: PeerProfile, w: Workload): number {
  return p.memBytes * (1 - w.headroom);
}

export interface StagePrediction {
  peer: string;
  group?: string;
  start: number;
  end: number;
  memUsedBytes: number;
  memUsableBytes: number;
  memBytes: number;
  /** Compute for one token (one stream's decode step). */
  decodeSec: number;
  /** Compute for one prefill chunk. */
  prefillChunkSec: number;
}

export interface HopPrediction {
  from: string;
  to: string;
  carries: "activations" | "token ids";
  bytesPerToken: number;
  rttSec: number;
  bytesPerSec: number;
  /** One-way time for one token. */
  tokenSec: number;
  /** One-way time for a decode step of the whole batch (what the per-hop budget limits). */
  batchStepSec: number;
}

export interface Prediction {
  stages: StagePrediction[];
  hops: HopPrediction[];
  /** Per-token decode latency of one stream: compute + network. */
  decodeTokenSec: number;
  decodeComputeSec: number;
  decodeNetworkSec: number;
  /** Aggregate decode tokens per second with `batch` streams in flight, and the micro-batch size that gets it. */
  throughputTokPerSec: number;
  microBatch: number;
  prefillTokens: number;
  prefillSec: number;
  /** Worst one-way hop time of a decode step of the whole batch (0 for one stage). */
  worstHopSec: number;
  /** Every stage within its peer's usable memory. */
  fits: boolean;
}

/** Checks a placement covers [0, n_layer) contiguously with distinct known peers; throws otherwise. */
export function checkPlacement(m: ModelProfile, peers: ReadonlyMap<string, PeerProfile>, pl: Placement): void {
  if (pl.length === 0) throw new Error("empty placement");
  let at = 0;
  const seen = new Set<string>();
  for (const s of pl) {
    if (!peers.has(s.peer)) throw new Error(`placement names unknown peer ${s.peer}`);
    if (seen.has(s.peer)) throw new Error(`peer ${s.peer} appears twice in the placement`);
    seen.add(s.peer);
    if (s.start !== at || s.end <= s.start) throw new Error(`stage ${s.peer} [${s.start}, ${s.end}) does not continue at layer ${at}`);
    at = s.end;
  }
  if (at !== m.nLayer) throw new Error(`placement ends at layer ${at}, the model has ${m.nLayer}`);
}

/** Predicts everything about one placement. The placement is checked (checkPlacement) first. */
export function predict(m: ModelProfile, cluster: Cluster, pl: Placement, w: Workload, links: LinkTable = new LinkTable(cluster)): Prediction {
  const peers = new Map(cluster.peers.map((p) => [p.id, p]));
  checkPlacement(m, peers, pl);
  const K = pl.length;
  const speeds = pl.map((s) => peerSpeed(peers.get(s.peer)!, m));
  const act = activationBytesPerToken(m.nEmbd, w.codec);
  const chunk = Math.max(1, Math.min(w.prefillChunk, w.prefillTokens));

  const stages: StagePrediction[] = pl.map((s, i) => {
    const p = peers.get(s.peer)!;
    return {
      peer: s.peer, ...(p.group !== undefined ? { group: p.group } : {}), start: s.start, end: s.end,
      memUsedBytes: stageMemoryBytes(m, s.start, s.end, w), memUsableBytes: usableMemoryBytes(p, w), memBytes: p.memBytes,
      decodeSec: stageComputeSec(speeds[i], m, s.start, s.end, 1, 1),
      prefillChunkSec: stageComputeSec(speeds[i], m, s.start, s.end, chunk, 0),
    };
  });
  const hops: HopPrediction[] = K === 1 ? [] : pl.map((s, i) => {
    const to = pl[(i + 1) % K].peer;
    const l = links.get(s.peer, to);
    const bytes = i === K - 1 ? TOKEN_ID_BYTES : act;
    return {
      from: s.peer, to, carries: i === K - 1 ? "token ids" : "activations", bytesPerToken: bytes, rttSec: l.rttSec, bytesPerSec: l.bytesPerSec,
      tokenSec: hopSec(l, bytes), batchStepSec: hopSec(l, bytes * w.batch),
    };
  });

  const stageSec = (i: number, n: number, rows: number) => stageComputeSec(speeds[i], m, pl[i].start, pl[i].end, n, rows);
  const decodeComputeSec = stages.reduce((a, s) => a + s.decodeSec, 0);
  const decodeNetworkSec = hops.reduce((a, h) => a + h.tokenSec, 0);

  // Throughput: the best micro-batch size b in 1..B.
  let throughput = 0;
  let microBatch = 1;
  for (let b = 1; b <= Math.max(1, w.batch); b++) {
    let ring = 0;
    let bottleneck = 0;
    for (let i = 0; i < K; i++) {
      const c = stageSec(i, b, b);
      const h = hops[i];
      const transfer = h ? (b * h.bytesPerToken) / h.bytesPerSec : 0;
      ring += c + (h ? h.rttSec / 2 + transfer : 0);
      bottleneck = Math.max(bottleneck, c + transfer);
    }
    const rate = Math.min(Math.max(1, w.batch) / ring, b / bottleneck);
    if (rate > throughput * (1 + 1e-12)) { throughput = rate; microBatch = b; }
  }

  // Prefill: chunks of C tokens through the pipeline, transfers overlapped with compute.
  let prefillSec = 0;
  if (w.prefillTokens > 0) {
    const nChunks = Math.ceil(w.prefillTokens / chunk);
    let first = 0;
    let slowest = 0;
    for (let i = 0; i < K; i++) {
      first += stages[i].prefillChunkSec;
      slowest = Math.max(slowest, stages[i].prefillChunkSec);
      if (i < K - 1) {
        const h = hops[i];
        first += h.rttSec / 2 + (chunk * h.bytesPerToken) / h.bytesPerSec;
        slowest = Math.max(slowest, (chunk * h.bytesPerToken) / h.bytesPerSec);
      }
    }
    const last = K - 1;
    const headSec = computeSec(speeds[last], m.headBytes, m.headParams, Math.max(1, Math.min(w.batch, w.prefillTokens)));
    prefillSec = first + (nChunks - 1) * slowest + headSec;
  }

  return {
    stages, hops,
    decodeTokenSec: decodeComputeSec + decodeNetworkSec, decodeComputeSec, decodeNetworkSec,
    throughputTokPerSec: throughput, microBatch,
    prefillTokens: w.prefillTokens, prefillSec,
    worstHopSec: hops.reduce((a, h) => Math.max(a, h.batchStepSec), 0),
    fits: stages.every((s) => s.memUsedBytes <= s.memUsableBytes),
  };
}

// Predictions of the cost model on a two-stage example worked out by hand (numbers in the comments).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  customProfile, DEFAULT_WORKLOAD, peerSpeed, predict, stageMemoryBytes, type Cluster, type Workload,
} from "../../src/planner/index.ts";

const close = (a: number, b: number, what: string, rel = 1e-9) => assert.ok(Math.abs(a - b) <= rel * Math.abs(b), `${what}: ${a} ≠ ${b}`);

// 4 layers of 1 GB (0.5 G params), head 0.5 GB (0.25 G params), embedding 0.5 GB, n_embd 1000.
const model = customProfile({ nLayer: 4, layerBytes: 1e9, layerParams: 0.5e9, nEmbd: 1000, embdBytes: 0.5e9, headBytes: 0.5e9, headParams: 0.25e9, kvElementsPerTokenPerLayer: 100 });
const cluster: Cluster = {
  peers: [
    { id: "A", memBytes: 8e9, memBandwidth: 100e9, flops: 1e12 },
    { id: "B", memBytes: 8e9, memBandwidth: 50e9, flops: 1e12 },
  ],
  links: [],
  defaultLink: { rttSec: 0.01, bytesPerSec: 1e6 },
};
const work: Workload = { ...DEFAULT_WORKLOAD, codec: "f16", batch: 4, contextTokens: 1000, kvType: "f32", prefillTokens: 256, prefillChunk: 128, headroom: 0 };
const placement = [{ peer: "A", start: 0, end: 2 }, { peer: "B", start: 2, end: 4 }];

test("decode latency: stage compute plus K one-way hops, the last carrying the token id", () => {
  const p = predict(model, cluster, placement, work);
  close(p.stages[0].decodeSec, 0.02, "A: 2 GB / 100 GB/s"); // compute term 2·1e9/1e12 = 2 ms is smaller
  close(p.stages[1].decodeSec, 0.05, "B: 2 GB / 50 GB/s + head 0.5 GB / 50 GB/s");
  assert.equal(p.hops.length, 2);
  assert.equal(p.hops[0].carries, "activations");
  assert.equal(p.hops[0].bytesPerToken, 2000);
  close(p.hops[0].tokenSec, 0.005 + 2000 / 1e6, "A→B: RTT/2 + 2000 B at 1 MB/s");
  assert.equal(p.hops[1].carries, "token ids");
  close(p.hops[1].tokenSec, 0.005 + 4 / 1e6, "B→A: RTT/2 + 4 B");
  close(p.decodeTokenSec, 0.07 + 0.012004, "latency");
  close(p.decodeNetworkSec, 0.012004, "network share");
  close(p.hops[0].batchStepSec, 0.005 + (4 * 2000) / 1e6, "a decode step of the batch of 4");
  close(p.worstHopSec, 0.013, "worst hop");
});

test("throughput: the best micro-batch, bounded by streams/ring and by the slowest stage+edge", () => {
  const p = predict(model, cluster, placement, work);
  // b=1: min(4/0.082004, 1/0.050004) = 19.998; b=2: 39.99; b=3: min(4/0.086012, 3/0.050012) = 46.505; b=4: 45.446
  assert.equal(p.microBatch, 3);
  close(p.throughputTokPerSec, 4 / (0.08 + 0.002004 * 3), "throughput");
});

test("prefill: first chunk through the pipeline, then the slowest stage or link per further chunk, then the head", () => {
  const p = predict(model, cluster, placement, work);
  // chunk 128: A 2·1e9·128/1e12 = 0.256 s, B 0.256 s, A→B 0.005 + 128·2000/1e6 = 0.261 s; 2 chunks; head for 4 rows 0.01 s
  close(p.stages[0].prefillChunkSec, 0.256, "A per chunk");
  close(p.prefillSec, 0.256 + 0.261 + 0.256 + 0.256 + 0.01, "prefill");
});

test("one stage: no hops; memory counts weights, embedding, head and KV", () => {
  const p = predict(model, cluster, [{ peer: "A", start: 0, end: 4 }], work);
  assert.equal(p.hops.length, 0);
  close(p.decodeTokenSec, 0.04 + 0.005, "4 GB + head 0.5 GB at 100 GB/s");
  const kv = 100 * 4 * 1000 * 4; // elements × f32 × context × batch, per layer
  assert.equal(stageMemoryBytes(model, 0, 2, work), 2e9 + 0.5e9 + 2 * kv);
  assert.equal(p.stages[0].memUsedBytes, 4e9 + 0.5e9 + 0.5e9 + 4 * kv);
  assert.equal(p.fits, true);
});

test("measured per-layer times stand in for bandwidth and FLOP rate", () => {
  const s = peerSpeed({ id: "m", memBytes: 1, decodeSecPerLayer: 0.01, prefillSecPerTokenPerLayer: 0.001 }, model);
  assert.equal(s.memBandwidth, 1e11);
  assert.equal(s.flops, 1e12);
  const onlyFlops = peerSpeed({ id: "f", memBytes: 1, flops: 1e12 }, model);
  assert.equal(onlyFlops.memBandwidth, Infinity);
});

test("a bad placement is refused with the reason", () => {
  assert.throws(() => predict(model, cluster, [{ peer: "A", start: 0, end: 3 }], work), /ends at layer 3, the model has 4/);
  assert.throws(() => predict(model, cluster, [{ peer: "A", start: 0, end: 2 }, { peer: "A", start: 2, end: 4 }], work), /appears twice/);
  assert.throws(() => predict(model, cluster, [{ peer: "Z", start: 0, end: 4 }], work), /unknown peer Z/);
});

// Table-driven scenarios with answers worked out by hand. Peers are given measured per-layer decode times
// (and prefill times where compute matters), headroom and KV are zero, so every number is simple:
// a stage of n layers at d ms/layer takes n·d ms per token, a hop takes RTT/2 + bytes/bandwidth.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  customProfile, plan, PlacementError, profileFromShape, symmetricLink,
  type Cluster, type Link, type ModelProfile, type PeerProfile, type PlanOptions,
} from "../../src/planner/index.ts";

const GiB = 2 ** 30;
/** 10 layers of 1 GiB, no embedding/head/KV: memory counts layers only. */
const TEN = customProfile({ nLayer: 10, layerBytes: GiB, nEmbd: 1024 });
const LAN = { rttSec: 0.001, bytesPerSec: 1e9 };

function peer(id: string, memGiB: number, msPerLayer: number, extra: Partial<PeerProfile> = {}): PeerProfile {
  return { id, memBytes: memGiB * GiB, decodeSecPerLayer: msPerLayer / 1000, ...extra };
}
function cluster(peers: PeerProfile[], links: Link[] = [], defaultLink = LAN): Cluster {
  return { peers, links, defaultLink };
}
const show = (p: { placement: Array<{ peer: string; start: number; end: number }> }) => p.placement.map((s) => `${s.peer}[${s.start},${s.end})`).join(" ");

interface Row {
  name: string;
  model?: ModelProfile;
  cluster: Cluster;
  opts?: Partial<PlanOptions>;
  /** Expected placement, e.g. "A[0,5) B[5,10)". */
  expect?: string;
  leftOut?: Record<string, RegExp>;
  error?: RegExp;
}

const rows: Row[] = [
  {
    // A alone: 100 ms/token. Splitting over A and B adds two hops and saves nothing.
    name: "a model that fits one peer is not split (interactive)",
    cluster: cluster([peer("A", 16, 10), peer("B", 16, 10)]),
    expect: "A[0,10)",
  },
  {
    // Memory-bound peers (no FLOP figure): 8 streams batch for free on one stage, 80 tok/s; two stages ≤ 8/(0.1 s + hops).
    name: "a model that fits one peer is not split (batch, memory-bound)",
    cluster: cluster([peer("A", 16, 10), peer("B", 16, 10)]),
    opts: { objective: "batch" },
    expect: "A[0,10)",
  },
  {
    // A+B: 100 ms + 2 hops ≈ 101 ms; C alone 1000 ms; C in any pipeline adds ≥ 100 ms. Equal-latency splits of
    // A+B are told apart by balance: 5/5.
    name: "a slow peer is left out",
    cluster: cluster([peer("A", 6, 10), peer("B", 6, 10), peer("C", 16, 100)]),
    expect: "A[0,5) B[5,10)",
    leftOut: { C: /would not help/ },
  },
  {
    // C is fast (1 ms/layer) but 500 ms away: a hop is 250 ms > the 200 ms budget, so A+B (60 + 4000 ms).
    name: "a far peer is excluded by the per-hop budget",
    cluster: cluster([peer("A", 6, 10), peer("B", 6, 1000), peer("C", 6, 1)], [
      ...symmetricLink("A", "C", 0.5, 1e9), ...symmetricLink("B", "C", 0.5, 1e9),
    ]),
    expect: "A[0,6) B[6,10)",
    leftOut: { C: /every link is over the 200 ms hop budget/ },
  },
  {
    // Same cluster without a budget: A 4 layers + C 6 layers = 46 ms + 2 × 250 ms = 546 ms beats 4060 ms.
    name: "the same far peer is used when there is no hop budget",
    cluster: cluster([peer("A", 6, 10), peer("B", 6, 1000), peer("C", 6, 1)], [
      ...symmetricLink("A", "C", 0.5, 1e9), ...symmetricLink("B", "C", 0.5, 1e9),
    ]),
    opts: { maxHopSec: Infinity },
    expect: "A[0,4) C[4,10)",
  },
  {
    // A (fast) holds at most 4 layers: 40 + 6 × 20 = 160 ms + hops, against B alone at 200 ms.
    name: "memory limits respected: the fast peer takes what it can hold",
    cluster: cluster([peer("A", 4, 10), peer("B", 16, 20)]),
    expect: "A[0,4) B[4,10)",
  },
  {
    name: "headroom counts: 10% of A's 4.4 GiB kept free leaves room for 3 layers",
    cluster: cluster([peer("A", 4.4, 10), peer("B", 16, 20)]),
    opts: { headroom: 0.1 },
    expect: "A[0,3) B[3,10)",
  },
  {
    name: "impossible: the cluster has less memory than the model",
    cluster: cluster([peer("A", 4, 10), peer("B", 4, 10)]),
    error: /^cannot place: needs 10\.0 GiB .*cluster has 8\.0 GiB/,
  },
  {
    // 3 layers of 3 GiB on two 5 GiB peers: 10 GiB ≥ 9 GiB in all, but each peer holds one layer.
    name: "impossible: enough memory in all, but no split into whole layers fits",
    model: customProfile({ nLayer: 3, layerBytes: 3 * GiB }),
    cluster: cluster([peer("A", 5, 10), peer("B", 5, 10)]),
    error: /^cannot place: no split into contiguous layer ranges fits the peers' memory/,
  },
  {
    // 9 layers, 4 per peer: three stages. Activations are 2 MB/token (n_embd 1M, f16); A–B runs at 1 MB/s, so a
    // forward hop over it costs 2 s, while the 4-byte token id going back costs nothing: A–B must be the return.
    name: "the ring order puts the slow link where only the token id crosses it",
    model: customProfile({ nLayer: 9, layerBytes: GiB, nEmbd: 1 << 20 }),
    cluster: cluster([peer("A", 4, 10), peer("B", 4, 10), peer("C", 4, 10)], symmetricLink("A", "B", 0.001, 1e6)),
    opts: { maxHopSec: Infinity },
    expect: "A[0,3) C[3,6) B[6,9)",
  },
  {
    // Compute-bound peers (1 ms per token per layer): one stage does 8 streams at 10 ms × 8 = 100 tok/s;
    // two stages of 5 layers pipeline micro-batches: 200 tok/s. One stream: 10 ms alone vs ≈ 11 ms split.
    name: "interactive keeps one stage",
    cluster: cluster([peer("A", 16, 1, { prefillSecPerTokenPerLayer: 0.001 }), peer("B", 16, 1, { prefillSecPerTokenPerLayer: 0.001 })]),
    opts: { objective: "interactive" },
    expect: "A[0,10)",
  },
  {
    name: "batch splits the same cluster for throughput",
    cluster: cluster([peer("A", 16, 1, { prefillSecPerTokenPerLayer: 0.001 }), peer("B", 16, 1, { prefillSecPerTokenPerLayer: 0.001 })]),
    opts: { objective: "batch" },
    expect: "A[0,5) B[5,10)",
  },
  {
    // A alone 100 ms; A 6 layers + B (9 ms/layer, 4 GiB) 4 layers = 96 ms + 1 ms of hops: 3% better, under 5%.
    name: "fewer stages preferred when the gain is small",
    cluster: cluster([peer("A", 16, 10), peer("B", 4, 9)]),
    expect: "A[0,10)",
  },
  {
    name: "…and split when any gain counts",
    cluster: cluster([peer("A", 16, 10), peer("B", 4, 9)]),
    opts: { minGain: 0 },
    expect: "A[0,6) B[6,10)",
  },
  {
    name: "forced stage count",
    cluster: cluster([peer("A", 16, 10), peer("B", 16, 10)]),
    opts: { stages: 2 },
    expect: "A[0,5) B[5,10)",
  },
  {
    name: "forced stage count larger than the cluster",
    cluster: cluster([peer("A", 16, 10), peer("B", 16, 10)]),
    opts: { stages: 3 },
    error: /^cannot place on 3 stages: the cluster has 2 peers/,
  },
  {
    // eu (A, B) can hold the model: the pipeline stays there, though C (us, faster) + A would be quicker.
    name: "a pipeline stays inside a group that can hold the model",
    cluster: cluster([peer("A", 6, 10, { group: "eu" }), peer("B", 6, 10, { group: "eu" }), peer("C", 6, 5, { group: "us" })]),
    expect: "A[0,5) B[5,10)",
    leftOut: { C: /outside group "eu"/ },
  },
  {
    name: "…unless told to ignore groups",
    cluster: cluster([peer("A", 6, 10, { group: "eu" }), peer("B", 6, 10, { group: "eu" }), peer("C", 6, 5, { group: "us" })]),
    opts: { keepGroups: false },
    expect: "A[0,4) C[4,10)",
  },
  {
    // No group can hold 10 GiB alone: the pipeline spans groups.
    name: "groups are crossed when no group can hold the model",
    cluster: cluster([peer("A", 6, 10, { group: "eu" }), peer("C", 6, 5, { group: "us" })]),
    expect: "A[0,4) C[4,10)",
  },
];

for (const r of rows) {
  test(`placement: ${r.name}`, () => {
    const opts: Partial<PlanOptions> = { headroom: 0, ...r.opts };
    if (r.error) {
      assert.throws(() => plan(r.model ?? TEN, r.cluster, opts), (e: unknown) => e instanceof PlacementError && r.error!.test(e.message));
      return;
    }
    const p = plan(r.model ?? TEN, r.cluster, opts);
    assert.equal(show(p), r.expect);
    for (const s of p.prediction.stages) assert.ok(s.memUsedBytes <= s.memUsableBytes, `${s.peer} over its memory`);
    for (const [peerId, re] of Object.entries(r.leftOut ?? {})) {
      const l = p.leftOut.find((x) => x.peer === peerId);
      assert.ok(l && re.test(l.reason), `${peerId} left out: ${l?.reason}`);
    }
  });
}

test("placement: latency figures of the fast-peer row, by hand", () => {
  const p = plan(TEN, cluster([peer("A", 4, 10), peer("B", 16, 20)]), { headroom: 0 });
  // 40 + 120 ms of compute; A→B 0.5 ms + 2048 B/1 GB/s, B→A 0.5 ms + 4 B/1 GB/s
  assert.ok(Math.abs(p.prediction.decodeTokenSec - (0.16 + 0.001 + 2052 / 1e9)) < 1e-12);
  assert.equal(p.options.length, 2, "both stage counts were feasible");
  assert.ok(Math.abs(p.options[0].prediction.decodeTokenSec - 0.2) < 1e-12, "B alone: 200 ms");
});

test("placement: beyond 7 peers a heuristic search still leaves out the slow one", () => {
  const peers = Array.from({ length: 9 }, (_, i) => peer(`P${i + 1}`, 4, i === 4 ? 100 : 10));
  const t0 = performance.now();
  const p = plan(TEN, cluster(peers), { headroom: 0 });
  assert.equal(p.search, "heuristic");
  assert.equal(p.placement.length, 3, "10 layers of 1 GiB on 4 GiB peers: three stages");
  assert.ok(!p.placement.some((s) => s.peer === "P5"));
  assert.deepEqual(p.placement.map((s) => s.end - s.start).sort(), [3, 3, 4]);
  assert.ok(performance.now() - t0 < 2000);
});

test("placement: exhaustive search over 7 peers and an 80-layer model stays fast", () => {
  const m = profileFromShape("llama-3.1-70b", "Q4_K");
  const peers = Array.from({ length: 7 }, (_, i) => ({ id: `n${i}`, memBytes: (12 + 2 * i) * GiB, memBandwidth: (40 + 10 * i) * 1e9, flops: 20e12 }));
  const t0 = performance.now();
  const p = plan(m, { peers, links: [], defaultLink: { rttSec: 0.002, bytesPerSec: 1.25e8 } });
  const ms = performance.now() - t0;
  assert.equal(p.search, "exhaustive");
  // 37 GiB of weights; the two largest peers (24 and 22 GiB, less 10%) are also the fastest and hold it.
  assert.deepEqual(p.placement.map((s) => s.peer).sort(), ["n5", "n6"]);
  const n6 = p.placement.find((s) => s.peer === "n6")!;
  assert.ok(n6.end - n6.start > 40, "the fastest peer takes the most layers");
  assert.ok(ms < 5000, `${ms} ms`);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  customProfile, evaluatePlacement, plan, PlacementError, replanGain, shouldReplan,
  type Cluster, type Plan, type PlanScore, type PeerProfile,
} from "../../src/planner/index.ts";

const GiB = 2 ** 30;
const TEN = customProfile({ nLayer: 10, layerBytes: GiB, nEmbd: 1024 });
const peer = (id: string, memGiB: number, ms: number): PeerProfile => ({ id, memBytes: memGiB * GiB, decodeSecPerLayer: ms / 1000 });
const cluster = (peers: PeerProfile[]): Cluster => ({ peers, links: [], defaultLink: { rttSec: 0.001, bytesPerSec: 1e9 } });
const opts = { headroom: 0 };
const score = (cost: number, placement = [{ peer: "A", start: 0, end: 10 }], objective: PlanScore["objective"] = "interactive"): PlanScore => ({ cost, placement, objective });

test("hysteresis: no reshuffle for a gain under the threshold", () => {
  const other = [{ peer: "B", start: 0, end: 10 }];
  assert.equal(shouldReplan(score(0.1), score(0.095, other), 0.1), false, "5% better");
  assert.equal(shouldReplan(score(0.1), score(0.089, other), 0.1), true, "11% better");
  assert.equal(shouldReplan(score(0.1), score(0.095, other), 0.05), true, "5% better, 5% threshold");
  assert.equal(shouldReplan(score(0.1), score(0.12, other), 0), false, "worse");
  assert.equal(shouldReplan(score(0.1), score(0.05), 0.1), false, "the same placement");
  assert.equal(shouldReplan(null, score(0.2, other)), true, "nothing running");
  assert.equal(shouldReplan(score(0.1), score(0.1, other, "batch")), true, "the objective changed");
  assert.ok(Math.abs(replanGain(score(0.1), score(0.08, other)) - 0.2) < 1e-12);
});

function current(c: Cluster, running: Plan): Plan | null {
  try {
    return evaluatePlacement(TEN, c, running.placement, opts);
  } catch (e) {
    if (e instanceof PlacementError) return null;
    throw e;
  }
}

test("membership change: a slightly faster newcomer does not move layers; a much faster one does; a departure always does", () => {
  const before = cluster([peer("A", 6, 10), peer("B", 6, 10)]);
  const running = plan(TEN, before, opts); // A[0,5) B[5,10): 100 ms + 1 ms of hops
  assert.equal(running.placement.length, 2);

  // D alone: 95 ms — 6% better, under 10%.
  const slightly = cluster([peer("A", 6, 10), peer("B", 6, 10), peer("D", 16, 9.5)]);
  const cand1 = plan(TEN, slightly, opts);
  assert.deepEqual(cand1.placement, [{ peer: "D", start: 0, end: 10 }]);
  assert.equal(shouldReplan(current(slightly, running), cand1, 0.1), false);

  // D alone at 50 ms: 50% better.
  const much = cluster([peer("A", 6, 10), peer("B", 6, 10), peer("D", 16, 5)]);
  assert.equal(shouldReplan(current(much, running), plan(TEN, much, opts), 0.1), true);

  // B leaves: the running placement is invalid.
  const left = cluster([peer("A", 6, 10), peer("C", 16, 10)]);
  assert.equal(current(left, running), null);
  assert.throws(() => evaluatePlacement(TEN, left, running.placement, opts), /peer B left/);
  assert.equal(shouldReplan(current(left, running), plan(TEN, left, opts), 0.1), true);
});

test("a running placement that no longer fits memory is invalid", () => {
  const shrunk = cluster([peer("A", 4, 10), peer("B", 6, 10)]);
  assert.throws(() => evaluatePlacement(TEN, shrunk, [{ peer: "A", start: 0, end: 5 }, { peer: "B", start: 5, end: 10 }], opts), /A needs 5\.0 GiB, has 4\.0 GiB/);
});

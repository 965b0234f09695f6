// Failure detection (src/mesh/liveness.ts), table-driven with explicit clocks: silence past
// missBeats × beatMs (+ the peer's busy allowance) is death; shorter blips are not; a check that
// fires late (the host itself stalled) does not count the stall against anyone.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Liveness } from "../../src/mesh/liveness.ts";

const O = { beatMs: 250, missBeats: 4 };

/** Runs checks every beat from t=0 to `until`, with the peer heard at `heardAt` times; returns when it was declared dead (or -1). */
function deathTime(heardAt: number[], until: number, busyMs = 0, stalls: Array<[number, number]> = []): number {
  const l = new Liveness(O, 0);
  l.heard("p", 0);
  const heard = [...heardAt].sort((a, b) => a - b);
  for (let t = O.beatMs; t <= until; t += O.beatMs) {
    // A stall [from, to): no check runs inside it; the next one fires at `to`, late.
    const stall = stalls.find(([a, b]) => t > a && t < b);
    if (stall) continue;
    const now = stalls.find(([a, b]) => t >= b && t - O.beatMs < b && t - O.beatMs >= a)?.[1] ?? t;
    while (heard.length > 0 && heard[0] <= now) l.heard("p", heard.shift()!);
    if (l.check(() => busyMs, now).includes("p")) return now;
  }
  return -1;
}

test("silence is judged against missBeats × beatMs plus the work in flight", () => {
  const cases: Array<{ name: string; heard: number[]; until: number; busy?: number; stalls?: Array<[number, number]>; dead: number }> = [
    { name: "a peer answering every beat lives", heard: Array.from({ length: 40 }, (_, i) => (i + 1) * 250), until: 10_000, dead: -1 },
    { name: "silent from the start: dead after just over 1 s", heard: [], until: 5000, dead: 1250 },
    { name: "a 900 ms blip is tolerated", heard: [250, 1150, 1400, 1650, 1900, 2150, 2400, 2650, 2900], until: 3000, dead: -1 },
    { name: "silent after 2 s: dead at 3.25 s", heard: [250, 500, 750, 1000, 1250, 1500, 1750, 2000], until: 6000, dead: 3250 },
    { name: "busy with 2 s of work in flight: 3 s of silence allowed", heard: [], until: 6000, busy: 2000, dead: 3250 },
    { name: "the host stalled 3 s (no check ran): the stall is forgiven", heard: [250, 500, 750, 1000, 4300, 4500, 4750, 5000], until: 5000, stalls: [[1000, 4250]], dead: -1 },
  ];
  for (const c of cases) assert.equal(deathTime(c.heard, c.until, c.busy ?? 0, c.stalls ?? []), c.dead, c.name);
});

test("forgotten peers are never declared dead; bad options are refused", () => {
  const l = new Liveness(O, 0);
  l.heard("a", 0);
  l.heard("b", 0);
  l.forget("b");
  let dead: string[] = [];
  for (let t = 250; t <= 5000; t += 250) dead = l.check(() => 0, t);
  assert.deepEqual(dead, ["a"]);
  assert.equal(l.silentMs("b", 5000), undefined);
  assert.throws(() => new Liveness({ beatMs: 0, missBeats: 4 }), RangeError);
  assert.throws(() => new Liveness({ beatMs: 250, missBeats: 0 }), RangeError);
});

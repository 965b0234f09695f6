import assert from "node:assert/strict";
import { test } from "node:test";
import { StopMatcher } from "../../src/gateway/stop-matcher.ts";

function run(stops: string[], pieces: string[]): { out: string[]; stopped: boolean; rest: string } {
  const m = new StopMatcher(stops);
  const out: string[] = [];
  for (const p of pieces) {
    const r = m.push(p);
    out.push(r.text);
    if (r.stopped) return { out, stopped: true, rest: "" };
  }
  return { out, stopped: false, rest: m.flush() };
}

test("no stop strings: text passes through", () => {
  assert.deepEqual(run([], ["a", "b"]), { out: ["a", "b"], stopped: false, rest: "" });
});

test("a stop string within one piece cuts the text before it", () => {
  assert.deepEqual(run(["END"], ["abcENDxyz"]), { out: ["abc"], stopped: true, rest: "" });
});

test("a stop string split across pieces is held back, never emitted", () => {
  const r = run(["</s>"], ["hello <", "/", "s", ">world"]);
  assert.deepEqual(r, { out: ["hello ", "", "", ""], stopped: true, rest: "" });
});

test("held text that turns out not to be a stop string is released", () => {
  const r = run(["STOP"], ["ab S", "T", "x", "yz"]);
  assert.deepEqual(r.out, ["ab ", "", "STx", "yz"]);
  assert.equal(r.stopped, false);
});

test("the end of generation flushes held text", () => {
  assert.deepEqual(run(["STOP"], ["abc ST"]), { out: ["abc "], stopped: false, rest: "ST" });
});

test("the earliest of several stop strings wins; overlapping prefixes", () => {
  assert.deepEqual(run(["cd", "bcx"], ["abc", "d"]).out.join(""), "ab");
  assert.deepEqual(run(["bab", "a"], ["b", "ab"]).out.join(""), "b");
  assert.deepEqual(run(["xab", "ab"], ["xab"]).out.join(""), "");
  assert.deepEqual(run(["aab"], ["a", "a", "a", "b"]).out.join(""), "a");
  assert.deepEqual(run(["\n\n"], ["line\n", "\nnext"]), { out: ["line", ""], stopped: true, rest: "" });
});

test("empty stop strings are ignored", () => {
  assert.deepEqual(run([""], ["abc"]).out, ["abc"]);
});

test("random pieces: emitted text equals the reference cut", () => {
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  for (let iter = 0; iter < 500; iter++) {
    const alphabet = "ab\n";
    const stops = Array.from({ length: 1 + rnd(3) }, () => Array.from({ length: 1 + rnd(3) }, () => alphabet[rnd(3)]).join(""));
    const text = Array.from({ length: rnd(30) }, () => alphabet[rnd(3)]).join("");
    const pieces: string[] = [];
    for (let i = 0; i < text.length; ) {
      const n = 1 + rnd(4);
      pieces.push(text.slice(i, i + n));
      i += n;
    }
    // Reference: feed one character at a time; cut where the first stop string completes.
    let cut = text.length;
    for (let e = 1; e <= text.length && cut === text.length; e++) {
      for (const s of stops) if (text.slice(0, e).endsWith(s)) cut = Math.min(cut, e - s.length);
    }
    const r = run(stops, pieces);
    assert.equal(r.out.join("") + r.rest, text.slice(0, cut), JSON.stringify({ stops, pieces }));
    assert.equal(r.stopped, cut < text.length);
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { LinkTable, buildCluster, parseLink, parsePeer, parseScenario } from "../../src/planner/index.ts";

test("peer specs: units, name, group, measured times", () => {
  const p = parsePeer("mem=16G,tflops=20,bw=50GB/s,name=a,group=eu", 0);
  assert.deepEqual(p, { id: "a", memBytes: 16 * 2 ** 30, flops: 20e12, memBandwidth: 50e9, group: "eu" });
  const q = parsePeer({ mem: "8GB", decode: "9ms", prefill: "40us" }, 2);
  assert.equal(q.id, "p3");
  assert.equal(q.memBytes, 8e9);
  assert.ok(Math.abs(q.decodeSecPerLayer! - 0.009) < 1e-12);
  assert.throws(() => parsePeer("mem=16G", 0), /give its speed/);
  assert.throws(() => parsePeer("tflops=2", 0), /mem= is required/);
  assert.throws(() => parsePeer("mem=16G,bw=50GB/s,cores=8", 0), /unknown key "cores"/);
});

test("links: the default, pairs both ways, one way, groups; a peer pair beats a group pair beats the default", () => {
  const peers = [parsePeer("mem=8G,bw=50GB/s,name=a,group=eu", 0), parsePeer("mem=8G,bw=50GB/s,name=b,group=eu", 1), parsePeer("mem=8G,bw=50GB/s,name=c,group=us", 2)];
  const c = buildCluster(peers, [
    parseLink("rtt=242ms,bw=20mbit"),
    parseLink("eu-us:rtt=100ms,bw=100mbit"),
    parseLink("a-c:rtt=80ms,bw=1gbit"),
    parseLink("b>a:rtt=3ms,bw=1gbit"),
  ]);
  const t = new LinkTable(c);
  assert.deepEqual(t.get("a", "b"), { rttSec: 0.242, bytesPerSec: 2.5e6 }, "default");
  assert.equal(t.get("b", "a").rttSec, 0.003, "one way b>a");
  assert.equal(t.get("b", "c").rttSec, 0.1, "group pair");
  assert.equal(t.get("c", "b").rttSec, 0.1, "group pair, both ways");
  assert.equal(t.get("a", "c").rttSec, 0.08, "peer pair beats group pair");
  assert.equal(t.get("c", "a").bytesPerSec, 1.25e8);
  assert.throws(() => buildCluster(peers, [parseLink("a-x:rtt=1ms,bw=1gbit")]), /cannot read "a-x"/);
  assert.throws(() => parseLink("rtt=1ms"), /give both rtt= and bw=/);
});

test("a JSON scenario: peers and links as strings or objects, settings by name", () => {
  const s = parseScenario({
    model: "qwen2.5-7b", type: "Q4_K", stages: 2, codec: "int8",
    peers: ["mem=16G,bw=100GB/s,name=x", { name: "y", mem: "16G", bw: "100GB/s" }],
    links: ["rtt=5ms,bw=1gbit", { between: "x-y", rtt: "1ms", bw: "10gbit" }],
  });
  assert.equal(s.model, "qwen2.5-7b");
  assert.equal(s.peers.length, 2);
  assert.deepEqual(s.settings, { stages: 2, codec: "int8" });
  const c = buildCluster(s.peers, s.links);
  assert.equal(new LinkTable(c).get("y", "x").rttSec, 0.001);
  assert.throws(() => parseScenario({ peers: [], colour: "red" }), /unknown key "colour"/);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  codecTable, formatBandwidth, formatDuration, formatNetBytes, latencyTable, parseBandwidth, parseBytes, parseDuration,
  prefillTable, REFERENCE_LINKS,
} from "../../src/planner/index.ts";

test("sizes, bandwidths and durations as people write them", () => {
  assert.equal(parseBytes("16G"), 16 * 2 ** 30);
  assert.equal(parseBytes("16GiB"), 16 * 2 ** 30);
  assert.equal(parseBytes("16GB"), 16e9);
  assert.equal(parseBytes("512M"), 512 * 2 ** 20);
  assert.equal(parseBytes("4096B"), 4096);
  assert.equal(parseBandwidth("20mbit"), 2.5e6);
  assert.equal(parseBandwidth("20Mbit/s"), 2.5e6);
  assert.equal(parseBandwidth("20Mbps"), 2.5e6);
  assert.equal(parseBandwidth("1gbit"), 1.25e8);
  assert.equal(parseBandwidth("50GB/s"), 50e9);
  assert.equal(parseBandwidth("100MB/s"), 100e6);
  assert.equal(parseBandwidth("1GiB/s"), 2 ** 30);
  assert.ok(Math.abs(parseDuration("242ms") - 0.242) < 1e-12);
  assert.equal(parseDuration("2s"), 2);
  assert.ok(Math.abs(parseDuration("500us") - 5e-4) < 1e-15);
  assert.throws(() => parseBytes("16"), /needs a unit/);
  assert.throws(() => parseBandwidth("50GB"), /bytes per second as 50GB\/s/);
  assert.throws(() => parseDuration("3 parsecs"), /unknown duration unit/);
  assert.equal(formatDuration(36.3), "36.3 s");
  assert.equal(formatDuration(0.0029), "2.9 ms");
  assert.equal(formatNetBytes(29360128), "29.4 MB");
  assert.equal(formatBandwidth(2.5e6), "20 Mbit/s");
});

test("the published WAN figures: Qwen2.5-7B, K=4, 100 tokens, counted T·(K−1)·RTT/2", () => {
  const rows = latencyTable(100, 4, REFERENCE_LINKS);
  const [inter, cont, reg] = rows;
  assert.ok(inter.publishedSec >= 36 && inter.publishedSec <= 37, `${inter.publishedSec}`);
  assert.ok(Math.abs(cont.publishedSec - 6.1) < 0.1, `${cont.publishedSec}`);
  assert.ok(Math.abs(reg.publishedSec - 0.77) < 0.03, `${reg.publishedSec}`);
  // our ring: K one-way hops per token; llama.cpp RPC: two round trips per remote stage
  assert.ok(Math.abs(inter.ringSec - 100 * 4 * 0.121) < 1e-9);
  assert.ok(Math.abs(inter.rpcSec - 100 * 3 * 2 * 0.242) < 1e-9);
  // one stage: no network at all
  assert.equal(latencyTable(100, 1, REFERENCE_LINKS)[0].ringSec, 0);
});

test("the published prefill boundary: 8 × 512 tokens in f16 ≈ 29.4 MB, ≈ 12 s per hop at 20 Mbit/s", () => {
  const rows = prefillTable(3584, 8, 512, 0.242, 20e6 / 8);
  const f16 = rows.find((r) => r.codec === "f16")!;
  assert.equal(f16.bytesPerBoundary, 8 * 512 * 3584 * 2);
  assert.ok(Math.abs(f16.transferSec - 11.74) < 0.01, `${f16.transferSec}`);
  assert.ok(f16.hopSec > 11.5 && f16.hopSec < 12.5);
  assert.equal(rows.find((r) => r.codec === "int8")!.bytesPerBoundary, 8 * 512 * (3584 + 4));
  assert.equal(rows.find((r) => r.codec === "f32")!.bytesPerBoundary, 2 * f16.bytesPerBoundary);
});

test("per-codec ring totals add transfers to K one-way hops", () => {
  const rows = codecTable(3584, 100, 4, 0.242, 2.5e6);
  const f16 = rows.find((r) => r.codec === "f16")!;
  assert.equal(f16.bytesPerToken, 7168);
  assert.ok(Math.abs(f16.ringTotalSec - 100 * (4 * 0.121 + 3 * (7168 / 2.5e6) + 4 / 2.5e6)) < 1e-9);
});

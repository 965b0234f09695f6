// The link bandwidth probe (src/mesh/bandwidth-probe.ts) over the memory transport: it works, both
// directions, refuses peers without the probe. Against emulated links (a timing test, run alone):
// bandwidth-probe-shaped.serial.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { probeBandwidth, serveBandwidthProbe } from "../../src/mesh/bandwidth-probe.ts";
import { MemoryTransport } from "../../src/mesh/memory-transport.ts";

test("memory transport: both directions, a positive bandwidth and RTT, the median of the samples", async () => {
  const a = new MemoryTransport();
  const b = new MemoryTransport();
  try {
    await serveBandwidthProbe(b);
    for (const direction of ["send", "receive"] as const) {
      const r = await probeBandwidth(a, b.addresses(), { direction, maxBytes: 1024 * 1024, samples: 3 });
      assert.equal(r.direction, direction);
      assert.ok(Number.isFinite(r.bytesPerSec) && r.bytesPerSec > 1e6, `${direction}: ${r.bytesPerSec} B/s`);
      assert.ok(r.rttSec >= 0 && r.rttSec < 0.5);
      assert.equal(r.samples.length, 3);
      const sorted = [...r.samples].sort((x, y) => x - y);
      assert.equal(r.bytesPerSec, sorted[1]);
      assert.ok(r.burstBytes <= 1024 * 1024);
    }
    // Repeated probes over the same peer work (each on its own link).
    await probeBandwidth(a, b.addresses(), { maxBytes: 64 * 1024, samples: 1 });
  } finally {
    await a.stop();
    await b.stop();
  }
});

test("a peer that does not serve the probe: probeBandwidth rejects", async () => {
  const a = new MemoryTransport();
  const b = new MemoryTransport();
  try {
    await assert.rejects(probeBandwidth(a, b.addresses(), { timeoutMs: 2000 }));
  } finally {
    await a.stop();
    await b.stop();
  }
});

// The link bandwidth probe (src/mesh/bandwidth-probe.ts) over libp2p behind a LinkShaper at a set
// rate and delay: the measured bandwidth within 25% of the emulated one, the RTT near twice the delay.
// A timing test (named *.serial.test.ts: run after the others, alone — beside the mesh tests'
// processes on this 2-core machine it measured 14 Mbit/s for 20).
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { probeBandwidth, serveBandwidthProbe } from "../../src/mesh/bandwidth-probe.ts";
import { Libp2pTransport } from "../../src/mesh/libp2p-transport.ts";
import { freePort, LinkShaper } from "../../src/mesh/link-shaper.ts";

async function shapedPair(delayMs: number, rateBitsPerSec: number) {
  const port = await freePort();
  const shaper = await LinkShaper.start({ targetPort: port, delayMs, rateBitsPerSec });
  const b = await Libp2pTransport.create({ privateKey: await generateKeyPair("Ed25519"), listen: [`/ip4/127.0.0.1/tcp/${port}`], announce: [`/ip4/127.0.0.1/tcp/${shaper.port}`] });
  const a = await Libp2pTransport.create({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"] });
  await serveBandwidthProbe(b);
  return {
    a, b,
    close: async () => {
      await a.stop();
      await b.stop();
      await shaper.close();
    },
  };
}

for (const mbit of [20, 100]) {
  test(`libp2p behind a LinkShaper at ${mbit} Mbit/s, 5 ms each way: within 25% both directions`, async () => {
    const delayMs = 5;
    const { a, b, close } = await shapedPair(delayMs, mbit * 1e6);
    try {
      for (const direction of ["send", "receive"] as const) {
        const t0 = performance.now();
        const r = await probeBandwidth(a, b.addresses(), { direction });
        const measuredMbit = (r.bytesPerSec * 8) / 1e6;
        const took = performance.now() - t0;
        assert.ok(Math.abs(measuredMbit - mbit) / mbit < 0.25, `${direction}: measured ${measuredMbit.toFixed(1)} Mbit/s for ${mbit} (samples ${r.samples.map((s) => ((s * 8) / 1e6).toFixed(1)).join(", ")}; burst ${r.burstBytes} B; RTT ${(r.rttSec * 1000).toFixed(1)} ms)`);
        assert.ok(r.rttSec >= (2 * delayMs) / 1000 && r.rttSec < (2 * delayMs + 15) / 1000, `RTT ${r.rttSec}`);
        // Sized for ~100 ms per burst: a probe costs well under two seconds.
        assert.ok(took < 3000, `probe took ${took.toFixed(0)} ms`);
      }
    } finally {
      await close();
    }
  });
}

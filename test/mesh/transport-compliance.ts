// The compliance suite every Transport implementation runs (like js-libp2p's interface tests):
// ordered delivery of frames, both directions, large frames, many links, end on close, and
// backpressure (a receiver that does not read stops the sender; nothing is buffered without bound).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { StageLink, Transport } from "../../src/mesh/transport.ts";

export interface TransportFactory {
  name: string;
  create(): Promise<Transport>;
}

async function pair(f: TransportFactory, protocol = "/llmesh/test/1"): Promise<{ a: Transport; b: Transport; dialer: StageLink; listener: StageLink }> {
  const a = await f.create();
  const b = await f.create();
  let got!: (l: StageLink) => void;
  const p = new Promise<StageLink>((r) => (got = r));
  await b.handle(protocol, (l) => got(l));
  const dialer = await a.dial(b.addresses(), protocol);
  return { a, b, dialer, listener: await p };
}

export function transportCompliance(f: TransportFactory): void {
  test(`${f.name}: frames arrive in order, both ways, with their bytes`, async () => {
    const { a, b, dialer, listener } = await pair(f);
    try {
      assert.equal(dialer.remotePeer, b.peerId);
      assert.equal(listener.remotePeer, a.peerId);
      for (let i = 0; i < 100; i++) void dialer.send(Uint8Array.of(i, i + 1, i + 2));
      for (let i = 0; i < 100; i++) assert.deepEqual(await listener.next(), Uint8Array.of(i, i + 1, i + 2));
      await listener.send(new Uint8Array(0));
      assert.deepEqual(await dialer.next(), new Uint8Array(0));
      const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i & 0xff);
      void dialer.send(big);
      assert.deepEqual(await listener.next(), big);
      assert.ok(dialer.bytesSent >= big.length && listener.bytesReceived >= big.length);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test(`${f.name}: close ends the other side's frames`, async () => {
    const { a, b, dialer, listener } = await pair(f);
    try {
      await dialer.send(Uint8Array.of(7));
      dialer.close();
      assert.deepEqual(await listener.next(), Uint8Array.of(7));
      assert.equal(await listener.next(), null);
      assert.equal(dialer.isClosed, true);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test(`${f.name}: backpressure — a receiver that does not read stops the sender`, async () => {
    const { a, b, dialer, listener } = await pair(f);
    try {
      const frame = new Uint8Array(1024 * 1024);
      let sent = 0;
      const sender = (async () => {
        for (let i = 0; i < 64; i++) {
          await dialer.send(frame);
          sent++;
        }
      })();
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(sent < 64, `the sender got ${sent} MiB ahead of a receiver that reads nothing`);
      for (let i = 0; i < 64; i++) assert.equal((await listener.next())?.length, frame.length);
      await sender;
      assert.equal(sent, 64);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test(`${f.name}: many links at once stay separate`, async () => {
    const a = await f.create();
    const b = await f.create();
    try {
      const links: StageLink[] = [];
      await b.handle("/llmesh/test/echo", (l) => {
        void (async () => {
          for (;;) {
            const m = await l.next();
            if (!m) break;
            await l.send(m);
          }
        })();
      });
      for (let i = 0; i < 8; i++) links.push(await a.dial(b.addresses(), "/llmesh/test/echo"));
      await Promise.all(links.map((l, i) => l.send(Uint8Array.of(i))));
      const back = await Promise.all(links.map((l) => l.next()));
      assert.deepEqual(back.map((m) => m?.[0]), [0, 1, 2, 3, 4, 5, 6, 7]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test(`${f.name}: dialing a protocol nobody handles fails`, async () => {
    const a = await f.create();
    const b = await f.create();
    try {
      await assert.rejects(a.dial(b.addresses(), "/llmesh/nobody/1"));
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test(`${f.name}: ping (where offered) gives a positive RTT under a second on this machine`, async (t) => {
    const a = await f.create();
    const b = await f.create();
    try {
      if (!a.ping) return t.skip("this transport measures no RTT");
      // The planner divides by hops' RTTs and reports them: a loopback link must not read 0 (libp2p's
      // own ping has whole-millisecond resolution).
      for (let i = 0; i < 5; i++) {
        const rtt = await a.ping(b.addresses());
        assert.ok(rtt > 0 && rtt < 1, `RTT ${rtt} s`);
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });
}

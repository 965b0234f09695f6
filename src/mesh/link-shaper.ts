// A userspace link shaper for tests and benchmarks (no root, no tc): a TCP proxy that delays each
// direction by `delayMs` one way and serializes it at `rateBitsPerSec`. Peers listen on their own
// port and announce the shaper's, so every connection to them crosses the emulated link.
import net from "node:net";

export interface ShaperOptions {
  /** Where the real peer listens. */
  targetPort: number;
  targetHost?: string;
  /** Port to listen on (0 = any). */
  listenPort?: number;
  /** One-way delay, ms. */
  delayMs: number;
  /** Link rate, bits/s (0 = unlimited). */
  rateBitsPerSec: number;
}

function pipeShaped(from: net.Socket, to: net.Socket, o: ShaperOptions): void {
  let lastDeparture = 0;
  let queued = 0;
  let ended = false;
  // One FIFO and one timer per direction: separate timers per chunk could fire out of order (timers
  // have 1 ms granularity) and reorder the byte stream.
  const fifo: Array<{ chunk: Buffer; due: number }> = [];
  let timer: NodeJS.Timeout | undefined;
  const drain = (): void => {
    timer = undefined;
    const now = performance.now();
    while (fifo.length > 0 && fifo[0].due <= now + 0.5) {
      const { chunk } = fifo.shift()!;
      queued -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }
    if (queued <= 4 * 1024 * 1024) from.resume();
    if (fifo.length > 0) timer = setTimeout(drain, Math.max(1, fifo[0].due - now));
    else if (ended && !to.destroyed) to.end();
  };
  from.on("data", (chunk: Buffer) => {
    const now = performance.now();
    const txMs = o.rateBitsPerSec > 0 ? (chunk.length * 8 * 1000) / o.rateBitsPerSec : 0;
    const departure = Math.max(now, lastDeparture) + txMs;
    lastDeparture = departure;
    queued += chunk.length;
    if (queued > 8 * 1024 * 1024) from.pause();
    fifo.push({ chunk, due: departure + o.delayMs });
    timer ??= setTimeout(drain, Math.max(0, fifo[0].due - now));
  });
  from.on("end", () => {
    ended = true;
    timer ??= setTimeout(drain, 0);
  });
  from.on("error", () => to.destroy());
}

export class LinkShaper {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async start(o: ShaperOptions): Promise<LinkShaper> {
    const server = net.createServer();
    const s = new LinkShaper(server);
    server.on("connection", (client) => {
      client.setNoDelay(true);
      const upstream = net.connect({ port: o.targetPort, host: o.targetHost ?? "127.0.0.1" });
      upstream.setNoDelay(true);
      s.sockets.add(client);
      s.sockets.add(upstream);
      pipeShaped(client, upstream, o);
      pipeShaped(upstream, client, o);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("close", drop);
      upstream.on("close", drop);
    });
    await new Promise<void>((res) => server.listen(o.listenPort ?? 0, "127.0.0.1", res));
    return s;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}

/** A free TCP port on 127.0.0.1 (racy by nature; fine for tests and benchmarks). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((res) => s.listen(0, "127.0.0.1", res));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((res) => s.close(() => res()));
  return p;
}

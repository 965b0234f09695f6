// Transport over libp2p: TCP + Noise + Yamux, identify and ping; mDNS for LAN discovery when asked.
// The peer's key comes from its data directory (identity.ts), so its id survives restarts.
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import type { PrivateKey, Stream } from "@libp2p/interface";
import { mdns } from "@libp2p/mdns";
import { ping, type Ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";
import { FrameQueue, lengthPrefix, type StageLink, type Transport } from "./transport.ts";

export interface Libp2pTransportOptions {
  privateKey: PrivateKey;
  /** Multiaddrs to listen on; default /ip4/0.0.0.0/tcp/0. */
  listen?: string[];
  /** Multiaddrs to advertise instead of the listening ones (e.g. a link shaper in front). */
  announce?: string[];
  /** LAN discovery. */
  mdns?: boolean;
}

/** Unsent bytes a link may hold before send() waits. */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;

class Libp2pLink implements StageLink {
  readonly remotePeer: string;
  private readonly stream: Stream;
  private readonly queue: FrameQueue;
  private closedFlag = false;
  bytesSent = 0;

  constructor(stream: Stream, remotePeer: string) {
    this.stream = stream;
    this.remotePeer = remotePeer;
    stream.inactivityTimeout = 0;
    stream.maxReadBufferLength = 64 * 1024 * 1024;
    this.queue = new FrameQueue({ pause: () => stream.pause(), resume: () => stream.resume() });
    stream.addEventListener("message", (e) => {
      const d = e.data;
      this.queue.push(d instanceof Uint8Array ? d : d.subarray());
    });
    stream.addEventListener("close", () => {
      this.closedFlag = true;
      this.queue.end();
    });
    stream.addEventListener("remoteCloseWrite", () => this.queue.end());
  }

  get bytesReceived(): number {
    return this.queue.bytesReceived;
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.closedFlag) throw new Error("link closed");
    this.bytesSent += 4 + frame.length;
    const wire = new Uint8Array(4 + frame.length);
    wire.set(lengthPrefix(frame.length), 0);
    wire.set(frame, 4);
    const full = !this.stream.send(wire);
    if (full) await this.stream.onDrain();
    // Bytes the muxer could not send yet (the receiver paused and its window ran out) stay in the
    // stream's write buffer: wait until it is below the mark instead of buffering without bound.
    while (this.stream.writeBufferLength > WRITE_HIGH_WATER && !this.closedFlag) {
      await new Promise<void>((res) => {
        const done = () => {
          clearTimeout(t);
          this.stream.removeEventListener("drain", done);
          this.stream.removeEventListener("close", done);
          res();
        };
        const t = setTimeout(done, 25);
        this.stream.addEventListener("drain", done);
        this.stream.addEventListener("close", done);
      });
    }
    if (this.closedFlag) throw new Error("link closed");
  }

  next(): Promise<Uint8Array | null> {
    return this.queue.next();
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.queue.end();
    this.stream.close().catch(() => this.stream.abort(new Error("closed")));
  }
}

export class Libp2pTransport implements Transport {
  readonly node: Libp2p<{ ping: Ping }>;

  private constructor(node: Libp2p<{ ping: Ping }>) {
    this.node = node;
  }

  static async create(opts: Libp2pTransportOptions): Promise<Libp2pTransport> {
    const node = await createLibp2p({
      privateKey: opts.privateKey,
      addresses: { listen: opts.listen ?? ["/ip4/0.0.0.0/tcp/0"], ...(opts.announce?.length ? { announce: opts.announce } : {}) },
      transports: [tcp({ inboundSocketInactivityTimeout: 0, outboundSocketInactivityTimeout: 0 })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      peerDiscovery: opts.mdns ? [mdns()] : [],
      services: { identify: identify(), ping: ping() },
    });
    return new Libp2pTransport(node);
  }

  get peerId(): string {
    return this.node.peerId.toString();
  }

  addresses(): string[] {
    return this.node.getMultiaddrs().map((m) => m.toString());
  }

  async handle(protocol: string, onLink: (link: StageLink) => void): Promise<void> {
    await this.node.handle(protocol, (stream, connection) => onLink(new Libp2pLink(stream, connection.remotePeer.toString())), { maxInboundStreams: 64 });
  }

  async dial(addrs: readonly string[], protocol: string): Promise<StageLink> {
    let lastErr: unknown = new Error("no address to dial");
    for (const a of addrs) {
      try {
        const ma = multiaddr(a);
        const stream = await this.node.dialProtocol(ma, protocol, { signal: AbortSignal.timeout(10_000) });
        const conn = this.node.getConnections().find((c) => c.streams.includes(stream));
        return new Libp2pLink(stream, conn?.remotePeer.toString() ?? ma.getComponents().find((c) => c.name === "p2p")?.value ?? "?");
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr;
  }

  /** Round-trip time to a peer in seconds, with libp2p ping (the best of `n` pings). */
  async ping(addrs: readonly string[], n = 3): Promise<number> {
    let lastErr: unknown = new Error("no address to ping");
    for (const a of addrs) {
      try {
        const ma = multiaddr(a);
        let best = Infinity;
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          const ms = await this.node.services.ping.ping(ma, { signal: AbortSignal.timeout(5_000) });
          // @libp2p/ping times with Date.now(): whole milliseconds, so a loopback or LAN link reads 0.
          // Below its resolution, our own clock around the call (which also opens the stream, so an
          // upper bound) is used, capped at the 1 ms that libp2p's 0 promises.
          best = Math.min(best, ms >= 1 ? ms : Math.min(performance.now() - t0, 1));
        }
        return best / 1000;
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr;
  }

  async stop(): Promise<void> {
    await this.node.stop();
  }
}

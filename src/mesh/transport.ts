// The data path behind our own small interface, so a faster transport can be added later. Every
// implementation runs the compliance suite in test/mesh/transport-compliance.ts.
//
//   Transport  — a peer's endpoint: its id and addresses, accepts links for a protocol, dials others.
//   StageLink  — one long-lived, ordered, reliable, authenticated-by-us duplex stream of frames.
//                send() applies backpressure (resolves once the transport can take more);
//                next() yields received frames in order (null at the end). A receiver that does not
//                read stops the sender (bounded buffers, no unbounded queueing).
import { MAX_FRAME, ProtocolError } from "./stage-protocol.ts";

export interface StageLink {
  readonly remotePeer: string;
  /** Sends one frame (the link adds the length prefix). Resolves when the transport can take more. */
  send(frame: Uint8Array): Promise<void>;
  /** The next frame, or null once the link has ended. */
  next(): Promise<Uint8Array | null>;
  /** Ends the link (both directions). */
  close(): void;
  readonly isClosed: boolean;
  /** Bytes sent / received, frames included, since the link opened. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export interface Transport {
  readonly peerId: string;
  /** Dialable addresses (with the peer id). */
  addresses(): string[];
  /** Accepts incoming links for a protocol. */
  handle(protocol: string, onLink: (link: StageLink) => void): Promise<void>;
  dial(addrs: readonly string[], protocol: string): Promise<StageLink>;
  /** Round-trip time to a peer in seconds (libp2p ping); optional. */
  ping?(addrs: readonly string[]): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Splits a byte stream into length-prefixed frames and buffers them for next(). Implementations
 * push() incoming bytes and are told to pause()/resume() the source around a high-water mark.
 */
export class FrameQueue {
  private chunks: Uint8Array[] = [];
  private chunkBytes = 0;
  private frames: Uint8Array[] = [];
  private queuedBytes = 0;
  private waiters: Array<(f: Uint8Array | null) => void> = [];
  private ended = false;
  private paused = false;
  private readonly highWater: number;
  private readonly onPause: () => void;
  private readonly onResume: () => void;
  private failure: Error | undefined;
  bytesReceived = 0;

  constructor(opts: { highWater?: number; pause: () => void; resume: () => void }) {
    this.highWater = opts.highWater ?? 8 * 1024 * 1024;
    this.onPause = opts.pause;
    this.onResume = opts.resume;
  }

  push(data: Uint8Array): void {
    if (this.ended) return;
    this.bytesReceived += data.length;
    this.chunks.push(data);
    this.chunkBytes += data.length;
    try {
      this.extract();
    } catch (err) {
      this.end(err as Error);
      return;
    }
    if (!this.paused && this.queuedBytes + this.chunkBytes > this.highWater) {
      this.paused = true;
      this.onPause();
    }
  }

  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.chunkBytes -= n;
    return out;
  }

  private peekLength(): number {
    const h = new Uint8Array(4);
    let o = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, 4 - o);
      h.set(c.subarray(0, k), o);
      o += k;
      if (o === 4) break;
    }
    return new DataView(h.buffer).getUint32(0, true);
  }

  private extract(): void {
    while (this.chunkBytes >= 4) {
      const len = this.peekLength();
      if (len > MAX_FRAME) throw new ProtocolError(`frame of ${len} bytes exceeds the ${MAX_FRAME}-byte limit`);
      if (this.chunkBytes < 4 + len) return;
      this.take(4);
      const f = this.take(len);
      const w = this.waiters.shift();
      if (w) w(f);
      else {
        this.frames.push(f);
        this.queuedBytes += f.length;
      }
    }
  }

  next(): Promise<Uint8Array | null> {
    const f = this.frames.shift();
    if (f) {
      this.queuedBytes -= f.length;
      if (this.paused && this.queuedBytes + this.chunkBytes <= this.highWater / 2) {
        this.paused = false;
        this.onResume();
      }
      return Promise.resolve(f);
    }
    if (this.ended) return Promise.resolve(null);
    return new Promise((res) => this.waiters.push(res));
  }

  end(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    if (err) this.failure = err;
    for (const w of this.waiters.splice(0)) w(null);
  }

  get error(): Error | undefined {
    return this.failure;
  }
}

/** The 4-byte little-endian length prefix of a frame. */
export function lengthPrefix(n: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, n, true);
  return p;
}

// A live link bandwidth probe: its own protocol over any Transport (a short burst of bytes, timed), so
// the planner gets measured bandwidth per directed link instead of an assumed one.
//
// Frames on PROBE_PROTOCOL (each a StageLink frame; the first byte is the op; integers little-endian):
//   ECHO   [0x01][u32 nonce]                     dialer → listener; the listener answers ECHOED
//   ECHOED [0x02][u32 nonce]                     listener → dialer
//   SINK   [0x03][u32 nonce][f64 bytes]          dialer → listener: `bytes` payload bytes follow in DATA
//                                                frames; the listener answers SUNK once all have arrived
//   DATA   [0x00][payload…]                      either way
//   SUNK   [0x04][u32 nonce]                     listener → dialer
//   SOURCE [0x05][u32 nonce][f64 bytes][u32 chunk]  dialer → listener: send `bytes` payload bytes back in
//                                                DATA frames of at most `chunk` bytes, then SOURCED
//   SOURCED [0x06][u32 nonce]                    listener → dialer
//
// A transfer of B bytes started at t0 completes (SUNK received, or the last byte of a SOURCE arrived)
// at ≈ t0 + RTT + B / bandwidth, so bandwidth = B / (elapsed − RTT), with the RTT measured by ECHO on
// the same stream (the same connection, the same path). The burst is adaptive: it starts small and
// grows until a transfer takes `minSec` beyond the RTT (or reaches `maxBytes`), then `samples`
// transfers of that size are timed and the median taken, so one disturbed transfer does not count.
import type { StageLink, Transport } from "./transport.ts";

export const PROBE_PROTOCOL = "/llmesh/probe/1.0.0";

const OP_DATA = 0x00;
const OP_ECHO = 0x01;
const OP_ECHOED = 0x02;
const OP_SINK = 0x03;
const OP_SUNK = 0x04;
const OP_SOURCE = 0x05;
const OP_SOURCED = 0x06;

/** Largest burst a listener will send back for one SOURCE (bounds what a peer can make us send). */
const MAX_SOURCE_BYTES = 64 * 1024 * 1024;
const DEFAULT_CHUNK = 64 * 1024;

function ctl(op: number, nonce: number, extra: number[] = []): Uint8Array {
  const f = new Uint8Array(5 + extra.length * 8);
  const v = new DataView(f.buffer);
  f[0] = op;
  v.setUint32(1, nonce, true);
  extra.forEach((x, i) => (i === 0 ? v.setFloat64(5, x, true) : v.setUint32(5 + 8 * i, x, true)));
  return f;
}

function readNonce(f: Uint8Array): number {
  if (f.length < 5) throw new Error(`probe frame of ${f.length} bytes is too short`);
  return new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(1, true);
}

function readF64(f: Uint8Array, at: number): number {
  if (f.length < at + 8) throw new Error("probe frame is too short");
  return new DataView(f.buffer, f.byteOffset, f.byteLength).getFloat64(at, true);
}

function readU32(f: Uint8Array, at: number): number {
  if (f.length < at + 4) throw new Error("probe frame is too short");
  return new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(at, true);
}

async function sendData(link: StageLink, bytes: number, chunk: number, zeros: Uint8Array): Promise<void> {
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, chunk);
    // DATA frame: the op byte then payload (zeros: the link is encrypted, nothing compresses it).
    await link.send(n + 1 === zeros.length ? zeros : zeros.subarray(0, n + 1));
    left -= n;
  }
}

/** Answers one probe link until it ends. */
async function serveLink(link: StageLink): Promise<void> {
  let zeros = new Uint8Array(DEFAULT_CHUNK + 1);
  let sinking: { nonce: number; left: number } | undefined;
  try {
    for (;;) {
      const f = await link.next();
      if (!f) return;
      if (f.length === 0) throw new Error("empty probe frame");
      const op = f[0];
      if (op === OP_DATA) {
        if (!sinking) continue;
        sinking.left -= f.length - 1;
        if (sinking.left <= 0) {
          await link.send(ctl(OP_SUNK, sinking.nonce));
          sinking = undefined;
        }
      } else if (op === OP_ECHO) {
        await link.send(ctl(OP_ECHOED, readNonce(f)));
      } else if (op === OP_SINK) {
        const nonce = readNonce(f);
        const bytes = readF64(f, 5);
        if (!(bytes > 0)) await link.send(ctl(OP_SUNK, nonce));
        else sinking = { nonce, left: bytes };
      } else if (op === OP_SOURCE) {
        const nonce = readNonce(f);
        const bytes = Math.min(Math.max(0, readF64(f, 5)), MAX_SOURCE_BYTES);
        const chunk = Math.max(1024, Math.min(readU32(f, 13), 4 * 1024 * 1024));
        if (zeros.length < chunk + 1) zeros = new Uint8Array(chunk + 1);
        await sendData(link, bytes, chunk, zeros);
        await link.send(ctl(OP_SOURCED, nonce));
      } else throw new Error(`unknown probe op ${op}`);
    }
  } catch {
    // A broken or misbehaving prober: drop its link, nothing else depends on it.
  } finally {
    link.close();
  }
}

/** Makes this peer answer bandwidth probes (every peer of a mesh should, host and workers alike). */
export async function serveBandwidthProbe(transport: Transport): Promise<void> {
  await transport.handle(PROBE_PROTOCOL, (link) => {
    void serveLink(link);
  });
}

export interface ProbeOptions {
  /** Which direction to measure: "send" = this peer → the other (default), "receive" = the other → this peer. */
  direction?: "send" | "receive";
  /** A transfer must take at least this long beyond the RTT before its size is final (s); default 0.08. */
  minSec?: number;
  /** First burst (bytes); default 32 KiB. */
  initialBytes?: number;
  /** Largest burst (bytes); default 4 MiB. A faster link is reported as at least maxBytes / time. */
  maxBytes?: number;
  /** Timed transfers of the final size; the median is reported. Default 3. */
  samples?: number;
  /** ECHO round trips; the smallest is the RTT. Default 5. */
  echoes?: number;
  /** DATA frame payload (bytes); default 64 KiB. */
  chunkBytes?: number;
  /** Gives up after this long overall (ms); default 20 000. */
  timeoutMs?: number;
}

export interface BandwidthResult {
  /** Median bandwidth of the timed transfers (payload bytes per second) in the measured direction. */
  bytesPerSec: number;
  /** Smallest ECHO round trip on the probe's stream (s). */
  rttSec: number;
  direction: "send" | "receive";
  /** Size of each timed transfer (bytes). */
  burstBytes: number;
  /** Every timed transfer's bandwidth (bytes/s), in order. */
  samples: number[];
  /** True when even maxBytes went by faster than minSec: the link is at least this fast. */
  lowerBound: boolean;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Frames of a probe link, with a deadline. */
class Reader {
  private readonly link: StageLink;
  private readonly deadline: number;

  constructor(link: StageLink, deadline: number) {
    this.link = link;
    this.deadline = deadline;
  }

  async next(): Promise<Uint8Array> {
    const left = this.deadline - performance.now();
    if (left <= 0) throw new Error("bandwidth probe timed out");
    let timer: NodeJS.Timeout | undefined;
    try {
      const f = await Promise.race([
        this.link.next(),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error("bandwidth probe timed out")), left);
        }),
      ]);
      if (!f) throw new Error("the peer closed the bandwidth probe");
      if (f.length === 0) throw new Error("empty probe frame");
      return f;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next control frame with this op and nonce (DATA frames are counted into `data`). */
  async expect(op: number, nonce: number, data?: { bytes: number; lastAt: number }): Promise<Uint8Array> {
    for (;;) {
      const f = await this.next();
      if (f[0] === OP_DATA) {
        if (data) {
          data.bytes += f.length - 1;
          data.lastAt = performance.now();
        }
        continue;
      }
      if (f[0] === op && readNonce(f) === nonce) return f;
      // A stale reply of an earlier request: skip it.
    }
  }
}

/**
 * Measures the bandwidth of the link to a peer that runs serveBandwidthProbe: one direction, over
 * its own stream on the existing connection (libp2p reuses it), so it crosses the same path as the
 * stage links. Resolves with the median of `samples` timed bursts; rejects on timeout or a peer that
 * does not serve the probe.
 */
export async function probeBandwidth(transport: Transport, addrs: readonly string[], opts: ProbeOptions = {}): Promise<BandwidthResult> {
  const direction = opts.direction ?? "send";
  const minSec = opts.minSec ?? 0.08;
  const maxBytes = Math.max(1024, opts.maxBytes ?? 4 * 1024 * 1024);
  const samples = Math.max(1, opts.samples ?? 3);
  const chunk = Math.max(1024, opts.chunkBytes ?? DEFAULT_CHUNK);
  const deadline = performance.now() + (opts.timeoutMs ?? 20_000);
  const link = await transport.dial(addrs, PROBE_PROTOCOL);
  const rd = new Reader(link, deadline);
  const zeros = new Uint8Array(chunk + 1);
  let nonce = 1;
  try {
    let rttSec = Infinity;
    for (let i = 0; i < Math.max(1, opts.echoes ?? 5); i++) {
      const n = nonce++;
      const t0 = performance.now();
      await link.send(ctl(OP_ECHO, n));
      await rd.expect(OP_ECHOED, n);
      rttSec = Math.min(rttSec, (performance.now() - t0) / 1000);
    }
    /** One timed transfer of `bytes`: seconds from the request to the last byte acknowledged / received. */
    const transfer = async (bytes: number): Promise<number> => {
      const n = nonce++;
      const t0 = performance.now();
      if (direction === "send") {
        await link.send(ctl(OP_SINK, n, [bytes]));
        await sendData(link, bytes, chunk, zeros);
        await rd.expect(OP_SUNK, n);
        return (performance.now() - t0) / 1000;
      }
      const data = { bytes: 0, lastAt: t0 };
      await link.send(ctl(OP_SOURCE, n, [bytes, chunk]));
      await rd.expect(OP_SOURCED, n, data);
      if (data.bytes < bytes) throw new Error(`the peer sent ${data.bytes} of ${bytes} probe bytes`);
      return (data.lastAt - t0) / 1000;
    };
    // Grow the burst until the transfer time beyond the RTT is long enough to time.
    let bytes = Math.min(maxBytes, Math.max(1024, opts.initialBytes ?? 32 * 1024));
    let first: number | undefined;
    for (;;) {
      const sec = await transfer(bytes);
      const beyond = sec - rttSec;
      if (beyond >= minSec || bytes >= maxBytes) {
        first = sec;
        break;
      }
      // Aim at 1.5 × minSec from what this transfer showed; at least double, at most ×16 per step.
      const rate = bytes / Math.max(beyond, sec * 0.1, 1e-4);
      bytes = Math.min(maxBytes, Math.ceil(Math.min(16 * bytes, Math.max(2 * bytes, rate * minSec * 1.5))));
    }
    const secs = [first];
    for (let i = 1; i < samples; i++) secs.push(await transfer(bytes));
    // A transfer cannot beat the link's own latency by much; floor the time beyond the RTT at a tenth
    // of the transfer so a disturbed RTT figure cannot make the bandwidth explode.
    const rates = secs.map((s) => bytes / Math.max(s - rttSec, s * 0.1, 1e-6));
    const lowerBound = median(secs) - rttSec < minSec;
    return { bytesPerSec: median(rates), rttSec, direction, burstBytes: bytes, samples: rates, lowerBound };
  } finally {
    link.close();
  }
}

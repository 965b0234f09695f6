// The llmesh stage protocol: every byte peers exchange, in this one file.
//
// A link is one long-lived, ordered, reliable byte stream between two peers (a libp2p stream, or any
// other StageLink, see transport.ts). On it travel length-prefixed frames:
//
//   wire:   +----------------+--------------------------------------------------+
//           | u32 LE length  | frame (length bytes)                             |
//           +----------------+--------------------------------------------------+
//
//   frame:  0        1        2                 4                                8
//           +--------+--------+-----------------+--------------------------------+-------------
//           | kind   | codec  | flags (u16 LE)  | step (u32 LE)                  | payload ...
//           +--------+--------+-----------------+--------------------------------+-------------
//
//   kind   pinned numbers below (MsgKind); an unknown kind closes the link.
//   codec  activation codec of the payload rows (Codec, codecs.ts); 0 (f32) when there are none.
//   flags  reserved, 0.
//   step   id of a forward step (FORWARD / RESULT / ERROR); 0 on control frames.
//
// Handshake (before it completes, any other frame closes the link and is never acted upon):
//
//   dialer                                              listener
//     HELLO {version, nonce, peer, fingerprint, purpose}  ->
//                                                       <- CHALLENGE {version, nonce, proof = HMAC(secret, "listener"|nA|nB)}
//                                                       or REFUSE {reason}  (version mismatch: both versions named)
//     (dialer checks the listener's proof: a listener without the secret is dropped)
//     AUTH {proof = HMAC(secret, "dialer"|nA|nB)}        ->
//                                                       <- WELCOME {} or REFUSE {reason} (bad proof, other model)
//
// Control frames (JSON payload, UTF-8): HELLO..REFUSE above; JOIN (worker → host: capacity), ASSIGN
// (host → worker: layer range, codec, downstream), READY, STATS_REQ/STATS, PING/PONG, BYE,
// PROBE {targets [{peer, addrs}], bandwidth} (host → worker: measure your RTT to these peers with
// libp2p ping and, if asked, your bandwidth to them with the probe of bandwidth-probe.ts, before
// placement) / PROBED {rttSec {peer: seconds}, bytesPerSec {peer: B/s}} (same step id),
// LEAVE {} (worker → host: I am shutting down; move my layers off, then send me BYE),
// FAULT {peer, message} (worker → host: the upstream stage `peer` sent a malformed frame on our stage
// link; the host quarantines that peer).
//
// Membership changes (failover, joins, leaves): the host re-plans and sends every stage a new ASSIGN
// with a higher `epoch`. A stage drops all its sequences, closes the stage links of the old epoch
// (frames still in them are never acted upon), keeps its weights when its range is unchanged, and
// answers READY. Stage 0 then replays each live sequence (its prompt plus the tokens generated so far,
// as one prefill with SEQ_CONFIG carrying `generated`) on the new ring. Step ids keep increasing
// across epochs, so a late reply from the old ring matches nothing.
//
// Data frames (binary payload):
//
//   FORWARD    hidden states of one step, stage k → stage k+1:
//              u32 nEntries | u32 rowWidth (n_embd) | nEntries × (u32 seq | u32 nTokens | u8 out | 3 pad)
//              | rows: Σ nTokens rows of rowWidth values, encoded with `codec`
//              out: 0 = only fill the KV cache, 1 = return the last position's logits (RESULT),
//                   2 = sample the next token on the last stage (TOKENS)
//   TOKENS     last stage → stage 0, the normal reply (one ring per token, N one-way hops for N stages):
//              u32 nEntries | nEntries × (u32 seq | u32 token | u8 hasLogprob | u8 nTop | 2 pad | f64 logprob)
//              | Σ nTop × (u32 id | f64 logprob)      — logprobs only for sequences that asked for them
//   RESULT     last stage → stage 0, raw logits (only for forward() without sampling; n_vocab × 4 bytes):
//              u32 nEntries | u32 rowWidth (n_vocab) | nEntries × (u32 seq | u32 nRows) | rows (f32)
//   SEQ_CONFIG JSON {seq, sampling {temperature, topP, topK, minP, presencePenalty, frequencyPenalty,
//              repetitionPenalty, logitBias [[id, bias]…], seed}, logprobs (null | k)}: how the last
//              stage picks this sequence's tokens. Sent by stage 0 before the sequence's first FORWARD,
//              passed down the pipeline in order; the last stage keeps a sampler (its RNG) and the
//              sequence's generated tokens (the penalties' history — OpenAI penalties count completion
//              tokens only, so prompt tokens never need to travel). `generated` (optional): tokens the
//              sequence already produced on an earlier ring, replayed after a re-plan.
//   FREE       u32 n | n × u32 seq   (sequences ended; passed down the pipeline)
//   ERROR      JSON {message}        (a step failed; passed on to stage 0, which fails the step)
//
// Sequence ids are stage 0's; every stage maps them to its own engine sequences. Several steps may be
// in flight at once (micro-batches of different sequences); every stage handles frames in order.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { SamplingKnobs } from "../backend/backend.ts";
import { Codec, decodeRows, encodedRowBytes, encodeRowsInto } from "./codecs.ts";

/** Bumped on any incompatible change; checked at the handshake. */
export const PROTOCOL_VERSION = 3;
export const CONTROL_PROTOCOL = "/llmesh/control/1.0.0";
export const STAGE_PROTOCOL = "/llmesh/stage/1.0.0";
/** Largest frame accepted (bytes). */
export const MAX_FRAME = 256 * 1024 * 1024;
export const HEADER_BYTES = 8;

/** Pinned message kinds: never renumber, only add. */
export const MsgKind = {
  HELLO: 1,
  CHALLENGE: 2,
  AUTH: 3,
  WELCOME: 4,
  REFUSE: 5,
  JOIN: 8,
  ASSIGN: 9,
  READY: 10,
  STATS_REQ: 11,
  STATS: 12,
  PING: 13,
  PONG: 14,
  BYE: 15,
  PROBE: 16,
  PROBED: 17,
  LEAVE: 18,
  FAULT: 19,
  FORWARD: 32,
  RESULT: 33,
  FREE: 34,
  ERROR: 35,
  SEQ_CONFIG: 36,
  TOKENS: 37,
} as const;
export type MsgKind = (typeof MsgKind)[keyof typeof MsgKind];
const KNOWN_KINDS = new Set<number>(Object.values(MsgKind));

export function kindName(k: number): string {
  for (const [n, v] of Object.entries(MsgKind)) if (v === k) return n;
  return `kind ${k}`;
}

export class ProtocolError extends Error {
  override name = "ProtocolError";
}

export interface FrameHeader {
  kind: number;
  codec: number;
  flags: number;
  step: number;
}

export function readHeader(frame: Uint8Array): FrameHeader {
  if (frame.length < HEADER_BYTES) throw new ProtocolError(`frame of ${frame.length} bytes is shorter than its header`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const kind = frame[0];
  if (!KNOWN_KINDS.has(kind)) throw new ProtocolError(`unknown message kind ${kind}`);
  return { kind, codec: frame[1], flags: dv.getUint16(2, true), step: dv.getUint32(4, true) };
}

function header(out: Uint8Array, kind: number, codec: number, step: number): DataView {
  const dv = new DataView(out.buffer, out.byteOffset, out.length);
  out[0] = kind;
  out[1] = codec;
  dv.setUint16(2, 0, true);
  dv.setUint32(4, step >>> 0, true);
  return dv;
}

// ---- control (JSON) --------------------------------------------------------------------------

export function encodeJson(kind: number, body: unknown, step = 0): Uint8Array {
  const json = Buffer.from(JSON.stringify(body), "utf8");
  const out = new Uint8Array(HEADER_BYTES + json.length);
  header(out, kind, 0, step);
  out.set(json, HEADER_BYTES);
  return out;
}

export function decodeJson<T = Record<string, unknown>>(frame: Uint8Array): T {
  try {
    return JSON.parse(Buffer.from(frame.buffer, frame.byteOffset + HEADER_BYTES, frame.length - HEADER_BYTES).toString("utf8")) as T;
  } catch {
    throw new ProtocolError("malformed JSON payload");
  }
}

export interface Hello {
  version: number;
  nonce: string;
  peer: string;
  fingerprint: string;
  purpose: "join" | "stage" | "probe";
}
export interface Challenge {
  version: number;
  nonce: string;
  proof: string;
}
export interface Refuse {
  reason: string;
  code: "version" | "auth" | "model" | "state";
}

/** Capacity a worker advertises when it joins. */
export interface JoinInfo {
  name: string;
  freeMemoryBytes: number;
  /** Measured compute time of one layer for one token (ms). */
  msPerLayer: number;
  /** Addresses other peers can dial for the stage link. */
  addrs: string[];
}

export interface Assign {
  range: { start: number; end: number };
  codec: Codec;
  maxContext: number;
  /** Downstream peer's addresses; empty = the last stage, whose results go back to stage 0 over the join link. */
  next: string[];
  stageIndex: number;
  nStages: number;
  /** Placement generation: each re-plan sends every stage a higher one (1 = the first placement). */
  epoch: number;
}

export function hmacProof(secret: Uint8Array, role: "dialer" | "listener", nonceA: string, nonceB: string): string {
  return createHmac("sha256", secret).update(`llmesh-v${PROTOCOL_VERSION}|${role}|${nonceA}|${nonceB}`).digest("hex");
}

export function proofMatches(expected: string, got: unknown): boolean {
  if (typeof got !== "string" || got.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(got));
}

export function newNonce(): string {
  return randomBytes(16).toString("hex");
}

export function versionMismatch(ours: number, theirs: unknown): string {
  return `protocol version mismatch: this peer speaks llmesh stage protocol v${ours}, the other speaks v${String(theirs)}; run the same llmesh version on every peer`;
}

// ---- data (binary) ---------------------------------------------------------------------------

export interface ForwardEntry {
  seq: number;
  nTokens: number;
  /** Whether the last stage returns logits of the chunk's last position. */
  logits: boolean;
  /** With logits: the last stage samples the next token and returns it instead (TOKENS). */
  sample?: boolean;
}

export function encodeForward(step: number, codec: Codec, entries: readonly ForwardEntry[], rows: readonly Float32Array[], width: number): Uint8Array {
  let nRows = 0;
  for (const e of entries) nRows += e.nTokens;
  const rowBytes = encodedRowBytes(codec, width);
  const meta = 8 + entries.length * 12;
  const out = new Uint8Array(HEADER_BYTES + meta + nRows * rowBytes);
  const dv = header(out, MsgKind.FORWARD, codec, step);
  dv.setUint32(8, entries.length, true);
  dv.setUint32(12, width, true);
  let o = 16;
  for (const e of entries) {
    dv.setUint32(o, e.seq, true);
    dv.setUint32(o + 4, e.nTokens, true);
    out[o + 8] = e.logits ? (e.sample ? 2 : 1) : 0;
    o += 12;
  }
  for (let i = 0; i < entries.length; i++) {
    const r = rows[i];
    if (r.length !== entries[i].nTokens * width) throw new ProtocolError(`entry ${i}: ${r.length} values for ${entries[i].nTokens} rows of ${width}`);
    encodeRowsInto(codec, r, width, out, o);
    o += entries[i].nTokens * rowBytes;
  }
  return out;
}

export interface DecodedForward {
  step: number;
  codec: Codec;
  width: number;
  entries: ForwardEntry[];
  rows: Float32Array[];
}

export function decodeForward(frame: Uint8Array): DecodedForward {
  const h = readHeader(frame);
  if (h.kind !== MsgKind.FORWARD) throw new ProtocolError(`expected FORWARD, got ${kindName(h.kind)}`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.length);
  if (frame.length < 16) throw new ProtocolError("truncated FORWARD");
  const n = dv.getUint32(8, true);
  const width = dv.getUint32(12, true);
  const codec = h.codec as Codec;
  const rowBytes = encodedRowBytes(codec, width);
  let o = 16;
  if (o + n * 12 > frame.length) throw new ProtocolError("truncated FORWARD entries");
  const entries: ForwardEntry[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const mode = frame[o + 8];
    if (mode > 2) throw new ProtocolError(`FORWARD entry ${i}: unknown output mode ${mode}`);
    const e: ForwardEntry = { seq: dv.getUint32(o, true), nTokens: dv.getUint32(o + 4, true), logits: mode !== 0 };
    if (mode === 2) e.sample = true;
    entries.push(e);
    total += e.nTokens;
    o += 12;
  }
  if (o + total * rowBytes !== frame.length) throw new ProtocolError(`FORWARD payload is ${frame.length - o} bytes, expected ${total * rowBytes}`);
  const rows = entries.map((e) => {
    const r = decodeRows(codec, frame, o, e.nTokens, width);
    o += e.nTokens * rowBytes;
    return r;
  });
  return { step: h.step, codec, width, entries, rows };
}

export function encodeResult(step: number, seqs: readonly number[], rows: readonly Float32Array[], width: number): Uint8Array {
  let nRows = 0;
  for (const r of rows) nRows += r.length / width;
  const out = new Uint8Array(HEADER_BYTES + 8 + seqs.length * 8 + nRows * width * 4);
  const dv = header(out, MsgKind.RESULT, Codec.F32, step);
  dv.setUint32(8, seqs.length, true);
  dv.setUint32(12, width, true);
  let o = 16;
  for (let i = 0; i < seqs.length; i++) {
    dv.setUint32(o, seqs[i], true);
    dv.setUint32(o + 4, rows[i].length / width, true);
    o += 8;
  }
  for (const r of rows) {
    encodeRowsInto(Codec.F32, r, width, out, o);
    o += r.length * 4;
  }
  return out;
}

export function decodeResult(frame: Uint8Array): { step: number; seqs: number[]; rows: Float32Array[] } {
  const h = readHeader(frame);
  if (h.kind !== MsgKind.RESULT) throw new ProtocolError(`expected RESULT, got ${kindName(h.kind)}`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const n = dv.getUint32(8, true);
  const width = dv.getUint32(12, true);
  let o = 16;
  const seqs: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < n; i++) {
    seqs.push(dv.getUint32(o, true));
    counts.push(dv.getUint32(o + 4, true));
    o += 8;
  }
  const rows = counts.map((c) => {
    const r = decodeRows(Codec.F32, frame, o, c, width);
    o += c * width * 4;
    return r;
  });
  if (o !== frame.length) throw new ProtocolError("RESULT payload size mismatch");
  return { step: h.step, seqs, rows };
}

export function encodeFree(seqs: readonly number[]): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + 4 + seqs.length * 4);
  const dv = header(out, MsgKind.FREE, 0, 0);
  dv.setUint32(8, seqs.length, true);
  seqs.forEach((s, i) => dv.setUint32(12 + i * 4, s, true));
  return out;
}

export function decodeFree(frame: Uint8Array): number[] {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const n = dv.getUint32(8, true);
  if (frame.length !== 12 + n * 4) throw new ProtocolError("FREE payload size mismatch");
  return Array.from({ length: n }, (_, i) => dv.getUint32(12 + i * 4, true));
}

// ---- sampling on the last stage ----------------------------------------------------------------

/** SEQ_CONFIG payload: SamplingParams with the bias map as pairs. */
export interface SeqConfig {
  seq: number;
  sampling: SamplingKnobs & { logitBias: Array<[number, number]>; seed: number };
  /** null: no logprobs; k: the chosen token's logprob and the top k. */
  logprobs: number | null;
  /**
   * Tokens already generated for this sequence on an earlier ring (a replay after a re-plan): the
   * penalties' history, and the sampler's RNG is advanced past them, so sampling continues exactly.
   */
  generated?: number[];
}

export interface SampledEntry {
  seq: number;
  token: number;
  /** Present when the sequence asked for logprobs. */
  logprob?: number;
  top?: Array<{ id: number; logprob: number }>;
}

export function encodeTokens(step: number, entries: readonly SampledEntry[]): Uint8Array {
  let nTop = 0;
  for (const e of entries) {
    const k = e.top?.length ?? 0;
    if (k > 255) throw new ProtocolError(`at most 255 top logprobs per token, got ${k}`);
    nTop += k;
  }
  const out = new Uint8Array(HEADER_BYTES + 4 + entries.length * 20 + nTop * 12);
  const dv = header(out, MsgKind.TOKENS, 0, step);
  dv.setUint32(8, entries.length, true);
  let o = 12;
  for (const e of entries) {
    dv.setUint32(o, e.seq, true);
    dv.setUint32(o + 4, e.token, true);
    out[o + 8] = e.logprob !== undefined ? 1 : 0;
    out[o + 9] = e.top?.length ?? 0;
    dv.setFloat64(o + 12, e.logprob ?? 0, true);
    o += 20;
  }
  for (const e of entries) {
    for (const t of e.top ?? []) {
      dv.setUint32(o, t.id, true);
      dv.setFloat64(o + 4, t.logprob, true);
      o += 12;
    }
  }
  return out;
}

export function decodeTokens(frame: Uint8Array): { step: number; entries: SampledEntry[] } {
  const h = readHeader(frame);
  if (h.kind !== MsgKind.TOKENS) throw new ProtocolError(`expected TOKENS, got ${kindName(h.kind)}`);
  if (frame.length < 12) throw new ProtocolError("truncated TOKENS");
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const n = dv.getUint32(8, true);
  let o = 12;
  if (o + n * 20 > frame.length) throw new ProtocolError("truncated TOKENS entries");
  const entries: SampledEntry[] = [];
  const tops: number[] = [];
  let nTop = 0;
  for (let i = 0; i < n; i++) {
    const e: SampledEntry = { seq: dv.getUint32(o, true), token: dv.getUint32(o + 4, true) };
    if (frame[o + 8] === 1) e.logprob = dv.getFloat64(o + 12, true);
    tops.push(frame[o + 9]);
    nTop += frame[o + 9];
    entries.push(e);
    o += 20;
  }
  if (o + nTop * 12 !== frame.length) throw new ProtocolError("TOKENS payload size mismatch");
  entries.forEach((e, i) => {
    if (e.logprob === undefined && tops[i] === 0) return;
    e.top = [];
    for (let k = 0; k < tops[i]; k++) {
      e.top.push({ id: dv.getUint32(o, true), logprob: dv.getFloat64(o + 4, true) });
      o += 12;
    }
  });
  return { step: h.step, entries };
}

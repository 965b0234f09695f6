// The WAN tables: what splitting a model over K stages costs on the network per generated token and per
// prefill, counted three ways, for reference links and for the user's own.
//
// Counting (T tokens, K stages, round-trip time RTT):
//   published  T · (K−1) · RTT/2   one one-way hop per stage boundary per token: the count used by the WAN
//                                  measurement this reproduces (Qwen2.5-7B, K = 4, T = 100: 36.3 s at 242 ms,
//                                  6.15 s at 41 ms, 0.75 s at 5 ms; its ≈0.77 s corresponds to 5.1 ms)
//   llmesh     T · K · RTT/2       our ring: K−1 activation hops plus the sampled token id straight back to
//                                  stage 0 — K one-way hops per token
//   rpc        T · (K−1) · 2 · RTT llama.cpp-RPC-style chatter: about two round trips per token per remote stage
// Transfers: one token's activation row per boundary (codec bytes / bandwidth); a prefill of batch B ×
// sequence S sends B·S rows across every boundary (f16, Qwen2.5-7B, 8 × 512: 29.4 MB, 11.7 s at 20 Mbit/s).
import { activationBytesPerToken, CODECS, TOKEN_ID_BYTES, type Codec } from "./model-profile.ts";

export interface ReferenceLink {
  name: string;
  rttSec: number;
}

/** Round-trip times of the published measurement. */
export const REFERENCE_LINKS: readonly ReferenceLink[] = [
  { name: "intercontinental", rttSec: 0.242 },
  { name: "continental", rttSec: 0.041 },
  { name: "regional", rttSec: 0.005 },
];

/** The published measurement's WAN bandwidth, used when no link is given: 20 Mbit/s. */
export const REFERENCE_BYTES_PER_SEC = 20e6 / 8;

export interface LatencyRow {
  name: string;
  rttSec: number;
  /** T·(K−1)·RTT/2 */
  publishedSec: number;
  /** T·K·RTT/2 (0 for one stage) */
  ringSec: number;
  /** T·(K−1)·2·RTT */
  rpcSec: number;
}

/** Network latency (no transfer time) of T tokens over K stages, per link. */
export function latencyTable(tokens: number, stages: number, links: readonly ReferenceLink[]): LatencyRow[] {
  const K = stages;
  return links.map((l) => ({
    name: l.name,
    rttSec: l.rttSec,
    publishedSec: (tokens * (K - 1) * l.rttSec) / 2,
    ringSec: K > 1 ? (tokens * K * l.rttSec) / 2 : 0,
    rpcSec: tokens * (K - 1) * 2 * l.rttSec,
  }));
}

export interface CodecRow {
  codec: Codec;
  bytesPerToken: number;
  /** Transfer time of one token's activations over one hop: bytes / bandwidth. */
  transferSec: number;
  /** Our ring for T tokens: T · (K·RTT/2 + (K−1)·activation transfer + token id transfer). */
  ringTotalSec: number;
}

/** Per codec: bytes per token per hop and what they cost at a link, and the ring's total for T tokens. */
export function codecTable(nEmbd: number, tokens: number, stages: number, rttSec: number, bytesPerSec: number): CodecRow[] {
  const K = stages;
  return CODECS.map((codec) => {
    const bytes = activationBytesPerToken(nEmbd, codec);
    const transferSec = bytes / bytesPerSec;
    const ringTotalSec = K > 1 ? tokens * ((K * rttSec) / 2 + (K - 1) * transferSec + TOKEN_ID_BYTES / bytesPerSec) : 0;
    return { codec, bytesPerToken: bytes, transferSec, ringTotalSec };
  });
}

export interface PrefillRow {
  codec: Codec;
  /** B·S activation rows across one boundary. */
  bytesPerBoundary: number;
  /** bytes / bandwidth. */
  transferSec: number;
  /** RTT/2 + transfer: one hop of the whole prefill in one piece. */
  hopSec: number;
}

export function prefillTable(nEmbd: number, batch: number, seq: number, rttSec: number, bytesPerSec: number): PrefillRow[] {
  return CODECS.map((codec) => {
    const bytes = batch * seq * activationBytesPerToken(nEmbd, codec);
    return { codec, bytesPerBoundary: bytes, transferSec: bytes / bytesPerSec, hopSec: rttSec / 2 + bytes / bytesPerSec };
  });
}

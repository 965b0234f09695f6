// A tiny deterministic stand-in for a model, for the gateway's unit tests (the acceptance tests run
// the real engine). Vocabulary: 0 = EOS, 1 = BOS, 2..27 = 'a'..'z', 28 = ' ', 29 = '.', 30/31 = the
// two UTF-8 bytes of 'é' (so a character spans two tokens). The "model" prefers next token
// f(last token, position) — logits 8 there, 0 elsewhere — and EOS once `eosAt` positions are held.
import type { BackendInfo, BatchEntry, ChatMessage, ModelBackend, SamplingParams, StreamDecoder, TokenSampler } from "../../src/backend/backend.ts";
import { mulberry32 } from "../helpers/random.ts";

export const V = 32;

export function charToken(c: string): number | undefined {
  if (c >= "a" && c <= "z") return 2 + c.charCodeAt(0) - 97;
  if (c === " ") return 28;
  if (c === ".") return 29;
  return undefined;
}

export function tokenBytesOf(t: number): Uint8Array {
  if (t >= 2 && t <= 27) return Uint8Array.of(97 + t - 2);
  if (t === 28) return Uint8Array.of(0x20);
  if (t === 29) return Uint8Array.of(0x2e);
  if (t === 30) return Uint8Array.of(0xc3);
  if (t === 31) return Uint8Array.of(0xa9);
  if (t === 0) return new TextEncoder().encode("</s>");
  if (t === 1) return new TextEncoder().encode("<s>");
  return new Uint8Array(0);
}

/** The fake model's preferred next token after `last` at position `pos`. */
export function nextToken(last: number, pos: number): number {
  if (last === 30) return 31; // second byte of é
  const r = (last * 7 + pos * 3) % 13;
  if (r === 0) return 28; // space
  if (r === 5) return 30; // first byte of é
  return 2 + ((last * 5 + pos) % 26);
}


export class FakeSampler implements TokenSampler {
  private readonly p: SamplingParams;
  private readonly rand: () => number;
  constructor(p: SamplingParams) {
    this.p = p;
    this.rand = mulberry32(p.seed);
  }
  sample(logits: Float32Array): number {
    const l = Float32Array.from(logits);
    for (const [id, b] of this.p.logitBias) l[id] += b;
    if (this.p.temperature === 0) {
      let best = 0;
      for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
      return best;
    }
    let max = -Infinity;
    for (const v of l) max = Math.max(max, v);
    const w = Array.from(l, (v) => Math.exp((v - max) / this.p.temperature));
    const sum = w.reduce((a, b) => a + b, 0);
    let r = this.rand() * sum;
    for (let i = 0; i < w.length; i++) if ((r -= w[i]) <= 0) return i;
    return w.length - 1;
  }
}

export interface FakeOptions {
  contextLength?: number;
  /** EOS becomes the preferred token once a sequence holds this many positions. */
  eosAt?: number;
  /** Busy-wait this long per forward() (simulates compute; blocks the event loop like the engine). */
  stepMs?: number;
  /** Make forward() async, resolving after this many ms. */
  asyncMs?: number;
  /** Throw from forward() when the batch contains this token. */
  failOnToken?: number;
}

export class FakeBackend implements ModelBackend {
  readonly info: BackendInfo;
  readonly opts: FakeOptions;
  readonly seqs = new Map<number, number[]>();
  /** Every forward() batch, as [seq, nTokens, logits][] (for assertions). */
  readonly batches: Array<Array<[number, number, string]>> = [];
  private next = 1;
  closed = false;

  constructor(opts: FakeOptions = {}) {
    this.opts = opts;
    this.info = { id: "fake-model", aliases: ["fake"], contextLength: opts.contextLength ?? 256, vocabSize: V, kvBytesPerToken: 100, created: 1700000000, chatTemplate: "fallback" };
  }

  encode(text: string, addSpecial: boolean): number[] {
    const out = addSpecial ? [1] : [];
    for (const c of text.toLowerCase()) {
      const t = charToken(c);
      if (t !== undefined) out.push(t);
    }
    return out;
  }
  renderChat(messages: readonly ChatMessage[]): string {
    return messages.map((m) => `${m.role} ${m.content}.`).join(" ") + " assistant ";
  }
  isEog(t: number): boolean {
    return t === 0;
  }
  tokenBytes(t: number): Uint8Array {
    return tokenBytesOf(t);
  }
  createDecoder(): StreamDecoder {
    const d = new TextDecoder("utf-8");
    return { push: (t) => (t <= 1 ? "" : d.decode(tokenBytesOf(t), { stream: true })), flush: () => d.decode() };
  }
  createSequence(): number {
    const id = this.next++;
    this.seqs.set(id, []);
    return id;
  }
  freeSequence(seq: number): void {
    if (!this.seqs.delete(seq)) throw new Error(`unknown sequence ${seq}`);
  }
  forward(batch: readonly BatchEntry[]): Float32Array[] | Promise<Float32Array[]> {
    if (this.opts.stepMs) {
      const end = performance.now() + this.opts.stepMs;
      while (performance.now() < end);
    }
    this.batches.push(batch.map((e) => [e.seq, e.tokens.length, e.logits]));
    const out = batch.map((e) => {
      const s = this.seqs.get(e.seq);
      if (!s) throw new Error(`unknown sequence ${e.seq}`);
      if (this.opts.failOnToken !== undefined && e.tokens.includes(this.opts.failOnToken)) throw new Error("injected failure");
      s.push(...e.tokens);
      if (s.length > this.info.contextLength) throw new RangeError("context overflow");
      if (e.logits === "none") return new Float32Array(0);
      const l = new Float32Array(V);
      const eos = this.opts.eosAt !== undefined && s.length >= this.opts.eosAt;
      l[eos ? 0 : nextToken(s[s.length - 1], s.length)] = 8;
      return l;
    });
    if (this.opts.asyncMs !== undefined) return new Promise((r) => setTimeout(() => r(out), this.opts.asyncMs));
    return out;
  }
  createSampler(params: SamplingParams): TokenSampler {
    return new FakeSampler(params);
  }
  close(): void {
    this.closed = true;
  }
}

/** Greedy text the fake model produces after `prompt` (tokens), n tokens (no EOS). */
export function fakeGreedy(prompt: number[], n: number): string {
  const s = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = nextToken(s[s.length - 1], s.length);
    out.push(t);
    s.push(t);
  }
  const d = new TextDecoder();
  return d.decode(Uint8Array.from(out.flatMap((t) => Array.from(tokenBytesOf(t)))));
}

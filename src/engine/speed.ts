// How fast an engine runs on this machine: a prefill of a synthetic prompt, then greedy decode
// steps, timed apart. One measurement shared by `llmesh bench` and bench/engine.ts, so that the
// CLI a user runs and the figures in BENCHMARKS.md come from the same code.
import type { GGUFFile } from "../gguf/reader.ts";
import type { Engine } from "./engine.ts";

/** Tokens per second. */
export interface Speed {
  /** Prompt tokens per second of one prefill forward pass. */
  prefill: number;
  /** Greedy decode steps per second (one forward pass per token, after the prompt). */
  decode: number;
}

/** n pseudo-random token ids in [1, vocab) from a fixed seed (the same prompt on every run and engine). */
export function syntheticPrompt(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return 1 + (s % (vocab - 1));
  });
}

export function argmax(l: Float32Array): number {
  let b = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[b]) b = i;
  return b;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Times one prefill of nPrompt tokens (a fresh sequence) and nDecode greedy steps after it; the
 * sequence is freed afterwards. The prompt is syntheticPrompt(nPrompt, vocab, 7).
 */
export function timeEngine(e: Engine, nPrompt: number, nDecode: number): Speed {
  const seq = e.createSequence();
  try {
    const t0 = performance.now();
    let [l] = e.forward([{ seq, tokens: syntheticPrompt(nPrompt, e.config.nVocab, 7) }]);
    const t1 = performance.now();
    for (let i = 0; i < nDecode; i++) [l] = e.forward([{ seq, tokens: [argmax(l)] }]);
    const t2 = performance.now();
    return { prefill: nPrompt / ((t1 - t0) / 1000), decode: nDecode / ((t2 - t1) / 1000) };
  } finally {
    e.freeSequence(seq);
  }
}

/**
 * The weight bytes one decode step reads: every matrix of the file (the token embedding only when
 * it doubles as the output projection; otherwise a step reads one row of it).
 */
export function decodeWeightBytes(g: GGUFFile): number {
  let bytes = 0;
  for (const t of g.tensors.values()) {
    if (t.dims.length < 2) continue;
    if (t.name === "token_embd.weight" && g.tensors.has("output.weight")) continue;
    bytes += t.nBytes;
  }
  return bytes;
}

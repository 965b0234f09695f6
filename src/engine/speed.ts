// How fast an engine runs on this machine: a prefill of a synthetic prompt, then greedy decode
// steps, timed apart. One measurement shared by `llmesh bench` and bench/engine.ts, so that the
// CLI a user runs and the figures in BENCHMARKS.md come from the same code.
import type { GGUFFile } from "../gguf/reader.ts";
import type { Engine } from "./engine.ts";
import { argmax } from "./sampling.ts";

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

/** A side of a comparison: `run(nPrompt, nDecode)` times one prefill and nDecode greedy steps. */
export type SpeedRun = (nPrompt: number, nDecode: number) => Speed | Promise<Speed>;

export interface Comparison {
  /** Medians over the runs. */
  ours: Speed;
  theirs?: Speed;
  /** Medians of the per-pair ratios ours / theirs. */
  ratio?: Speed;
}

/**
 * Our engine (and optionally a reference) timed side by side: warm-up runs (a short one, then a full
 * prompt: V8 tiers the kernels up during the first long prefill), then `runs` pairs of runs taken
 * back to back, alternating which side goes first, so that bursts of other load on the machine fall
 * on both sides of a pair. `onRun` is told after each timed run.
 */
export async function compareSpeed(
  ours: SpeedRun, theirs: SpeedRun | undefined, nPrompt: number, nDecode: number, runs: number,
  onRun: (label: string) => void = () => {},
): Promise<Comparison> {
  await ours(Math.min(nPrompt, 64), 8);
  await ours(nPrompt, 8);
  if (theirs) await theirs(Math.min(nPrompt, 64), 8);
  const os: Speed[] = [];
  const ts: Speed[] = [];
  for (let r = 0; r < runs; r++) {
    if (theirs && r % 2 === 1) {
      ts.push(await theirs(nPrompt, nDecode));
      onRun(`llama.cpp run ${r + 1}`);
    }
    os.push(await ours(nPrompt, nDecode));
    onRun(`llmesh run ${r + 1}`);
    if (theirs && r % 2 === 0) {
      ts.push(await theirs(nPrompt, nDecode));
      onRun(`llama.cpp run ${r + 1}`);
    }
  }
  const med = (xs: Speed[]): Speed => ({ prefill: median(xs.map((x) => x.prefill)), decode: median(xs.map((x) => x.decode)) });
  if (!theirs) return { ours: med(os) };
  return {
    ours: med(os),
    theirs: med(ts),
    ratio: {
      prefill: median(os.map((x, i) => x.prefill / ts[i].prefill)),
      decode: median(os.map((x, i) => x.decode / ts[i].decode)),
    },
  };
}

// Shared helpers for the engine tests.
import { fileURLToPath } from "node:url";
import { openGGUF, parseGGUF, type GGUFFile } from "../../src/gguf/reader.ts";
import { serializeGGUF } from "../../src/gguf/writer.ts";
import { Engine, type EngineOptions } from "../../src/engine/engine.ts";
import { argmax } from "../../src/engine/sampling.ts";
import { synthModel } from "../../src/engine/synth/synth.ts";
import { getShape } from "../../src/engine/synth/shapes.ts";
import { loadVocabMetadata } from "../../src/engine/synth/load-vocab.ts";
import type { Arch } from "../../src/engine/synth/shapes.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const STORIES = `${ROOT}models/stories260K.gguf`;
export const TINY_RANDOM = `${ROOT}test/fixtures/models/llama-2-tiny-random.gguf`;

export function load(path: string, opts: EngineOptions = {}): Engine {
  const g = openGGUF(path);
  try {
    return Engine.load(g, opts);
  } finally {
    g.close();
  }
}

/** Feeds `prompt` then greedily decodes `steps` tokens; returns every step's logits and the tokens. */
export function greedyRun(e: Engine, prompt: number[], steps: number): { tokens: number[]; logits: Float32Array[] } {
  const seq = e.createSequence();
  const logits: Float32Array[] = [];
  const tokens: number[] = [];
  let [l] = e.forward([{ seq, tokens: prompt }]);
  for (let i = 0; i < steps; i++) {
    logits.push(l);
    const t = argmax(l);
    tokens.push(t);
    [l] = e.forward([{ seq, tokens: [t] }]);
  }
  e.freeSequence(seq);
  return { tokens, logits };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Byte-for-byte equality of two float arrays (distinguishes -0/+0 and NaN payloads). */
export function bitEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

const synthCache = new Map<string, Uint8Array>();

/**
 * A small random-weight model of a real architecture (the project's synth generator) with the
 * 512-token stories260K vocabulary, held in memory. shape: e.g. "tiny-qwen3"; type: a GGMLType id.
 */
export function synthGGUF(shape: string, type: number, opts: { arch?: Arch; nLayer?: number } = {}): GGUFFile {
  const key = `${shape}/${type}/${opts.arch}/${opts.nLayer}`;
  let bytes = synthCache.get(key);
  if (!bytes) {
    const vocab = loadVocabMetadata(STORIES);
    const m = synthModel({ shape: getShape(shape), type, vocab, seed: 7, ...(opts.arch ? { arch: opts.arch } : {}), ...(opts.nLayer ? { nLayer: opts.nLayer } : {}) });
    bytes = serializeGGUF({ metadata: m.metadata, tensors: m.tensors });
    synthCache.set(key, bytes);
  }
  return parseGGUF(bytes, `synth:${key}`);
}

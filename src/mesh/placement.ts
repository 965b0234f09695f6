// Initial placement: contiguous layer ranges, stage 0 on the host, then the workers in join order;
// layers proportional to measured capacity (1 / ms per layer), every peer within its memory.
import { freemem } from "node:os";
import { Engine } from "../engine/engine.ts";
import type { GGUFFile } from "../gguf/reader.ts";

export interface StageCapacity {
  msPerLayer: number;
  freeMemoryBytes: number;
}

/** Bytes of the model's repeating layers, averaged per layer. */
export function bytesPerLayer(gguf: GGUFFile, nLayer: number): number {
  let total = 0;
  for (const [name, t] of gguf.tensors) if (name.startsWith("blk.")) total += t.nBytes;
  return total / Math.max(1, nLayer);
}

/** Layer counts per stage (sum = nLayer, each ≥ 1). Throws when the peers cannot hold the model. */
export function proportionalSplit(nLayer: number, peers: readonly StageCapacity[], layerBytes: number, memoryFraction = 0.8): number[] {
  const n = peers.length;
  if (n > nLayer) throw new Error(`${n} stages for a ${nLayer}-layer model: every stage needs at least one layer`);
  const caps = peers.map((p) => Math.max(1, Math.floor((p.freeMemoryBytes * memoryFraction) / Math.max(1, layerBytes))));
  if (caps.reduce((a, b) => a + b, 0) < nLayer) throw new Error(`the peers' free memory holds ${caps.reduce((a, b) => a + b, 0)} of the model's ${nLayer} layers`);
  const speed = peers.map((p) => 1 / Math.max(1e-6, p.msPerLayer));
  const sum = speed.reduce((a, b) => a + b, 0);
  const ideal = speed.map((s) => (nLayer * s) / sum);
  const out = ideal.map((x, i) => Math.min(caps[i], Math.max(1, Math.floor(x))));
  let left = nLayer - out.reduce((a, b) => a + b, 0);
  // Hand out (or take back) layers by largest remainder, respecting 1 ≤ layers ≤ capacity.
  while (left !== 0) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < n; i++) {
      const ok = left > 0 ? out[i] < caps[i] : out[i] > 1;
      if (!ok) continue;
      const score = left > 0 ? ideal[i] - out[i] : out[i] - ideal[i];
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    if (best < 0) throw new Error("no placement fits");
    out[best] += left > 0 ? 1 : -1;
    left += left > 0 ? -1 : 1;
  }
  return out;
}

/** Measures this machine's compute time for one layer and one token (ms), on the model's first layer. */
export function measureCapacity(gguf: GGUFFile): StageCapacity {
  const engine = Engine.load(gguf, { range: { start: 0, end: 1 }, maxContext: 16 });
  const seq = engine.createSequence();
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    engine.forward([{ seq, tokens: [1] }]);
    best = Math.min(best, performance.now() - t0);
  }
  engine.freeSequence(seq);
  return { msPerLayer: Math.max(best, 1e-3), freeMemoryBytes: freemem() };
}

// What a peer measures about itself for placement (the planner, src/planner, does the placing: see
// MeshHost.formMesh): its compute time for one layer and one token, and its free memory.
import { freemem } from "node:os";
import { Engine } from "../engine/engine.ts";
import type { GGUFFile } from "../gguf/reader.ts";

export interface StageCapacity {
  msPerLayer: number;
  freeMemoryBytes: number;
}

/** Measures this machine's compute time for one layer and one token (ms), on the model's first layer. */
export function measureCapacity(gguf: GGUFFile, threads?: number, memoryBytes?: number): StageCapacity {
  const engine = Engine.load(gguf, { range: { start: 0, end: 1 }, maxContext: 16, ...(threads !== undefined ? { threads } : {}) });
  const seq = engine.createSequence();
  engine.forward([{ seq, tokens: [1] }]); // warm-up (kernel threads, caches)
  // The best of several runs: on a busy machine the minimum is the least disturbed figure.
  let best = Infinity;
  for (let i = 0; i < 12; i++) {
    const t0 = performance.now();
    engine.forward([{ seq, tokens: [1] }]);
    best = Math.min(best, performance.now() - t0);
  }
  engine.freeSequence(seq);
  // An operator's cap (--memory) never raises the figure above what is free.
  const free = freemem();
  return { msPerLayer: Math.max(best, 1e-3), freeMemoryBytes: memoryBytes !== undefined ? Math.min(memoryBytes, free) : free };
}

// What a peer measures about itself for placement (the planner, src/planner, does the placing: see
// MeshHost.formMesh): its compute time for one layer and one token, and its free memory.
import { freemem } from "node:os";
import { Engine } from "../engine/engine.ts";
import { readModelConfig } from "../engine/model-config.ts";
import type { GGUFFile } from "../gguf/reader.ts";

export interface StageCapacity {
  msPerLayer: number;
  freeMemoryBytes: number;
}

/**
 * Measures this machine's compute time for one layer and one token (ms): the median of several
 * single-token forwards over the model's first few layers (up to 4, at most ~256 MiB of weights), each
 * after a short idle pause. A pipeline stage computes right after sitting idle while the other stages
 * work (cold caches, threads asleep), which on a small machine is 35–65% slower than back-to-back runs:
 * the fastest of back-to-back runs under-predicted the live per-token time that much.
 */
export function measureCapacity(gguf: GGUFFile, threads?: number, memoryBytes?: number): StageCapacity {
  const cfg = readModelConfig((k) => gguf.getValue(k), gguf.tensors);
  const layerBytes = [...gguf.tensors.values()].filter((t) => t.name.startsWith("blk.0.")).reduce((a, t) => a + t.nBytes, 0);
  const nLayers = Math.max(1, Math.min(4, cfg.nLayer, layerBytes > 0 ? Math.floor((256 * 2 ** 20) / layerBytes) : 4));
  const engine = Engine.load(gguf, { range: { start: 0, end: nLayers }, maxContext: 16, ...(threads !== undefined ? { threads } : {}) });
  const seq = engine.createSequence();
  engine.forward([{ seq, tokens: [1] }]); // warm-up (kernel threads, first touch of the weights)
  const idle = new Int32Array(new SharedArrayBuffer(4));
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    Atomics.wait(idle, 0, 0, 20);
    engine.truncate(seq, 1);
    const t0 = performance.now();
    engine.forward([{ seq, tokens: [1] }]);
    times.push(performance.now() - t0);
  }
  engine.dispose(); // its kernel memory is reused by the stage this peer will load
  times.sort((a, b) => a - b);
  const ms = times[times.length >> 1] / nLayers;
  // An operator's cap (--memory) never raises the figure above what is free.
  const free = freemem();
  return { msPerLayer: Math.max(ms, 1e-3), freeMemoryBytes: memoryBytes !== undefined ? Math.min(memoryBytes, free) : free };
}

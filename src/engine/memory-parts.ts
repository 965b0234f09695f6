// Splitting one engine's layers over several kernel memories.
//
// A wasm32 memory addresses at most 4 GiB, and the kernels take raw addresses in their own memory.
// An engine whose packed weights do not fit in one memory is made of parts: consecutive layer ranges
// [start, end), each with its own kernel memory (its weights, its share of every sequence's KV cache
// and its scratch), run one after the other inside forward() — a pipeline within the process. Only
// the hidden states (n_tokens, n_embd) cross from one part to the next; no weight is copied.
//
// The budget per memory is for weights; what is left of the 4 GiB holds the KV caches and scratch
// (a part whose caches outgrow it fails the allocation with a clear error).
import type { GGUFFile } from "../gguf/reader.ts";
import { kernelSupports, packedBytes } from "../kernels/index.ts";
import type { ModelConfig } from "./model-config.ts";
import type { LayerRange } from "./weights.ts";

/** Default weight bytes per kernel memory: 3 GiB, leaving 1 GiB of each memory for KV caches and scratch. */
export const DEFAULT_PART_WEIGHT_BYTES = 3 * 2 ** 30;

/** Bytes a tensor takes in kernel memory (0 for a type the kernels do not take: it stays in JS memory). */
function tensorBytes(gguf: GGUFFile, name: string): number {
  const t = gguf.tensors.get(name);
  if (!t || !kernelSupports(t.type)) return 0;
  return packedBytes(t.type, t.dims[0], t.nElements / t.dims[0]);
}

/** Kernel-memory bytes of layer il's matrices. */
export function layerKernelBytes(gguf: GGUFFile, il: number): number {
  let n = 0;
  for (const [name] of gguf.tensors) if (name.startsWith(`blk.${il}.`)) n += tensorBytes(gguf, name);
  return n;
}

/**
 * Cuts `range` into consecutive parts whose weights fit `budget` bytes each: the first part also holds
 * token_embd when range starts at 0 (unless tied and the range ends at the last layer: then it borrows
 * the last part's output matrix, the same tensor), the
 * last part output (or the tied token_embd) when range ends at the last layer. Greedy, in layer order:
 * as few parts as fit. Throws when a single layer (with the matrices it must share a part with) does
 * not fit.
 */
export function planParts(gguf: GGUFFile, config: ModelConfig, range: LayerRange, budget = DEFAULT_PART_WEIGHT_BYTES): LayerRange[] {
  const tied = !gguf.tensors.has("output.weight");
  const borrows = tied && range.end === config.nLayer; // the lookups use the last part's output matrix
  const head = range.start === 0 && !borrows ? tensorBytes(gguf, "token_embd.weight") : 0;
  const tail = range.end === config.nLayer ? tensorBytes(gguf, tied ? "token_embd.weight" : "output.weight") : 0;
  const parts: LayerRange[] = [];
  let start = range.start;
  let used = head;
  for (let il = range.start; il < range.end; il++) {
    const b = layerKernelBytes(gguf, il) + (il === range.end - 1 ? tail : 0);
    if (used + b > budget && il > start) {
      parts.push({ start, end: il });
      start = il;
      used = 0;
    }
    used += b;
    if (used > budget) {
      const gib = (x: number) => (x / 2 ** 30).toFixed(2);
      throw new RangeError(`layer ${il} needs ${gib(used)} GiB of kernel memory with what must share its part, more than the ${gib(budget)} GiB a part may hold`);
    }
  }
  parts.push({ start, end: range.end });
  return parts;
}

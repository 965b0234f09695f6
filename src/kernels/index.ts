// The kernels' TypeScript face: one Kernels object per engine stage owns a kernel memory (weights
// packed at load, scratch), quantizes activations once per layer input and runs matmuls on
// `threads` threads (the main thread plus pool workers).
//
//   const k = new Kernels({ threads: 2 });
//   const W = k.pack(GGMLType.Q8_0, nCols, nRows, ggufBytes);
//   const a = k.input(x, nTok, nCols, W.act, "xn");     // reuse `a` for every weight of that kind
//   k.matmul(W, a, y);                                  // y (nTok, nRows)
import { availableParallelism } from "node:os";
import { KERNEL_NAMES, runParallel } from "./pool.ts";
import { KernelMemory } from "./memory.ts";
import { packTensor, type ActKind, type KTensor } from "./layout.ts";

export { kernelSupports, decodePackedRow, type KTensor, type ActKind } from "./layout.ts";
export { KernelMemory } from "./memory.ts";

/** Activations in kernel memory, in the format a weight layout takes. */
export interface KAct {
  kind: ActKind;
  nTok: number;
  width: number;
  xq: number;
  xd: number;
  xs: number;
}

export interface KernelsOptions {
  /** Threads per matmul (main thread included); default the number of cores. */
  threads?: number;
  /** Use the scalar twins instead of the SIMD kernels (tests). */
  generic?: boolean;
}

export class Kernels {
  readonly mem: KernelMemory;
  readonly threads: number;
  readonly generic: boolean;

  constructor(opts: KernelsOptions = {}) {
    this.threads = opts.threads ?? availableParallelism();
    if (!Number.isInteger(this.threads) || this.threads < 1) throw new RangeError(`threads must be a positive integer, got ${opts.threads}`);
    this.generic = opts.generic ?? false;
    this.mem = new KernelMemory();
  }

  /** Copies (and repacks) GGUF tensor bytes into kernel memory. */
  pack(type: number, nCols: number, nRows: number, src: Uint8Array): KTensor {
    return packTensor(this.mem, type, nCols, nRows, src);
  }

  /** Puts x (nTok, width) into kernel memory in the activation format `kind` (scratch named by slot). */
  input(x: Float32Array, nTok: number, width: number, kind: ActKind, slot: string): KAct {
    const mem = this.mem;
    const n = nTok * width;
    const e = mem.exports;
    if (kind === "f32" || kind === "f16" || kind === "bf16") {
      const xq = mem.scratchPtr(`${slot}.${kind}`, n * 4);
      mem.f32.set(x.subarray(0, n), xq >> 2);
      if (kind === "f16") e.round_f16(xq, n);
      else if (kind === "bf16") e.round_bf16(xq, n);
      return { kind, nTok, width, xq, xd: 0, xs: 0 };
    }
    const xf = mem.scratchPtr(`${slot}.x`, n * 4);
    mem.f32.set(x.subarray(0, n), xf >> 2);
    const xq = mem.scratchPtr(`${slot}.${kind}.q`, n * 2);
    if (kind === "q8") {
      const xd = mem.scratchPtr(`${slot}.q8.d`, (n / 32) * 4);
      const xs = mem.scratchPtr(`${slot}.q8.s`, (n / 32) * 4);
      e.quantize_q8(xf, width, nTok, xq, xd, xs);
      return { kind, nTok, width, xq, xd, xs };
    }
    const xd = mem.scratchPtr(`${slot}.q8k.d`, (n / 256) * 4);
    const xs = mem.scratchPtr(`${slot}.q8k.bs`, (n / 16) * 4);
    e.quantize_q8k(xf, width, nTok, xq, xd, xs);
    return { kind, nTok, width, xq, xd, xs };
  }

  /** y (a.nTok, W.nRows) = a · Wᵀ. */
  matmul(W: KTensor, a: KAct, y: Float32Array): void {
    if (a.kind !== W.act || a.width !== W.nCols) throw new Error(`kernels: ${W.layout} weights (${W.nCols} cols) need ${W.act} activations, got ${a.kind} (${a.width})`);
    const mem = this.mem;
    const ys = W.nRowsPadded;
    const yp = mem.scratchPtr("y", a.nTok * ys * 4);
    const k = KERNEL_NAMES.indexOf(this.generic ? `${W.kernel}_generic` : W.kernel);
    runParallel(mem, k, W.nRows, this.threads, [W.ptr, W.nCols, 0, W.nRows, a.xq, a.xd, a.xs, a.nTok, yp, ys]);
    const f = mem.f32;
    const o = yp >> 2;
    if (ys === W.nRows) y.set(f.subarray(o, o + a.nTok * ys));
    else for (let t = 0; t < a.nTok; t++) y.set(f.subarray(o + t * ys, o + t * ys + W.nRows), t * W.nRows);
  }
}

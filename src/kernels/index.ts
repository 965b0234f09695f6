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
import { packTensor, packTensorRows, type ActKind, type KTensor, type RowReader } from "./layout.ts";

const ATTEND = KERNEL_NAMES.indexOf("attend_mt");
const SWIGLU = KERNEL_NAMES.indexOf("swiglu_mt");
const QUANTIZE = KERNEL_NAMES.indexOf("quantize_mt");
/** runParallel's work units per quantized activation. */
const QUANTIZE_WORK = 4;
/** From this many tokens on (prefill), matmuls and attention are dynamic jobs (pool.ts): chunks claimed by free threads. */
const DYNAMIC_TOKENS = 16;
/**
 * Chunks of this many tokens on several threads split each head's attention into ATTEND_SLICES
 * query-row slices of about equal work (assembly/attention.ts attend_mt): heads alone split unevenly
 * (smollm2's 9 among 2 threads: 5 and 4).
 */
const ATTEND_SLICE_TOKENS = 32;
const ATTEND_SLICES = 4;
/** runParallel's work units per SwiGLU element (its f64 exp costs about as much as 256 multiply-adds). */
const SWIGLU_WORK = 256;

export { kernelSupports, packedBytes, decodePackedRow, type KTensor, type ActKind, type RowReader } from "./layout.ts";
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
  /**
   * Attention's fp16-accumulator update as one fused multiply-add (f32x4.relaxed_madd) — the same
   * bits as the f64 emulation, faster; default: where relaxed_madd is fused on this machine.
   */
  fma?: boolean;
  /**
   * The K-quant kernels' int8 dot products as i16x8.relaxed_dot_i8x16_i7x16_s (one pmaddubsw on
   * x86) — the same bits as the exact SIMD emulation (`_x` kernels); default: where
   * relaxed_dot_probe() finds it exact on this machine.
   */
  relaxedDot?: boolean;
}

/** Kernels with a variant (`_x`) that avoids relaxed_dot_i8x16_i7x16_s. */
const RELAXED_DOT_KERNELS = new Set(["mm_q8r", "mm_q40", "mm_q41", "mm_q50", "mm_q51", "mm_q4k", "mm_q5k", "mm_q6k"]);

export class Kernels {
  readonly mem: KernelMemory;
  readonly threads: number;
  readonly generic: boolean;
  readonly fma: boolean;
  readonly relaxedDot: boolean;
  private disposed = false;

  constructor(opts: KernelsOptions = {}) {
    this.threads = opts.threads ?? availableParallelism();
    if (!Number.isInteger(this.threads) || this.threads < 1) throw new RangeError(`threads must be a positive integer, got ${opts.threads}`);
    this.generic = opts.generic ?? false;
    this.mem = KernelMemory.acquire();
    this.fma = opts.fma ?? this.mem.exports.fma_probe() === 1;
    if (this.fma && this.mem.exports.fma_probe() !== 1) throw new Error("kernels: relaxed_madd is not fused on this machine");
    const dotOk = this.mem.exports.relaxed_dot_probe() === 1;
    this.relaxedDot = opts.relaxedDot ?? dotOk;
    if (this.relaxedDot && !dotOk) throw new Error("kernels: relaxed_dot_i8x16_i7x16_s is not exact on this machine");
  }

  /** Copies (and repacks) GGUF tensor bytes into kernel memory. */
  pack(type: number, nCols: number, nRows: number, src: Uint8Array): KTensor {
    return packTensor(this.mem, type, nCols, nRows, src);
  }

  /** Packs a tensor read row by row (straight from the file: no copy of it outside kernel memory). */
  packRows(type: number, nCols: number, nRows: number, rowBytes: number, read: RowReader): KTensor {
    return packTensorRows(this.mem, type, nCols, nRows, rowBytes, read);
  }

  /** Gives the kernel memory back for reuse; nothing packed into it may be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.mem.release();
  }

  private live(): void {
    if (this.disposed) throw new Error("kernels: used after dispose() (its memory belongs to another engine now)");
  }

  /** Puts x (nTok, width) into kernel memory in the activation format `kind` (scratch named by slot). */
  input(x: Float32Array, nTok: number, width: number, kind: ActKind, slot: string): KAct {
    this.live();
    const mem = this.mem;
    const n = nTok * width;
    const e = mem.exports;
    if (kind === "f32" || kind === "f16" || kind === "bf16") {
      const xq = mem.scratchPtr(`${slot}.${kind}`, n * 4);
      mem.f32.set(x.subarray(0, n), xq >>> 2);
      if (kind === "f16") e.round_f16(xq, n);
      else if (kind === "bf16") e.round_bf16(xq, n);
      return { kind, nTok, width, xq, xd: 0, xs: 0 };
    }
    const xf = mem.scratchPtr(`${slot}.x`, n * 4);
    mem.f32.set(x.subarray(0, n), xf >>> 2);
    const xq = mem.scratchPtr(`${slot}.${kind}.q`, kind === "q8" ? n * 2 : n); // i16 (q8) or int8 (q8i, q8k) quants
    if (kind === "q8" || kind === "q8i") {
      const xd = mem.scratchPtr(`${slot}.${kind}.d`, (n / 32) * 4);
      // q8: magnitudes and sign masks (2 bytes per value); q8i: [Q8_1 block sum, Σq] per 32
      const xs = mem.scratchPtr(`${slot}.${kind}.s`, kind === "q8" ? n * 2 : (n / 32) * 8);
      if (this.generic) (kind === "q8" ? e.quantize_q8_generic : e.quantize_q8i_generic)(xf, width, nTok, xq, xd, xs);
      else this.quantize(kind === "q8" ? 0 : 1, xf, width, nTok, xq, xd, xs);
      return { kind, nTok, width, xq, xd, xs };
    }
    const xd = mem.scratchPtr(`${slot}.q8k.d`, (n / 256) * 4);
    const xs = mem.scratchPtr(`${slot}.q8k.bs`, (n / 16) * 2);
    this.quantize(2, xf, width, nTok, xq, xd, xs);
    return { kind, nTok, width, xq, xd, xs };
  }

  /** quantize_q8 (kind 0), quantize_q8i (1) or quantize_q8k (2) of nTok tokens, the tokens split among the threads. */
  private quantize(kind: number, xf: number, width: number, nTok: number, xq: number, xd: number, xs: number): void {
    runParallel(this.mem, QUANTIZE, nTok, this.threads, [xf, width, 0, nTok, xq, xd, xs, QUANTIZE_WORK, kind, 0]);
  }

  /**
   * Causal attention (assembly/attention.ts attend, the arithmetic of src/engine/attention.ts) of the
   * query rows [row0, row0 + nTok) of q (.., nHead·hd) at positions pos0 + t against a KV cache in
   * this kernel memory (f32 storage, fp16 values when f16): head h's key at position j at element
   * h·kHead + j·kDim from kPtr (position-major rows: kDim = nHeadKv·hd, kHead = hd, the defaults;
   * the head-major KVCache: kDim = hd, kHead = capacity·hd), values likewise from vPtr; into the
   * same rows of out (.., nHead·hdv). The heads are split among the
   * threads; each head is computed by one thread with the same code (results never depend on it).
   */
  attend(
    a: { nHead: number; nHeadKv: number; headDim: number; headDimV: number },
    q: Float32Array, out: Float32Array, row0: number, nTok: number, pos0: number,
    kPtr: number, vPtr: number, kDim: number, vDim: number, f16: boolean, kHead = a.headDim, vHead = a.headDimV,
  ): void {
    this.live();
    const { nHead, nHeadKv, headDim: hd, headDimV: hdv } = a;
    if (hd % 4 !== 0 || hdv % 4 !== 0) throw new Error(`kernels: attention needs head dims that are multiples of 4, got ${hd}/${hdv}`);
    const mem = this.mem;
    const qDim = nHead * hd;
    const oDim = nHead * hdv;
    const qp = mem.scratchPtr("att.q", nTok * qDim * 4);
    const op = mem.scratchPtr("att.o", nTok * oDim * 4);
    // work units: S query-row slices per head on several threads (9 heads do not split evenly in 2)
    const S = this.threads > 1 && nTok >= ATTEND_SLICE_TOKENS ? ATTEND_SLICES : 1;
    const tmpStride = mem.exports.attend_tmp_bytes(hd, hdv, pos0 + nTok, nTok); // scratch per unit
    const tmp = mem.scratchPtr("att.tmp", nHead * S * tmpStride);
    const args = mem.scratchPtr("att.args", 128);
    const buf = mem.memory.buffer;
    new Float32Array(buf, qp, nTok * qDim).set(q.subarray(row0 * qDim, (row0 + nTok) * qDim));
    const a32 = new Int32Array(buf, args, 18);
    a32.set([qp, op, nTok, pos0, kPtr, vPtr, kDim, vDim, nHead, nHeadKv, hd, hdv, 0, f16 ? 1 : 0, tmp, kHead, vHead, S]);
    new Float32Array(buf, args + 48, 1)[0] = Math.fround(1 / Math.sqrt(hd)); // scale
    // "rows": 4 per unit (the pool hands out rows in groups of 4). The pool's work estimate is
    // rows × args[1] × args[7]: tmpStride (~ context) × a head-dim factor (attend_mt ignores args[7])
    const workFactor = Math.max(1, ((nTok * (hd + hdv)) >> 4) / S);
    runParallel(mem, ATTEND, nHead * S * 4, this.threads, [args, tmpStride, 0, 0, this.generic ? 1 : this.fma ? 2 : 0, 0, 0, workFactor, 0, 0], nTok >= DYNAMIC_TOKENS ? 1 : 0);
    out.set(new Float32Array(buf, op, nTok * oDim), row0 * oDim);
  }

  /**
   * g[0..n) = silu(g) · u (src/engine/ops.ts swigluTS's bits: the kernel's exp is fdlibm's, V8's
   * Math.exp), the elements split among the threads.
   */
  swiglu(g: Float32Array, u: Float32Array, n: number): void {
    this.live();
    const mem = this.mem;
    const gp = mem.scratchPtr("swiglu.g", n * 4);
    const up = mem.scratchPtr("swiglu.u", n * 4);
    mem.f32.set(g.subarray(0, n), gp >>> 2);
    mem.f32.set(u.subarray(0, n), up >>> 2);
    runParallel(mem, SWIGLU, n, this.threads, [gp, SWIGLU_WORK, 0, n, up, 0, 0, 1, 0, 0]);
    g.set(mem.f32.subarray(gp >>> 2, (gp >>> 2) + n));
  }

  /** y (a.nTok, W.nRows) = a · Wᵀ. */
  matmul(W: KTensor, a: KAct, y: Float32Array): void {
    if (a.kind !== W.act || a.width !== W.nCols) throw new Error(`kernels: ${W.layout} weights (${W.nCols} cols) need ${W.act} activations, got ${a.kind} (${a.width})`);
    const mem = this.mem;
    const ys = W.nRowsPadded;
    const yp = mem.scratchPtr("y", a.nTok * ys * 4);
    const name = this.generic ? `${W.kernel}_generic` : (!this.relaxedDot || W.exactDot) && RELAXED_DOT_KERNELS.has(W.kernel) ? `${W.kernel}_x` : W.kernel;
    const k = KERNEL_NAMES.indexOf(name);
    // many tokens: guided chunks down to one group of rows, claimed by whichever thread is free (pool.ts)
    const chunk = a.nTok >= DYNAMIC_TOKENS ? 1 : 0;
    runParallel(mem, k, W.nRows, this.threads, [W.ptr, W.nCols, 0, W.nRows, a.xq, a.xd, a.xs, a.nTok, yp, ys], chunk);
    const f = mem.f32;
    const o = yp >>> 2; // addresses reach 4 GiB: unsigned shifts
    if (ys === W.nRows) y.set(f.subarray(o, o + a.nTok * ys));
    else for (let t = 0; t < a.nTok; t++) y.set(f.subarray(o + t * ys, o + t * ys + W.nRows), t * W.nRows);
  }
}

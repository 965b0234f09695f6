// Per-sequence key/value cache for the layers of one stage.
//
// For each local layer l (0 .. nLayers-1, i.e. global layer range.start + l), head-major:
//   k[l]: (n_head_kv, capacity, head_dim)   keys after RoPE; element (position j, head h, i) at
//                                           kOffset(j, h) + i = (h·capacity + j)·head_dim + i
//   v[l]: (n_head_kv, capacity, head_dim_v) values, likewise (vOffset)
// Head-major so that attention streams each head's keys and values contiguously: position-major
// rows (all heads of a position together) made each head's reads strided by the whole row, and
// the hardware prefetcher, which stays within a 4 KiB page, lost them (a 1B model's decode
// attention ran 2.3x slower than on the same bytes laid out per head).
// Storage is f32. With type "f16" (llama.cpp's default cache type) every value is rounded to the
// nearest fp16 when written, so attention sees exactly the numbers llama.cpp's F16 cache holds.
// The cache starts small and doubles on demand up to maxContext.
//
// attach(mem) moves the storage into a kernel memory (the WASM attention kernel reads it there,
// without copies): k[l] / v[l] are then views of that memory, kPtr[l] / vPtr[l] their addresses.
import type { KernelMemory } from "../kernels/memory.ts";
import { f16round } from "./float16.ts";

export type KVCacheType = "f16" | "f32";

export class KVCache {
  readonly nLayers: number;
  readonly kDim: number;
  readonly vDim: number;
  readonly maxContext: number;
  readonly type: KVCacheType;
  /** KV heads (kDim = nHeads·head_dim, vDim = nHeads·head_dim_v). */
  readonly nHeads: number;
  /** Elements per position of one head: head_dim, head_dim_v. */
  readonly kRow: number;
  readonly vRow: number;
  /** Positions [0, length) hold valid entries. */
  length = 0;
  capacity = 0;
  k: Float32Array[] = []; // per layer (capacity, kDim)
  v: Float32Array[] = []; // per layer (capacity, vDim)
  /** With a kernel memory attached: the byte addresses of k[l] / v[l] in it. */
  kPtr: number[] = [];
  vPtr: number[] = [];
  private mem: KernelMemory | undefined;
  private block = 0; // the kernel memory block holding every layer's k and v
  private blockBytes = 0;

  constructor(nLayers: number, kDim: number, vDim: number, maxContext: number, type: KVCacheType, initialCapacity = 64, nHeads = 1) {
    if (kDim % nHeads !== 0 || vDim % nHeads !== 0) throw new Error(`KV cache: ${nHeads} heads do not divide ${kDim}/${vDim}`);
    this.nLayers = nLayers;
    this.kDim = kDim;
    this.vDim = vDim;
    this.nHeads = nHeads;
    this.kRow = kDim / nHeads;
    this.vRow = vDim / nHeads;
    this.maxContext = maxContext;
    this.type = type;
    this.grow(Math.min(initialCapacity, maxContext));
  }

  /** Makes room for positions [0, n). Throws past maxContext. */
  reserve(n: number): void {
    if (n > this.maxContext) {
      throw new RangeError(`context overflow: ${n} positions requested, the sequence holds at most ${this.maxContext}`);
    }
    if (n <= this.capacity) return;
    let cap = Math.max(this.capacity, 16);
    while (cap < n) cap *= 2;
    this.grow(Math.min(cap, this.maxContext));
  }

  /** Moves the storage into kernel memory `mem` (once; later growth stays there). */
  attach(mem: KernelMemory): void {
    if (this.mem === mem) return;
    if (this.mem) throw new Error("KV cache: already attached to another kernel memory");
    this.mem = mem;
    if (this.capacity > 0) this.grow(this.capacity);
  }

  /** Elements between two heads' blocks in k[l] (capacity·head_dim), v[l] (capacity·head_dim_v). */
  get kHeadStride(): number {
    return this.capacity * this.kRow;
  }
  get vHeadStride(): number {
    return this.capacity * this.vRow;
  }

  /** Offset in k[l] of head h's key at position j (head_dim elements from there). */
  kOffset(j: number, h: number): number {
    return (h * this.capacity + j) * this.kRow;
  }

  /** Offset in v[l] of head h's value at position j (head_dim_v elements from there). */
  vOffset(j: number, h: number): number {
    return (h * this.capacity + j) * this.vRow;
  }

  /** The kernel memory the storage lives in, if attached. */
  get memory(): KernelMemory | undefined {
    return this.mem;
  }

  private grow(capacity: number): void {
    const k: Float32Array[] = [];
    const v: Float32Array[] = [];
    const mem = this.mem;
    const perLayer = capacity * (this.kDim + this.vDim) * 4;
    const bytes = this.nLayers * perLayer;
    const block = mem ? mem.allocBlock(bytes) : 0;
    const buf = mem?.memory.buffer;
    this.kPtr = [];
    this.vPtr = [];
    for (let l = 0; l < this.nLayers; l++) {
      let nk: Float32Array;
      let nv: Float32Array;
      if (buf) {
        const kp = block + l * perLayer;
        const vp = kp + capacity * this.kDim * 4;
        nk = new Float32Array(buf, kp, capacity * this.kDim);
        nv = new Float32Array(buf, vp, capacity * this.vDim);
        this.kPtr.push(kp);
        this.vPtr.push(vp);
      } else {
        nk = new Float32Array(capacity * this.kDim);
        nv = new Float32Array(capacity * this.vDim);
      }
      if (this.capacity > 0) {
        // everything, not just [0, length): attach() may run mid-step, after this step's writes;
        // head by head (each head's block grows)
        const ok = this.kHeadStride; // the old capacity's head blocks
        const ov = this.vHeadStride;
        for (let h = 0; h < this.nHeads; h++) {
          nk.set(this.k[l].subarray(h * ok, (h + 1) * ok), h * capacity * this.kRow);
          nv.set(this.v[l].subarray(h * ov, (h + 1) * ov), h * capacity * this.vRow);
        }
      }
      k.push(nk);
      v.push(nv);
    }
    this.releaseBlock();
    if (mem) {
      this.block = block;
      this.blockBytes = bytes;
    }
    this.k = k;
    this.v = v;
    this.capacity = capacity;
  }

  private releaseBlock(): void {
    if (this.blockBytes > 0) this.mem!.freeBlock(this.block, this.blockBytes);
    this.block = 0;
    this.blockBytes = 0;
  }

  /**
   * Stores nTokens rows of keys and values for positions [pos0, pos0 + nTokens) of layer l, taken from
   * kSrc (.., kDim) and vSrc (.., vDim) starting at row srcRow. Call reserve(pos0 + nTokens) first.
   */
  write(l: number, pos0: number, nTokens: number, kSrc: Float32Array, vSrc: Float32Array, srcRow: number): void {
    this.writeRows(this.k[l], this.kDim, this.kRow, pos0, nTokens, kSrc, srcRow);
    this.writeRows(this.v[l], this.vDim, this.vRow, pos0, nTokens, vSrc, srcRow);
  }

  /** Rows of src (.., dim) → dst's head blocks, one head_dim slice per head and position. */
  private writeRows(dst: Float32Array, dim: number, row: number, pos0: number, nTokens: number, src: Float32Array, srcRow: number): void {
    // an F16 cache in kernel memory is rounded there afterwards, each head's new rows in one call
    // (the kernels' round_f16: f16round's bits); elsewhere value by value here
    const f16 = this.type === "f16";
    const mem = f16 ? this.mem : undefined;
    for (let t = 0; t < nTokens; t++) {
      for (let h = 0; h < this.nHeads; h++) {
        const so = (srcRow + t) * dim + h * row;
        const d = (h * this.capacity + pos0 + t) * row;
        if (f16 && !mem) for (let i = 0; i < row; i++) dst[d + i] = f16round(src[so + i]);
        else dst.set(src.subarray(so, so + row), d);
      }
    }
    if (mem) for (let h = 0; h < this.nHeads; h++) mem.exports.round_f16(dst.byteOffset + (h * this.capacity + pos0) * row * 4, nTokens * row);
  }

  /** Forgets positions >= newLength. */
  truncate(newLength: number): void {
    if (!Number.isInteger(newLength) || newLength < 0 || newLength > this.length) {
      throw new RangeError(`cannot truncate a sequence of length ${this.length} to ${newLength}`);
    }
    this.length = newLength;
  }

  /** Bytes held by the buffers. */
  get bytes(): number {
    return this.nLayers * this.capacity * (this.kDim + this.vDim) * 4;
  }

  /** Drops the buffers; the cache is unusable afterwards. */
  free(): void {
    this.releaseBlock();
    this.k = [];
    this.v = [];
    this.kPtr = [];
    this.vPtr = [];
    this.capacity = 0;
    this.length = 0;
  }
}

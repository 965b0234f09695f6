// Per-sequence key/value cache for the layers of one stage.
//
// For each local layer l (0 .. nLayers-1, i.e. global layer range.start + l):
//   k[l]: (capacity, n_head_kv*head_dim)   keys after RoPE, row = position
//   v[l]: (capacity, n_head_kv*head_dim_v) values
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

  constructor(nLayers: number, kDim: number, vDim: number, maxContext: number, type: KVCacheType, initialCapacity = 64) {
    this.nLayers = nLayers;
    this.kDim = kDim;
    this.vDim = vDim;
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
        // everything, not just [0, length): attach() may run mid-step, after this step's writes
        nk.set(this.k[l]);
        nv.set(this.v[l]);
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
    const k = this.k[l];
    const v = this.v[l];
    const nk = nTokens * this.kDim;
    const nv = nTokens * this.vDim;
    const ko = pos0 * this.kDim;
    const vo = pos0 * this.vDim;
    const ks = srcRow * this.kDim;
    const vs = srcRow * this.vDim;
    if (this.type === "f16") {
      for (let i = 0; i < nk; i++) k[ko + i] = f16round(kSrc[ks + i]);
      for (let i = 0; i < nv; i++) v[vo + i] = f16round(vSrc[vs + i]);
    } else {
      k.set(kSrc.subarray(ks, ks + nk), ko);
      v.set(vSrc.subarray(vs, vs + nv), vo);
    }
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

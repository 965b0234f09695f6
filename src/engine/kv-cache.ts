// Per-sequence key/value cache for the layers of one stage.
//
// For each local layer l (0 .. nLayers-1, i.e. global layer range.start + l):
//   k[l]: (capacity, n_head_kv*head_dim)   keys after RoPE, row = position
//   v[l]: (capacity, n_head_kv*head_dim_v) values
// Storage is f32. With type "f16" (llama.cpp's default cache type) every value is rounded to the
// nearest fp16 when written, so attention sees exactly the numbers llama.cpp's F16 cache holds.
// The cache starts small and doubles on demand up to maxContext.
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

  private grow(capacity: number): void {
    const k: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (let l = 0; l < this.nLayers; l++) {
      const nk = new Float32Array(capacity * this.kDim);
      const nv = new Float32Array(capacity * this.vDim);
      if (this.capacity > 0) {
        nk.set(this.k[l].subarray(0, this.length * this.kDim));
        nv.set(this.v[l].subarray(0, this.length * this.vDim));
      }
      k.push(nk);
      v.push(nv);
    }
    this.k = k;
    this.v = v;
    this.capacity = capacity;
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
    this.k = [];
    this.v = [];
    this.capacity = 0;
    this.length = 0;
  }
}

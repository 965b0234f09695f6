// One WebAssembly linear memory (shared between the main thread and the worker threads) holding a
// stage's packed weights and the kernels' scratch buffers, with the kernel module instantiated on it.
//
// A wasm32 memory addresses at most 4 GiB. One KernelMemory serves one part of an Engine (a range
// of layers); an engine whose weights pass a memory's budget is made of several parts, each with its
// own memory (src/engine/memory-parts.ts) — the kernels take raw addresses in their own memory only. Memory is handed out by a bump allocator: weights are allocated
// once at load, scratch buffers are reused by name and only reallocated when they must grow.
import { kernelsWasmBytes } from "./build.ts";

/** The kernel exports (see assembly/kernels.ts and the files it re-exports). */
export interface KernelExports {
  quantize_q8(x: number, n: number, nTok: number, q: number, d: number, s: number): void;
  quantize_q8_generic(x: number, n: number, nTok: number, q: number, d: number, s: number): void;
  quantize_q8i(x: number, n: number, nTok: number, q: number, d: number, s: number): void;
  quantize_q8i_generic(x: number, n: number, nTok: number, q: number, d: number, s: number): void;
  quantize_q8k(x: number, n: number, nTok: number, q: number, d: number, bs: number): void;
  round_f16(x: number, n: number): void;
  round_bf16(x: number, n: number): void;
  stream_sum(p: number, n: number): number;
  swiglu(g: number, u: number, n: number): void;
  fd_exp(x: number): number;
  attend_tmp_bytes(hd: number, hdv: number, n: number, nTok: number): number;
  [name: string]: ((...args: number[]) => number | void);
}

export type MatmulFn = (w: number, nCols: number, r0: number, r1: number, xq: number, xd: number, xs: number, nTok: number, y: number, ys: number) => void;

let compiled: WebAssembly.Module | undefined;

/** The compiled kernel module (built on first use if needed), shared by every memory and thread. */
export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(kernelsWasmBytes() as Uint8Array<ArrayBuffer>);
  return compiled;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB
/** Bytes left unused at the start (the module has no static data, but keep address 0 invalid). */
const BASE = 65536;

let nextId = 1;
/**
 * Memories given back by engines that were dropped (a re-placed stage, the capacity probe), reused
 * by the next engine: a wasm memory never shrinks, so its pages are only worth anything reused.
 */
const released: KernelMemory[] = [];
const MAX_RELEASED = 2;

export class KernelMemory {
  readonly id = nextId++;
  readonly memory: WebAssembly.Memory;
  readonly exports: KernelExports;
  private top = BASE;
  private readonly scratch = new Map<string, { ptr: number; bytes: number }>();
  /** Freed blocks (freeBlock) by size, for reuse by allocBlock (KV caches come and go). */
  private readonly freed = new Map<number, number[]>();
  private u8view: Uint8Array;
  private f32view: Float32Array;

  constructor(initialBytes = 1 << 20) {
    const pages = Math.max(2, Math.ceil((initialBytes + BASE) / PAGE));
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
    const inst = new WebAssembly.Instance(kernelModule(), { env: { memory: this.memory, abort: () => { throw new Error("wasm abort"); } } });
    this.exports = inst.exports as unknown as KernelExports;
    this.u8view = new Uint8Array(this.memory.buffer);
    this.f32view = new Float32Array(this.memory.buffer);
  }

  /** A memory given back earlier (emptied), or a new one. */
  static acquire(): KernelMemory {
    return released.pop() ?? new KernelMemory();
  }

  /**
   * Gives this memory back for the next acquire(): everything allocated in it is gone. The caller
   * must not touch anything that lived in it again (an engine calls this from dispose()).
   */
  release(): void {
    this.top = BASE;
    this.scratch.clear();
    this.freed.clear();
    if (!released.includes(this) && released.length < MAX_RELEASED) released.push(this);
  }

  /** Bytes of the memory (its high-water mark: a wasm memory never shrinks). */
  get capacity(): number {
    return this.memory.buffer.byteLength;
  }

  /** Bytes in use (weights and scratch). */
  get used(): number {
    return this.top;
  }

  /** Allocates `bytes` (64-byte aligned) and returns the address. Throws past 4 GiB. */
  alloc(bytes: number): number {
    const ptr = Math.ceil(this.top / 64) * 64; // (not & ~63: addresses reach 4 GiB, past int32)
    const end = ptr + bytes;
    if (end > MAX_PAGES * PAGE - PAGE) {
      throw new RangeError(`kernel memory: ${(end / 2 ** 30).toFixed(2)} GiB needed, a wasm32 memory holds at most 4 GiB (an engine puts at most 3 GiB of weights in one; the rest holds KV caches and scratch: serve fewer sequences at once or a shorter context)`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return ptr;
  }

  /** Allocates a block that can be given back with freeBlock (reusing a freed block of the same size). */
  allocBlock(bytes: number): number {
    const list = this.freed.get(bytes);
    const ptr = list?.pop();
    if (ptr !== undefined) return ptr;
    return this.alloc(bytes);
  }

  /** Gives back a block from allocBlock(bytes). */
  freeBlock(ptr: number, bytes: number): void {
    let list = this.freed.get(bytes);
    if (!list) this.freed.set(bytes, (list = []));
    list.push(ptr);
  }

  /** A named scratch region of at least `bytes`, reused across calls (contents unspecified). */
  scratchPtr(name: string, bytes: number): number {
    const s = this.scratch.get(name);
    if (s && s.bytes >= bytes) return s.ptr;
    const size = Math.max(bytes, s ? s.bytes * 2 : 0, 256);
    const ptr = this.alloc(size);
    this.scratch.set(name, { ptr, bytes: size });
    return ptr;
  }

  /** The whole memory as bytes (re-fetched after growth). */
  get u8(): Uint8Array {
    if (this.u8view.byteLength !== this.memory.buffer.byteLength) this.refresh();
    return this.u8view;
  }

  /** The whole memory as f32 (re-fetched after growth). */
  get f32(): Float32Array {
    if (this.f32view.byteLength !== this.memory.buffer.byteLength) this.refresh();
    return this.f32view;
  }

  private refresh(): void {
    this.u8view = new Uint8Array(this.memory.buffer);
    this.f32view = new Float32Array(this.memory.buffer);
  }
}

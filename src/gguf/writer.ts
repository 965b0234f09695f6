// GGUF v3 writer (layout drawn in reader.ts). Used by `llmesh synth` for random-weight models of real
// shapes and by tests that forge files. Tensor data is produced one tensor at a time by a callback so a
// multi-gigabyte model is never held in memory whole.
import { closeSync, openSync, writeSync } from "node:fs";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC } from "./reader.ts";
import { GGML_TYPE_GEOMETRY, GGUFValueType, ggmlTypeName, type GGUFMetadataEntry, type GGUFValue } from "./types.ts";

export interface TensorToWrite {
  name: string;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  type: number;
  /** The tensor's bytes, or a function producing them when the writer reaches this tensor. */
  data: Uint8Array | (() => Uint8Array);
}

export interface GGUFToWrite {
  metadata: Iterable<[string, GGUFMetadataEntry]>;
  tensors: TensorToWrite[];
  alignment?: number;
}

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  buf = new Uint8Array(1 << 16);
  len = 0;
  private view = new DataView(this.buf.buffer);
  private static readonly enc = new TextEncoder();

  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.len;
    this.len += n;
    return at;
  }
  u8(v: number): void { const at = this.room(1); this.view.setUint8(at, v); }
  i8(v: number): void { const at = this.room(1); this.view.setInt8(at, v); }
  u16(v: number): void { const at = this.room(2); this.view.setUint16(at, v, true); }
  i16(v: number): void { const at = this.room(2); this.view.setInt16(at, v, true); }
  u32(v: number): void { const at = this.room(4); this.view.setUint32(at, v, true); }
  i32(v: number): void { const at = this.room(4); this.view.setInt32(at, v, true); }
  f32(v: number): void { const at = this.room(4); this.view.setFloat32(at, v, true); }
  f64(v: number): void { const at = this.room(8); this.view.setFloat64(at, v, true); }
  u64(v: number | bigint): void { const at = this.room(8); this.view.setBigUint64(at, BigInt(v), true); }
  i64(v: number | bigint): void { const at = this.room(8); this.view.setBigInt64(at, BigInt(v), true); }
  string(s: string): void {
    const b = ByteWriter.enc.encode(s);
    this.u64(b.length);
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.len % alignment)) % alignment;
    this.room(n); // new bytes are zero
  }
}

function writeScalar(w: ByteWriter, type: number, v: GGUFValue, key: string): void {
  switch (type) {
    case GGUFValueType.UINT8: return w.u8(v as number);
    case GGUFValueType.INT8: return w.i8(v as number);
    case GGUFValueType.UINT16: return w.u16(v as number);
    case GGUFValueType.INT16: return w.i16(v as number);
    case GGUFValueType.UINT32: return w.u32(v as number);
    case GGUFValueType.INT32: return w.i32(v as number);
    case GGUFValueType.FLOAT32: return w.f32(v as number);
    case GGUFValueType.FLOAT64: return w.f64(v as number);
    case GGUFValueType.UINT64: return w.u64(v as bigint | number);
    case GGUFValueType.INT64: return w.i64(v as bigint | number);
    case GGUFValueType.BOOL: return w.u8(v ? 1 : 0);
    case GGUFValueType.STRING: return w.string(v as string);
    default: throw new Error(`metadata "${key}": cannot write value type ${type}`);
  }
}

function writeValue(w: ByteWriter, e: GGUFMetadataEntry, key: string): void {
  w.u32(e.type);
  if (e.type !== GGUFValueType.ARRAY) return writeScalar(w, e.type, e.value, key);
  const items = e.value as ArrayLike<GGUFValue>;
  const elemType = e.arrayType;
  if (elemType === undefined) throw new Error(`metadata "${key}": array without an element type`);
  w.u32(elemType);
  w.u64(items.length);
  for (let i = 0; i < items.length; i++) {
    if (elemType === GGUFValueType.ARRAY) {
      const inner = items[i] as ArrayLike<GGUFValue>;
      // Nested arrays carry no declared element type in memory: infer it from the reader's representation.
      const innerType = elementTypeOf(inner);
      w.u32(innerType);
      w.u64(inner.length);
      for (let j = 0; j < inner.length; j++) writeScalar(w, innerType, inner[j], key);
    } else {
      writeScalar(w, elemType, items[i], key);
    }
  }
}

function elementTypeOf(a: ArrayLike<GGUFValue>): number {
  if (a instanceof Uint8Array) return GGUFValueType.UINT8;
  if (a instanceof Int8Array) return GGUFValueType.INT8;
  if (a instanceof Uint16Array) return GGUFValueType.UINT16;
  if (a instanceof Int16Array) return GGUFValueType.INT16;
  if (a instanceof Uint32Array) return GGUFValueType.UINT32;
  if (a instanceof Int32Array) return GGUFValueType.INT32;
  if (a instanceof Float32Array) return GGUFValueType.FLOAT32;
  if (a instanceof Float64Array) return GGUFValueType.FLOAT64;
  if (a instanceof BigUint64Array) return GGUFValueType.UINT64;
  if (a instanceof BigInt64Array) return GGUFValueType.INT64;
  if (typeof a[0] === "boolean") return GGUFValueType.BOOL;
  if (typeof a[0] === "string" || a.length === 0) return GGUFValueType.STRING;
  throw new Error("nested arrays of arrays deeper than two levels cannot be written");
}

function tensorBytes(t: TensorToWrite): number {
  const geom = GGML_TYPE_GEOMETRY[t.type];
  if (!geom) throw new Error(`tensor "${t.name}": unknown ggml type ${t.type}`);
  const [, blockSize, typeSize] = geom;
  if (t.dims[0] % blockSize !== 0) throw new Error(`tensor "${t.name}": row length ${t.dims[0]} is not a multiple of the ${ggmlTypeName(t.type)} block size ${blockSize}`);
  return (t.dims.reduce((a, b) => a * b, 1) / blockSize) * typeSize;
}

/** Serializes the header (everything before the tensor data) and the data offsets. */
function header(g: GGUFToWrite): { head: Uint8Array; offsets: number[]; sizes: number[]; alignment: number } {
  const alignment = g.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const meta = [...g.metadata].filter(([k]) => k !== "general.alignment");
  if (alignment !== GGUF_DEFAULT_ALIGNMENT) meta.push(["general.alignment", { type: GGUFValueType.UINT32, value: alignment }]);
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(g.tensors.length);
  w.u64(meta.length);
  for (const [key, entry] of meta) {
    w.string(key);
    writeValue(w, entry, key);
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  let off = 0;
  for (const t of g.tensors) {
    const size = tensorBytes(t);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(off);
    offsets.push(off);
    sizes.push(size);
    off += Math.ceil(size / alignment) * alignment;
  }
  w.pad(alignment);
  return { head: w.buf.subarray(0, w.len), offsets, sizes, alignment };
}

/** Writes a GGUF v3 file. `onTensor` is called after each tensor is written (progress bars). */
export function writeGGUF(path: string, g: GGUFToWrite, onTensor?: (index: number, total: number) => void): void {
  const { head, sizes, alignment } = header(g);
  const fd = openSync(path, "w");
  try {
    writeSync(fd, head);
    const zeros = new Uint8Array(alignment);
    g.tensors.forEach((t, i) => {
      const data = typeof t.data === "function" ? t.data() : t.data;
      if (data.length !== sizes[i]) throw new Error(`tensor "${t.name}": got ${data.length} bytes, its shape and type need ${sizes[i]}`);
      writeSync(fd, data);
      const pad = (alignment - (data.length % alignment)) % alignment;
      if (pad && i < g.tensors.length - 1) writeSync(fd, zeros, 0, pad); // like llama.cpp: no padding after the last tensor
      onTensor?.(i + 1, g.tensors.length);
    });
  } finally {
    closeSync(fd);
  }
}

/** Serializes a whole GGUF into memory (small files: tests, fuzzing). */
export function serializeGGUF(g: GGUFToWrite): Uint8Array {
  const { head, offsets, sizes } = header(g);
  const total = head.length + (offsets.length ? offsets[offsets.length - 1] + sizes[sizes.length - 1] : 0);
  const out = new Uint8Array(total);
  out.set(head);
  g.tensors.forEach((t, i) => {
    const data = typeof t.data === "function" ? t.data() : t.data;
    if (data.length !== sizes[i]) throw new Error(`tensor "${t.name}": got ${data.length} bytes, its shape and type need ${sizes[i]}`);
    out.set(data, head.length + offsets[i]);
  });
  return out;
}

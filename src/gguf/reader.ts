// GGUF reader, versions 2 and 3.
// Pinned reference: llama.cpp docs/gguf.md and ggml/src/gguf.cpp (gguf_init_from_file_impl).
//
// File layout (all little-endian):
//   magic "GGUF" (u32 0x46554747) | version u32 | n_tensors u64 | n_kv u64
//   n_kv × { key: string, value_type u32, value }        string = u64 length + UTF-8 bytes (no NUL)
//                                                        array  = elem_type u32, count u64, elems
//   n_tensors × { name: string, n_dims u32, dims u64×n_dims, type u32, offset u64 }
//   padding to `general.alignment` (default 32)
//   tensor data; each tensor at data_start + offset, offsets aligned.
//
// Hostile input: every count and length is checked against the bytes left in the file before anything
// is allocated, so a forged "10^18 tensors" header fails at once with a message instead of hanging or
// allocating gigabytes.
import { BufferSource, FileSource, type ByteSource } from "./byte-source.ts";
import {
  GGML_TYPE_GEOMETRY,
  GGUFValueType,
  ggmlTypeName,
  type GGMLTypeId,
  type GGUFMetadataEntry,
  type GGUFValue,
  type GGUFValueTypeId,
  type TensorInfo,
} from "./types.ts";

export const GGUF_MAGIC = 0x46554747;
export const GGUF_DEFAULT_ALIGNMENT = 32;
const GGML_MAX_DIMS = 4;
const MAX_ARRAY_NESTING = 8;

/** A malformed or unsupported GGUF file. The message names the file and the problem. */
export class GGUFError extends Error {
  override name = "GGUFError";
}

export interface GGUFFile {
  readonly path: string;
  readonly version: number;
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  readonly fileSize: number;
  readonly metadata: Map<string, GGUFMetadataEntry>;
  /** Tensor index in file order. */
  readonly tensors: Map<string, TensorInfo>;
  /** Tensor-data bytes read so far through readTensor/readRows (header bytes not counted). */
  readonly bytesRead: number;
  getValue(key: string): GGUFValue | undefined;
  /** Reads one tensor's bytes from the source. Throws GGUFError for an unknown name. */
  readTensor(name: string): Uint8Array;
  /** Reads rows [row0, row0 + nRows) of a tensor (a row is dims[0] elements). */
  readRows(name: string, row0: number, nRows: number): Uint8Array;
  /** Reads rows [row0, row0 + nRows) of a tensor into dst[0..) (e.g. straight into kernel memory). */
  readRowsInto(name: string, row0: number, nRows: number, dst: Uint8Array): void;
  close(): void;
}

const SCALAR_SIZE: Partial<Record<number, number>> = {
  [GGUFValueType.UINT8]: 1,
  [GGUFValueType.INT8]: 1,
  [GGUFValueType.UINT16]: 2,
  [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4,
  [GGUFValueType.INT32]: 4,
  [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT64]: 8,
  [GGUFValueType.INT64]: 8,
  [GGUFValueType.FLOAT64]: 8,
};

/** Sequential little-endian cursor over a ByteSource, reading ahead in chunks. */
class Cursor {
  pos = 0;
  private chunk = new Uint8Array(0);
  private chunkStart = 0;
  private view = new DataView(this.chunk.buffer);
  private readonly src: ByteSource;
  private readonly where: string;
  private static readonly CHUNK = 1 << 20;
  private static readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(src: ByteSource, where: string) {
    this.src = src;
    this.where = where;
  }

  get remaining(): number {
    return this.src.size - this.pos;
  }

  fail(what: string): never {
    throw new GGUFError(`${this.where}: ${what} (at byte ${this.pos})`);
  }

  /** Ensures [pos, pos+n) is in the chunk; returns the index of pos inside it. */
  private need(n: number, what: string): number {
    if (n > this.remaining) this.fail(`truncated file: ${what} needs ${n} bytes but only ${this.remaining} remain`);
    const rel = this.pos - this.chunkStart;
    if (rel >= 0 && rel + n <= this.chunk.length) return rel;
    const len = Math.min(Math.max(n, Cursor.CHUNK), this.src.size - this.pos);
    this.chunk = new Uint8Array(len);
    this.src.readInto(this.pos, this.chunk, 0, len);
    this.chunkStart = this.pos;
    this.view = new DataView(this.chunk.buffer);
    return 0;
  }

  u8(what = "u8"): number {
    const i = this.need(1, what);
    this.pos += 1;
    return this.chunk[i];
  }
  u32(what = "u32"): number {
    const i = this.need(4, what);
    this.pos += 4;
    return this.view.getUint32(i, true);
  }
  /** u64 as a number; values beyond 2^53 are a format error for every field we read this way. */
  u64(what: string): number {
    const i = this.need(8, what);
    this.pos += 8;
    const v = this.view.getBigUint64(i, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is absurdly large (${v})`);
    return Number(v);
  }
  bytes(n: number, what: string): Uint8Array {
    const i = this.need(n, what);
    this.pos += n;
    return this.chunk.subarray(i, i + n);
  }
  string(what: string): string {
    const len = this.u64(`length of ${what}`);
    // Like llama.cpp, accept strings that are not valid UTF-8 (some vocabularies hold partial
    // characters); they decode with U+FFFD. A leading U+FEFF is content (a real Llama token), not a BOM.
    return Cursor.decoder.decode(this.bytes(len, what));
  }
  scalar(type: number, what: string): number | bigint | boolean {
    const size = SCALAR_SIZE[type];
    if (size === undefined) this.fail(`${what}: unknown metadata value type ${type}`);
    const i = this.need(size, what);
    this.pos += size;
    const v = this.view;
    switch (type) {
      case GGUFValueType.UINT8: return v.getUint8(i);
      case GGUFValueType.INT8: return v.getInt8(i);
      case GGUFValueType.UINT16: return v.getUint16(i, true);
      case GGUFValueType.INT16: return v.getInt16(i, true);
      case GGUFValueType.UINT32: return v.getUint32(i, true);
      case GGUFValueType.INT32: return v.getInt32(i, true);
      case GGUFValueType.FLOAT32: return v.getFloat32(i, true);
      case GGUFValueType.UINT64: return v.getBigUint64(i, true);
      case GGUFValueType.INT64: return v.getBigInt64(i, true);
      case GGUFValueType.FLOAT64: return v.getFloat64(i, true);
      default: {
        const b = v.getUint8(i);
        if (b > 1) this.fail(`${what}: bool value ${b} is neither 0 nor 1`);
        return b === 1;
      }
    }
  }
}

function typedArrayFor(type: number, count: number): Exclude<GGUFValue, number | bigint | boolean | string | string[] | boolean[] | GGUFValue[]> | undefined {
  switch (type) {
    case GGUFValueType.UINT8: return new Uint8Array(count);
    case GGUFValueType.INT8: return new Int8Array(count);
    case GGUFValueType.UINT16: return new Uint16Array(count);
    case GGUFValueType.INT16: return new Int16Array(count);
    case GGUFValueType.UINT32: return new Uint32Array(count);
    case GGUFValueType.INT32: return new Int32Array(count);
    case GGUFValueType.FLOAT32: return new Float32Array(count);
    case GGUFValueType.FLOAT64: return new Float64Array(count);
    case GGUFValueType.UINT64: return new BigUint64Array(count);
    case GGUFValueType.INT64: return new BigInt64Array(count);
    default: return undefined;
  }
}

function readValue(c: Cursor, type: number, what: string, depth: number): GGUFMetadataEntry {
  if (type === GGUFValueType.STRING) return { type, value: c.string(what) };
  if (type !== GGUFValueType.ARRAY) return { type: type as GGUFValueTypeId, value: c.scalar(type, what) };
  if (depth >= MAX_ARRAY_NESTING) c.fail(`${what}: arrays nested deeper than ${MAX_ARRAY_NESTING}`);
  const elemType = c.u32(`element type of ${what}`);
  const count = c.u64(`element count of ${what}`);
  // Every element occupies at least one byte (strings and arrays at least 8): bound the count by the file.
  const minSize = SCALAR_SIZE[elemType] ?? (elemType === GGUFValueType.STRING || elemType === GGUFValueType.ARRAY ? 8 : 0);
  if (minSize === 0) c.fail(`${what}: unknown array element type ${elemType}`);
  if (count * minSize > c.remaining) c.fail(`${what}: ${count} elements cannot fit in the ${c.remaining} bytes left`);
  const typed = typedArrayFor(elemType, count);
  if (typed) {
    for (let i = 0; i < count; i++) (typed as unknown as Array<number | bigint>)[i] = c.scalar(elemType, what) as number | bigint;
    return { type: GGUFValueType.ARRAY, arrayType: elemType as GGUFValueTypeId, value: typed };
  }
  const out: GGUFValue[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (elemType === GGUFValueType.STRING) out[i] = c.string(`${what}[${i}]`);
    else if (elemType === GGUFValueType.BOOL) out[i] = c.scalar(elemType, what) as boolean;
    else out[i] = readValue(c, GGUFValueType.ARRAY, `${what}[${i}]`, depth + 1).value;
  }
  return { type: GGUFValueType.ARRAY, arrayType: elemType as GGUFValueTypeId, value: out as GGUFValue };
}

function parse(src: ByteSource, where: string): Omit<GGUFFile, "bytesRead" | "readTensor" | "readRows" | "readRowsInto" | "close" | "getValue" | "path"> {
  const c = new Cursor(src, where);
  if (src.size < 4) c.fail("not a GGUF file: too short for the magic number");
  const magic = c.u32("magic");
  if (magic !== GGUF_MAGIC) {
    c.pos = 0;
    c.fail(`not a GGUF file: bad magic 0x${magic.toString(16).padStart(8, "0")} (expected "GGUF")`);
  }
  const version = c.u32("version");
  if (version === 1) c.fail("GGUF version 1 is not supported (re-convert the model with a current llama.cpp)");
  if (version !== 2 && version !== 3) c.fail(`unsupported GGUF version ${version} (supported: 2, 3)`);
  const nTensors = c.u64("tensor count");
  const nKv = c.u64("metadata count");
  // A tensor info takes at least 8 (name len) + 4 + 4 + 8 bytes; a kv at least 8 + 4 + 1.
  if (nTensors * 24 > c.remaining) c.fail(`tensor count ${nTensors} cannot fit in a ${src.size}-byte file`);
  if (nKv * 13 > c.remaining) c.fail(`metadata count ${nKv} cannot fit in a ${src.size}-byte file`);

  const metadata = new Map<string, GGUFMetadataEntry>();
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`metadata key #${i}`);
    if (metadata.has(key)) c.fail(`duplicate metadata key "${key}"`);
    const type = c.u32(`type of metadata "${key}"`);
    metadata.set(key, readValue(c, type, `metadata "${key}"`, 0));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignEntry = metadata.get("general.alignment");
  if (alignEntry) {
    const a = alignEntry.value;
    if (alignEntry.type !== GGUFValueType.UINT32 || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0) {
      return c.fail(`general.alignment must be a non-zero power of two u32, got ${String(a)}`);
    }
    alignment = a;
  }

  const raw: Array<{ name: string; dims: number[]; type: number; offset: number }> = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(`name of tensor #${i}`);
    if (names.has(name)) c.fail(`duplicate tensor name "${name}"`);
    names.add(name);
    const nDims = c.u32(`dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > GGML_MAX_DIMS) c.fail(`tensor "${name}" has ${nDims} dimensions (1..${GGML_MAX_DIMS} allowed)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`dimension ${d} of tensor "${name}"`));
    const type = c.u32(`type of tensor "${name}"`);
    const offset = c.u64(`offset of tensor "${name}"`);
    raw.push({ name, dims, type, offset });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;

  const tensors = new Map<string, TensorInfo>();
  for (const t of raw) {
    const geom = GGML_TYPE_GEOMETRY[t.type];
    if (!geom) throw new GGUFError(`${where}: tensor "${t.name}" has unknown ggml type ${t.type}`);
    const [, blockSize, typeSize] = geom;
    let nElements = 1;
    for (const d of t.dims) {
      nElements *= d;
      if (!Number.isSafeInteger(nElements)) throw new GGUFError(`${where}: tensor "${t.name}" dimensions ${t.dims.join("×")} overflow`);
    }
    if (t.dims[0] % blockSize !== 0) {
      throw new GGUFError(`${where}: tensor "${t.name}" row length ${t.dims[0]} is not a multiple of the ${ggmlTypeName(t.type)} block size ${blockSize}`);
    }
    const nBytes = (nElements / blockSize) * typeSize;
    if (t.offset % alignment !== 0) throw new GGUFError(`${where}: tensor "${t.name}" offset ${t.offset} is not aligned to ${alignment}`);
    const fileOffset = dataOffset + t.offset;
    if (fileOffset + nBytes > src.size) {
      throw new GGUFError(`${where}: tensor "${t.name}" (${nBytes} bytes at offset ${fileOffset}) extends past the end of the file (${src.size} bytes); the file is truncated or corrupt`);
    }
    tensors.set(t.name, { name: t.name, dims: t.dims, type: t.type as GGMLTypeId, fileOffset, nElements, nBytes });
  }
  return { version, alignment, dataOffset, fileSize: src.size, metadata, tensors };
}

class GGUFFileImpl implements GGUFFile {
  readonly path: string;
  readonly version: number;
  readonly alignment: number;
  readonly dataOffset: number;
  readonly fileSize: number;
  readonly metadata: Map<string, GGUFMetadataEntry>;
  readonly tensors: Map<string, TensorInfo>;
  bytesRead = 0;
  private readonly src: ByteSource;

  constructor(src: ByteSource, path: string) {
    this.src = src;
    this.path = path;
    const p = parse(src, path);
    this.version = p.version;
    this.alignment = p.alignment;
    this.dataOffset = p.dataOffset;
    this.fileSize = p.fileSize;
    this.metadata = p.metadata;
    this.tensors = p.tensors;
  }

  getValue(key: string): GGUFValue | undefined {
    return this.metadata.get(key)?.value;
  }

  private info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new GGUFError(`${this.path}: no tensor named "${name}"`);
    return t;
  }

  readTensor(name: string): Uint8Array {
    const t = this.info(name);
    const out = new Uint8Array(t.nBytes);
    this.src.readInto(t.fileOffset, out, 0, t.nBytes);
    this.bytesRead += t.nBytes;
    return out;
  }

  readRows(name: string, row0: number, nRows: number): Uint8Array {
    const t = this.info(name);
    const out = new Uint8Array((t.nBytes / (t.nElements / t.dims[0])) * nRows);
    this.readRowsInto(name, row0, nRows, out);
    return out;
  }

  readRowsInto(name: string, row0: number, nRows: number, dst: Uint8Array): void {
    const t = this.info(name);
    const rows = t.nElements / t.dims[0];
    if (!Number.isInteger(row0) || !Number.isInteger(nRows) || row0 < 0 || nRows < 0 || row0 + nRows > rows) {
      throw new GGUFError(`${this.path}: rows [${row0}, ${row0 + nRows}) out of range for tensor "${name}" with ${rows} rows`);
    }
    const rowBytes = t.nBytes / rows;
    const n = rowBytes * nRows;
    if (dst.length < n) throw new RangeError(`${this.path}: ${n} bytes of tensor "${name}" do not fit in a ${dst.length}-byte buffer`);
    this.src.readInto(t.fileOffset + row0 * rowBytes, dst, 0, n);
    this.bytesRead += n;
  }

  close(): void {
    this.src.close();
  }
}

/** Opens a GGUF file and parses its header and tensor index; tensor data is read on demand. */
export function openGGUF(path: string): GGUFFile {
  let src: FileSource;
  try {
    src = new FileSource(path);
  } catch (e) {
    throw new GGUFError(`${path}: cannot open: ${(e as Error).message}`);
  }
  try {
    return new GGUFFileImpl(src, path);
  } catch (e) {
    src.close();
    if (e instanceof GGUFError) throw e;
    throw new GGUFError(`${path}: ${(e as Error).message}`);
  }
}

/** Parses GGUF bytes already in memory (`name` is used in error messages). */
export function parseGGUF(bytes: Uint8Array, name = "<buffer>"): GGUFFile {
  try {
    return new GGUFFileImpl(new BufferSource(bytes), name);
  } catch (e) {
    if (e instanceof GGUFError) throw e;
    throw new GGUFError(`${name}: ${(e as Error).message}`);
  }
}

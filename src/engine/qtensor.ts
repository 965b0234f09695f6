// QTensor: a weight matrix kept in its on-disk (possibly quantized) form, and row decoding.
//
// A GGUF matrix with dims [nCols, nRows] is stored row after row; row r holds nCols elements
// encoded in whole blocks of its type, rowBytes bytes per row. Matmuls decode a few rows at a time
// into a small Float32Array scratch (or, for F32 data, read the bytes directly through a view), so a
// quantized model never exists in f32 in memory.
import { dequantizeRow, rowBytes as typeRowBytes } from "../gguf/formats/index.ts";
import { GGMLType, ggmlTypeName, type GGMLTypeId } from "../gguf/types.ts";
import { decodePackedRow, type KTensor } from "../kernels/index.ts";

export interface QTensor {
  name: string;
  type: GGMLTypeId;
  /** Elements per row (ggml dims[0]). */
  nCols: number;
  /** Number of rows (product of the other dims). */
  nRows: number;
  /** Bytes per encoded row. */
  rowBytes: number;
  /** (nRows, rowBytes) encoded data. */
  data: Uint8Array;
  /** (nRows, nCols) the same bytes viewed as f32 when type is F32 (no copy). */
  f32?: Float32Array;
  /** The tensor packed into kernel memory (WASM path); data is then empty. */
  k?: KTensor;
}

/** A tensor that lives in kernel memory only (packed straight from the file); data is empty. */
export function packedQTensor(name: string, type: GGMLTypeId, dims: readonly number[], k: KTensor): QTensor {
  const nCols = dims[0];
  const nRows = dims.slice(1).reduce((a, b) => a * b, 1);
  return { name, type, nCols, nRows, rowBytes: typeRowBytes(type, nCols), data: new Uint8Array(0), k };
}

/** Wraps encoded tensor bytes; F32 data is aligned (copied if needed) so that it can be viewed as floats. */
export function makeQTensor(name: string, type: GGMLTypeId, dims: readonly number[], data: Uint8Array): QTensor {
  const nCols = dims[0];
  const nRows = dims.slice(1).reduce((a, b) => a * b, 1);
  const rowBytes = typeRowBytes(type, nCols);
  if (data.length !== rowBytes * nRows) {
    throw new Error(`tensor "${name}": expected ${rowBytes * nRows} bytes of ${ggmlTypeName(type)}, got ${data.length}`);
  }
  const t: QTensor = { name, type, nCols, nRows, rowBytes, data };
  if (type === GGMLType.F32) {
    if (data.byteOffset % 4 !== 0) t.data = data.slice();
    t.f32 = new Float32Array(t.data.buffer, t.data.byteOffset, nCols * nRows);
  }
  return t;
}

/**
 * Decodes rows [row0, row0 + nRows) into dst (nRows, nCols) and returns the array holding them, with
 * the offset of row0 inside it. F32 tensors return their own view (no copy); other types decode into dst.
 */
export function decodeRows(t: QTensor, row0: number, nRows: number, dst: Float32Array): { buf: Float32Array; offset: number } {
  if (t.f32) return { buf: t.f32, offset: row0 * t.nCols };
  const src = t.data.subarray(row0 * t.rowBytes, (row0 + nRows) * t.rowBytes);
  dequantizeRow(t.type, src, dst, nRows * t.nCols);
  return { buf: dst, offset: 0 };
}

/** Decodes one row into dst[0..nCols). */
export function decodeRow(t: QTensor, row: number, dst: Float32Array): void {
  if (t.k) {
    decodePackedRow(t.k, row, dst);
    return;
  }
  if (t.f32) {
    dst.set(t.f32.subarray(row * t.nCols, (row + 1) * t.nCols));
    return;
  }
  dequantizeRow(t.type, t.data.subarray(row * t.rowBytes, (row + 1) * t.rowBytes), dst, t.nCols);
}

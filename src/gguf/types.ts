// GGUF / GGML type identifiers and the shapes the reader hands out.
// Pinned reference: ggml/include/ggml.h (enum ggml_type) and docs/gguf.md of llama.cpp (GGUF v3).

/** ggml tensor element types we know by number. Numbers are pinned by the GGUF format. */
export const GGMLType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  BF16: 30,
} as const;
export type GGMLTypeName = keyof typeof GGMLType;
export type GGMLTypeId = (typeof GGMLType)[GGMLTypeName];

/** GGUF metadata value types (gguf.md: enum gguf_metadata_value_type). */
export const GGUFValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GGUFValueTypeId = (typeof GGUFValueType)[keyof typeof GGUFValueType];

/**
 * A metadata value as the reader returns it.
 * - integer types up to 32 bits, FLOAT32, FLOAT64 → number; UINT64/INT64 → bigint
 * - numeric arrays → the matching typed array (Float32Array for FLOAT32, Int32Array for INT32, …;
 *   BigInt64Array/BigUint64Array for 64-bit ints) so that 150k-entry vocab arrays stay compact
 * - string arrays → string[]; BOOL arrays → boolean[]; arrays of arrays → GGUFValue[]
 */
export type GGUFValue =
  | number
  | bigint
  | boolean
  | string
  | string[]
  | boolean[]
  | GGUFValue[]
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** A metadata entry with its declared type, enough to write it back unchanged. */
export interface GGUFMetadataEntry {
  type: GGUFValueTypeId;
  /** For ARRAY: the element type (for nested arrays, ARRAY again; see `value`). */
  arrayType?: GGUFValueTypeId;
  value: GGUFValue;
}

/** One entry of the tensor index. */
export interface TensorInfo {
  name: string;
  /** ggml order: dims[0] is the fastest-varying (row length), dims[1] the number of rows, … */
  dims: number[];
  type: GGMLTypeId;
  /** Absolute byte offset of the tensor's data in the file. */
  fileOffset: number;
  /** Number of elements (product of dims). */
  nElements: number;
  /** Bytes of data in the file (rows × row bytes for the type). */
  nBytes: number;
}

/**
 * Block geometry of every ggml type a GGUF file may declare, so that the reader can size and bound-check
 * tensors it cannot decode (an IQ2_XS file can still be inspected). [name, elements per block, bytes per block].
 * Pinned reference: ggml/src/ggml.c `type_traits` and ggml-common.h block structs.
 */
export const GGML_TYPE_GEOMETRY: Readonly<Record<number, readonly [string, number, number]>> = {
  0: ["F32", 1, 4],
  1: ["F16", 1, 2],
  2: ["Q4_0", 32, 18],
  3: ["Q4_1", 32, 20],
  6: ["Q5_0", 32, 22],
  7: ["Q5_1", 32, 24],
  8: ["Q8_0", 32, 34],
  9: ["Q8_1", 32, 36],
  10: ["Q2_K", 256, 84],
  11: ["Q3_K", 256, 110],
  12: ["Q4_K", 256, 144],
  13: ["Q5_K", 256, 176],
  14: ["Q6_K", 256, 210],
  15: ["Q8_K", 256, 292],
  16: ["IQ2_XXS", 256, 66],
  17: ["IQ2_XS", 256, 74],
  18: ["IQ3_XXS", 256, 98],
  19: ["IQ1_S", 256, 50],
  20: ["IQ4_NL", 32, 18],
  21: ["IQ3_S", 256, 110],
  22: ["IQ2_S", 256, 82],
  23: ["IQ4_XS", 256, 136],
  24: ["I8", 1, 1],
  25: ["I16", 1, 2],
  26: ["I32", 1, 4],
  27: ["I64", 1, 8],
  28: ["F64", 1, 8],
  29: ["IQ1_M", 256, 56],
  30: ["BF16", 1, 2],
  34: ["TQ1_0", 256, 54],
  35: ["TQ2_0", 256, 66],
  39: ["MXFP4", 32, 17],
};

/** Name of a ggml type id, or `type N` when unknown. */
export function ggmlTypeName(type: number): string {
  return GGML_TYPE_GEOMETRY[type]?.[0] ?? `type ${type}`;
}

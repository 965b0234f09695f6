// Public API of the tensor formats: sizes, dequantization and quantization of GGUF tensor data.
//
// Supported for both directions (bit-exact with llama.cpp's dequantize_row_* and
// quantize_row_*_ref / ggml_fp32_to_fp16_row / ggml_fp32_to_bf16_row_ref):
//   F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
// quantizeRowFast: the same, except that Q4_K / Q5_K / Q6_K use a much faster approximate scale
// search (fast-k.ts): valid blocks, slightly higher error, not bit-exact with llama.cpp.
// Every other type named in ../types.ts has known geometry (typeTraits/rowBytes work) but
// (de)quantizing it throws. Unknown type numbers throw everywhere.
//
// Conventions: `src`/`dst` byte arrays start at a block boundary and may be subarrays with any
// byteOffset (bytes are read one by one, never through unaligned views). `n` is the element count
// and must be a multiple of the type's block size. The host is assumed little-endian (as GGUF).

import { GGMLType } from "../types.ts";
import {
  dequantizeRowBF16, dequantizeRowF16, dequantizeRowF32,
  quantizeRowBF16, quantizeRowF16, quantizeRowF32,
} from "./float.ts";
import { dequantizeRowQ4_0, quantizeRowQ4_0 } from "./q4_0.ts";
import { dequantizeRowQ4_1, quantizeRowQ4_1 } from "./q4_1.ts";
import { dequantizeRowQ5_0, quantizeRowQ5_0 } from "./q5_0.ts";
import { dequantizeRowQ5_1, quantizeRowQ5_1 } from "./q5_1.ts";
import { dequantizeRowQ8_0, quantizeRowQ8_0 } from "./q8_0.ts";
import { dequantizeRowQ4_K, quantizeRowQ4_K } from "./q4_k.ts";
import { dequantizeRowQ5_K, quantizeRowQ5_K } from "./q5_k.ts";
import { dequantizeRowQ6_K, quantizeRowQ6_K } from "./q6_k.ts";
import { quantizeRowQ4_KFast, quantizeRowQ5_KFast, quantizeRowQ6_KFast } from "./fast-k.ts";
import { TYPE_TRAITS, describeType, type TypeTraits } from "./traits.ts";

export { TYPE_TRAITS, describeType, type TypeTraits } from "./traits.ts";
export {
  FP16_TO_F32, bf16ToFp32, fp32ToBf16, fp32ToFp16, readF16, writeF16,
} from "./float.ts";

type DequantFn = (src: Uint8Array, dst: Float32Array, n: number) => void;
type QuantFn = (src: Float32Array, dst: Uint8Array, n: number) => void;

const CODECS = new Map<number, { dequant: DequantFn; quant: QuantFn }>([
  [GGMLType.F32, { dequant: dequantizeRowF32, quant: quantizeRowF32 }],
  [GGMLType.F16, { dequant: dequantizeRowF16, quant: quantizeRowF16 }],
  [GGMLType.BF16, { dequant: dequantizeRowBF16, quant: quantizeRowBF16 }],
  [GGMLType.Q8_0, { dequant: dequantizeRowQ8_0, quant: quantizeRowQ8_0 }],
  [GGMLType.Q4_0, { dequant: dequantizeRowQ4_0, quant: quantizeRowQ4_0 }],
  [GGMLType.Q4_1, { dequant: dequantizeRowQ4_1, quant: quantizeRowQ4_1 }],
  [GGMLType.Q5_0, { dequant: dequantizeRowQ5_0, quant: quantizeRowQ5_0 }],
  [GGMLType.Q5_1, { dequant: dequantizeRowQ5_1, quant: quantizeRowQ5_1 }],
  [GGMLType.Q4_K, { dequant: dequantizeRowQ4_K, quant: quantizeRowQ4_K }],
  [GGMLType.Q5_K, { dequant: dequantizeRowQ5_K, quant: quantizeRowQ5_K }],
  [GGMLType.Q6_K, { dequant: dequantizeRowQ6_K, quant: quantizeRowQ6_K }],
]);

/** Block geometry of a type; throws for a type number not in GGMLType. */
export function typeTraits(type: number): TypeTraits {
  const t = TYPE_TRAITS.get(type);
  if (!t) throw new Error(`unknown or unsupported ggml tensor type ${describeType(type)}`);
  return t;
}

/** True when dequantizeRow/quantizeRow handle this type. */
export function isSupportedType(type: number): boolean {
  return CODECS.has(type);
}

/** Bytes taken by nElements elements of the type; throws unless nElements is a whole number of blocks. */
export function rowBytes(type: number, nElements: number): number {
  const t = typeTraits(type);
  if (!Number.isSafeInteger(nElements) || nElements < 0 || nElements % t.blockSize !== 0) {
    throw new Error(
      `${describeType(type)}: element count ${nElements} is not a non-negative multiple of the block size ${t.blockSize}`,
    );
  }
  return (nElements / t.blockSize) * t.typeSize;
}

function codec(type: number, what: string): { dequant: DequantFn; quant: QuantFn } {
  const c = CODECS.get(type);
  if (!c) {
    typeTraits(type); // unknown numbers get the "unknown" message
    throw new Error(`cannot ${what} ggml tensor type ${describeType(type)}: not supported`);
  }
  return c;
}

/** Decode n elements from src (which must hold rowBytes(type, n) bytes) into dst[0..n). */
export function dequantizeRow(type: number, src: Uint8Array, dst: Float32Array, n: number): void {
  const c = codec(type, "dequantize");
  const bytes = rowBytes(type, n);
  if (src.length < bytes) throw new Error(`dequantize ${describeType(type)}: need ${bytes} source bytes for ${n} elements, got ${src.length}`);
  if (dst.length < n) throw new Error(`dequantize ${describeType(type)}: destination holds ${dst.length} < ${n} elements`);
  c.dequant(src, dst, n);
}

/** Encode src[0..n) into dst (which must hold rowBytes(type, n) bytes). */
export function quantizeRow(type: number, src: Float32Array, dst: Uint8Array, n: number): void {
  const c = codec(type, "quantize");
  const bytes = rowBytes(type, n);
  if (src.length < n) throw new Error(`quantize ${describeType(type)}: source holds ${src.length} < ${n} elements`);
  if (dst.length < bytes) throw new Error(`quantize ${describeType(type)}: need ${bytes} destination bytes for ${n} elements, got ${dst.length}`);
  c.quant(src, dst, n);
}

/** Approximate K-quant quantizers (see fast-k.ts); other types use the exact (already fast) ones. */
const FAST_QUANT = new Map<number, QuantFn>([
  [GGMLType.Q4_K, quantizeRowQ4_KFast],
  [GGMLType.Q5_K, quantizeRowQ5_KFast],
  [GGMLType.Q6_K, quantizeRowQ6_KFast],
]);

/**
 * Like quantizeRow, but for Q4_K / Q5_K / Q6_K uses a fast approximate scale search (~10x+
 * faster, slightly higher error; NOT bit-exact with llama.cpp's quantizer, but valid blocks of the
 * same format). Every other type is encoded exactly as quantizeRow does.
 */
export function quantizeRowFast(type: number, src: Float32Array, dst: Uint8Array, n: number): void {
  const fast = FAST_QUANT.get(type);
  if (!fast) {
    quantizeRow(type, src, dst, n);
    return;
  }
  const bytes = rowBytes(type, n);
  if (src.length < n) throw new Error(`quantize ${describeType(type)}: source holds ${src.length} < ${n} elements`);
  if (dst.length < bytes) throw new Error(`quantize ${describeType(type)}: need ${bytes} destination bytes for ${n} elements, got ${dst.length}`);
  fast(src, dst, n);
}

/** Convenience: decode n elements into a new Float32Array. */
export function dequantize(type: number, src: Uint8Array, n: number): Float32Array {
  const dst = new Float32Array(n);
  dequantizeRow(type, src, dst, n);
  return dst;
}

/** Convenience: encode all of src into a new byte array. */
export function quantize(type: number, src: Float32Array): Uint8Array {
  const dst = new Uint8Array(rowBytes(type, src.length));
  quantizeRow(type, src, dst, src.length);
  return dst;
}

// Block geometry of every ggml tensor type (elements per block, bytes per block), enough to size any
// tensor whether or not we can (de)quantize it. The table itself lives in ../types.ts
// (GGML_TYPE_GEOMETRY) so the reader can bound-check files without importing the codecs.
//
// Reference (pinned): llama.cpp ggml/src/ggml.c type_traits[] (.blck_size, .type_size) and
// ggml/src/ggml-common.h block_* structs (QK_K = 256).

import { GGML_TYPE_GEOMETRY } from "../types.ts";

export interface TypeTraits {
  name: string;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** Traits of every type with known geometry, keyed by type number. */
export const TYPE_TRAITS: ReadonlyMap<number, Readonly<TypeTraits>> = new Map(
  Object.entries(GGML_TYPE_GEOMETRY).map(([id, [name, blockSize, typeSize]]) => [Number(id), Object.freeze({ name, blockSize, typeSize })] as const),
);

/** ggml type numbers we know by name but have no geometry for (for error messages only). */
const OTHER_GGML_NAMES: Record<number, string> = {
  4: "Q4_2 (removed)", 5: "Q4_3 (removed)", 31: "Q4_0_4_4 (removed)", 32: "Q4_0_4_8 (removed)",
  33: "Q4_0_8_8 (removed)", 36: "IQ4_NL_4_4 (removed)", 37: "IQ4_NL_4_8 (removed)", 38: "IQ4_NL_8_8 (removed)",
  40: "NVFP4", 41: "Q1_0", 42: "Q2_0",
};

/** Human-readable name of a type number, e.g. "Q4_K (12)" or "IQ2_XXS (16)" or "unknown (99)". */
export function describeType(type: number): string {
  const t = TYPE_TRAITS.get(type);
  const name = t ? t.name : OTHER_GGML_NAMES[type] ?? "unknown";
  return `${name} (${type})`;
}

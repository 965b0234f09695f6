// Block geometry of every ggml tensor type named in ../types.ts (elements per block, bytes per
// block), enough to size any tensor, whether or not we can (de)quantize it.
//
// Reference (pinned): llama.cpp ggml/src/ggml.c type_traits[] (.blck_size, .type_size) and
// ggml/src/ggml-common.h block_* structs (QK_K = 256).

import { GGMLType, type GGMLTypeName } from "../types.ts";

export interface TypeTraits {
  name: GGMLTypeName;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const GEOMETRY: Record<GGMLTypeName, [blockSize: number, typeSize: number]> = {
  F32: [1, 4],
  F16: [1, 2],
  Q4_0: [32, 18],
  Q4_1: [32, 20],
  Q5_0: [32, 22],
  Q5_1: [32, 24],
  Q8_0: [32, 34],
  Q8_1: [32, 36],
  Q2_K: [256, 84],
  Q3_K: [256, 110],
  Q4_K: [256, 144],
  Q5_K: [256, 176],
  Q6_K: [256, 210],
  Q8_K: [256, 292],
  I8: [1, 1],
  I16: [1, 2],
  I32: [1, 4],
  I64: [1, 8],
  F64: [1, 8],
  BF16: [1, 2],
};

/** Traits of every type named in GGMLType, keyed by type number. */
export const TYPE_TRAITS: ReadonlyMap<number, Readonly<TypeTraits>> = new Map(
  (Object.keys(GEOMETRY) as GGMLTypeName[]).map((name) => {
    const [blockSize, typeSize] = GEOMETRY[name];
    return [GGMLType[name], Object.freeze({ name, blockSize, typeSize })] as const;
  }),
);

/** ggml type numbers we know by name but have no geometry for (for error messages only). */
const OTHER_GGML_NAMES: Record<number, string> = {
  4: "Q4_2 (removed)", 5: "Q4_3 (removed)", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
  20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 29: "IQ1_M", 31: "Q4_0_4_4 (removed)",
  32: "Q4_0_4_8 (removed)", 33: "Q4_0_8_8 (removed)", 34: "TQ1_0", 35: "TQ2_0",
  36: "IQ4_NL_4_4 (removed)", 37: "IQ4_NL_4_8 (removed)", 38: "IQ4_NL_8_8 (removed)",
  39: "MXFP4", 40: "NVFP4", 41: "Q1_0", 42: "Q2_0",
};

/** Human-readable name of a type number, e.g. "Q4_K (12)" or "IQ2_XXS (16)" or "unknown (99)". */
export function describeType(type: number): string {
  const t = TYPE_TRAITS.get(type);
  const name = t ? t.name : OTHER_GGML_NAMES[type] ?? "unknown";
  return `${name} (${type})`;
}

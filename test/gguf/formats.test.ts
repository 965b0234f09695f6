// Tensor formats vs llama.cpp itself: every (de)quantizer is compared bit for bit with the
// functions of the libggml-base.so shipped by node-llama-cpp (see test/helpers/ggml-ref.ts).
// All data comes from a seeded PRNG so that failures are reproducible.

import { test } from "node:test";
import assert from "node:assert/strict";
import { GGMLType } from "../../src/gguf/types.ts";
import {
  TYPE_TRAITS, dequantize, dequantizeRow, fp32ToFp16, isSupportedType, quantize, quantizeRow,
  rowBytes, typeTraits,
} from "../../src/gguf/formats/index.ts";
import { ggmlDequantize, ggmlQuantize, refGeometry } from "../helpers/ggml-ref.ts";
import { mulberry32, gaussian } from "../helpers/random.ts";

const QUANT_TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"] as const;
type QuantName = (typeof QUANT_TYPES)[number];

/** Byte offsets of the fp16 fields inside one block (scales, mins). */
const FP16_FIELDS: Record<QuantName, number[]> = {
  Q8_0: [0], Q4_0: [0], Q5_0: [0], Q4_1: [0, 2], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208],
};



/** Element-wise identity: same bits, or both NaN (NaN payloads of computed results are not pinned). */
function assertSameFloats(actual: Float32Array, expected: Float32Array, what: string, nanPayloads = false): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === e[i]) continue;
    if (!nanPayloads && Number.isNaN(actual[i]) && Number.isNaN(expected[i])) continue;
    assert.fail(
      `${what}: first mismatch at element ${i}: ours ${actual[i]} (0x${a[i].toString(16)}) ` +
        `llama.cpp ${expected[i]} (0x${e[i].toString(16)})`,
    );
  }
}

function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string, blockBytes: number): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(
        `${what}: first mismatch at byte ${i} (block ${Math.floor(i / blockBytes)}, offset ${i % blockBytes}): ` +
          `ours ${actual[i]} llama.cpp ${expected[i]}`,
      );
    }
  }
}

test("typeTraits / rowBytes / isSupportedType", () => {
  assert.deepEqual(typeTraits(GGMLType.Q4_K), { name: "Q4_K", blockSize: 256, typeSize: 144 });
  assert.deepEqual(typeTraits(GGMLType.Q8_0), { name: "Q8_0", blockSize: 32, typeSize: 34 });
  assert.deepEqual(typeTraits(GGMLType.BF16), { name: "BF16", blockSize: 1, typeSize: 2 });
  assert.equal(rowBytes(GGMLType.Q4_K, 512), 288);
  assert.equal(rowBytes(GGMLType.Q6_K, 4096), 16 * 210);
  assert.equal(rowBytes(GGMLType.F32, 3), 12);
  assert.equal(rowBytes(GGMLType.I8, 5), 5);
  assert.equal(rowBytes(GGMLType.I16, 5), 10);
  assert.equal(rowBytes(GGMLType.I32, 5), 20);
  assert.equal(rowBytes(GGMLType.F64, 5), 40);
  assert.equal(rowBytes(GGMLType.Q2_K, 256), 84); // known geometry, no codec
  for (const name of Object.keys(GGMLType) as (keyof typeof GGMLType)[]) {
    assert.equal(TYPE_TRAITS.get(GGMLType[name])?.name, name);
  }
  for (const name of QUANT_TYPES) {
    const g = refGeometry(name);
    assert.deepEqual(typeTraits(GGMLType[name]), { name, blockSize: g.block, typeSize: g.bytes });
    assert.equal(isSupportedType(GGMLType[name]), true);
  }
  for (const t of [GGMLType.F32, GGMLType.F16, GGMLType.BF16]) assert.equal(isSupportedType(t), true);
  for (const t of [GGMLType.Q2_K, GGMLType.Q8_K, GGMLType.I32, 16, 99, -1]) assert.equal(isSupportedType(t), false);

  assert.throws(() => typeTraits(99), /unknown.*\(99\)/);
  assert.deepEqual(typeTraits(16), { name: "IQ2_XXS", blockSize: 256, typeSize: 66 }); // known geometry, no codec
  assert.throws(() => typeTraits(40), /NVFP4 \(40\)/);
  assert.throws(() => typeTraits(4), /\(4\)/);
  assert.throws(() => rowBytes(99, 32), /\(99\)/);
  assert.throws(() => rowBytes(GGMLType.Q4_0, 33), /Q4_0 \(2\).*33.*32/);
  assert.throws(() => rowBytes(GGMLType.Q4_K, 128), /256/);
  assert.throws(() => rowBytes(GGMLType.F32, -4), /-4/);
  assert.throws(() => rowBytes(GGMLType.F32, 1.5), /1\.5/);
  assert.throws(() => dequantize(GGMLType.Q2_K, new Uint8Array(84), 256), /Q2_K \(10\).*not supported/);
  assert.throws(() => quantize(GGMLType.Q8_K, new Float32Array(256)), /Q8_K \(15\).*not supported/);
  assert.throws(() => dequantize(77, new Uint8Array(84), 256), /unknown.*\(77\)/);
  assert.throws(() => dequantize(GGMLType.Q4_0, new Uint8Array(17), 32), /18/);
  assert.throws(() => dequantizeRow(GGMLType.Q4_0, new Uint8Array(18), new Float32Array(16), 32), /destination/);
  assert.throws(() => quantizeRow(GGMLType.Q4_0, new Float32Array(32), new Uint8Array(10), 32), /18/);
});

test("F16: all 65536 bit patterns decode like ggml_fp16_to_fp32_row (NaN payloads included)", () => {
  const all = new Uint8Array(65536 * 2);
  for (let h = 0; h < 65536; h++) {
    all[2 * h] = h & 0xff;
    all[2 * h + 1] = h >> 8;
  }
  assertSameFloats(dequantize(GGMLType.F16, all, 65536), ggmlDequantize("F16", all, 65536), "F16 decode", true);
  // unaligned source
  const shifted = new Uint8Array(all.length + 1);
  shifted.set(all, 1);
  assertSameFloats(dequantize(GGMLType.F16, shifted.subarray(1), 65536), ggmlDequantize("F16", all, 65536), "F16 unaligned", true);
});

test("BF16: all 65536 bit patterns decode like ggml_bf16_to_fp32_row", () => {
  const all = new Uint8Array(65536 * 2);
  for (let h = 0; h < 65536; h++) {
    all[2 * h] = h & 0xff;
    all[2 * h + 1] = h >> 8;
  }
  assertSameFloats(dequantize(GGMLType.BF16, all, 65536), ggmlDequantize("BF16", all, 65536), "BF16 decode", true);
});

/** Floats that stress fp32 -> fp16/bf16 rounding: edges, ties, subnormals, NaNs, random bits. */
function conversionInputs(): Float32Array {
  const bits: number[] = [
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, // ±0, ±inf
    0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0x7fffffff, 0xffffffff, 0x7fc12345, // NaNs
    0x7f7fffff, 0xff7fffff, 0x00000001, 0x80000001, 0x007fffff, 0x00800000, // fp32 extremes/subnormals
  ];
  const values: number[] = [
    65504, -65504, 65519, 65519.99, 65520, -65520, 65536, 1e5, 1e-5, 6.1035156e-5, 6.097555e-5,
    2 ** -24, 2 ** -25, -(2 ** -25), 2 ** -25 * 1.0000001, 2 ** -26, 3 * 2 ** -25, 3 * 2 ** -26, 5 * 2 ** -26,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 1 - 2 ** -12, 2048 + 1, 2048 + 3,
    1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 0.1, -0.1, 1 / 3, Math.PI, -Math.E,
  ];
  const rand = mulberry32(1234);
  const out = new Float32Array(bits.length + values.length + 200_000);
  const ob = new Uint32Array(out.buffer);
  let k = 0;
  for (const b of bits) ob[k++] = b >>> 0;
  for (const v of values) out[k++] = v;
  while (k < out.length) {
    const r = rand();
    if (r < 0.3) {
      ob[k++] = (rand() * 4294967296) >>> 0; // any bit pattern
    } else if (r < 0.6) {
      // exponents around the fp16 range, random mantissa
      const e = 127 - 30 + Math.floor(rand() * 48);
      ob[k++] = ((rand() < 0.5 ? 0x80000000 : 0) | (e << 23) | ((rand() * 0x800000) >>> 0)) >>> 0;
    } else {
      // exact ties for fp16 (low 13 bits = 0x1000) and for bf16 (low 16 bits = 0x8000)
      const e = 127 - 26 + Math.floor(rand() * 44);
      const m = (rand() * 0x800000) >>> 0;
      const low = rand() < 0.5 ? (m & ~0x1fff) | 0x1000 : (m & ~0xffff) | 0x8000;
      ob[k++] = ((rand() < 0.5 ? 0x80000000 : 0) | (e << 23) | low) >>> 0;
    }
  }
  return out;
}

test("F16/BF16: fp32 -> fp16/bf16 matches ggml_fp32_to_fp16_row / ggml_fp32_to_bf16_row_ref", () => {
  const x = conversionInputs();
  for (const name of ["F16", "BF16"] as const) {
    assertSameBytes(quantize(GGMLType[name], x), ggmlQuantize(name, x), `${name} encode`, 2);
  }
  assert.equal(fp32ToFp16(65520), 0x7c00);
  assert.equal(fp32ToFp16(-(2 ** -25)), 0x8000);
  assert.equal(fp32ToFp16(NaN), 0x7e00);
  assert.equal(dequantize(GGMLType.F16, new Uint8Array([1, 0]), 1)[0], 2 ** -24);
});

test("F32: copy both ways, NaN payloads and unaligned sources preserved", () => {
  const x = conversionInputs().subarray(0, 1000);
  const bytes = quantize(GGMLType.F32, x);
  assert.deepEqual(new Uint8Array(bytes), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 3);
  assertSameFloats(dequantize(GGMLType.F32, shifted.subarray(3), x.length), x, "F32 copy", true);
});

/** Random blocks with sane fp16 fields, followed by edge-case blocks (zero/negative/huge/subnormal/inf/NaN). */
function randomBlocks(name: QuantName, seed: number): { bytes: Uint8Array; n: number } {
  const { block, bytes: bs } = refGeometry(name);
  const rand = mulberry32(seed);
  const special = [
    0x0000, 0x8000, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x7c01,
  ];
  const nRandom = 512;
  const nb = nRandom + special.length * 2;
  const out = new Uint8Array(nb * bs);
  for (let i = 0; i < out.length; i++) out[i] = (rand() * 256) >>> 0;
  const fields = FP16_FIELDS[name];
  for (let b = 0; b < nb; b++) {
    fields.forEach((off, fi) => {
      let h: number;
      if (b < nRandom) {
        h = fp32ToFp16((rand() < 0.5 ? -1 : 1) * 2 ** (-12 + rand() * 12)); // sane: 2^-12 .. 1
      } else {
        const s = b - nRandom;
        // first pass: special value in all fields; second pass: in one field only
        h = s < special.length ? special[s] : fi === 0 ? special[s - special.length] : fp32ToFp16(0.01);
      }
      out[b * bs + off] = h & 0xff;
      out[b * bs + off + 1] = h >> 8;
    });
  }
  return { bytes: out, n: nb * block };
}

for (const name of QUANT_TYPES) {
  test(`${name}: dequantizeRow matches dequantize_row_${name.toLowerCase().replace("_k", "_K")} bit for bit`, () => {
    const { bytes, n } = randomBlocks(name, 42 + name.length * 7 + name.charCodeAt(1));
    const expected = ggmlDequantize(name, bytes, n);
    assertSameFloats(dequantize(GGMLType[name], bytes, n), expected, `${name} dequant`);
    // unaligned, subarray source; destination with an offset
    const shifted = new Uint8Array(bytes.length + 5);
    shifted.set(bytes, 5);
    const dst = new Float32Array(n + 7);
    dequantizeRow(GGMLType[name], shifted.subarray(5), dst.subarray(7), n);
    assertSameFloats(dst.subarray(7), expected, `${name} dequant (unaligned)`);
  });
}

/**
 * Weight-like blocks (enough of them that a single misplaced float rounding in the K-quant search
 * shows up: such slips change roughly 0.2-2% of super-blocks), then blocks that hit the
 * quantizers' edge cases.
 */
const WEIGHT_BLOCKS = (blockSize: number): number => (blockSize === 256 ? 2048 : 8192);

function quantInputs(blockSize: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const blocksPerRow = WEIGHT_BLOCKS(blockSize);
  const rows: number[][] = [];
  for (let b = 0; b < blocksPerRow; b++) {
    const scale = 2 ** (-8 + rand() * 10);
    const shift = rand() < 0.3 ? (rand() - 0.5) * 4 * scale : 0;
    const blk: number[] = [];
    for (let i = 0; i < blockSize; i++) {
      let v = gaussian(rand) * scale + shift;
      if (rand() < 0.01) v *= 8; // outliers
      blk.push(v);
    }
    rows.push(blk);
  }
  const fill = (f: (i: number) => number) => rows.push(Array.from({ length: blockSize }, (_, i) => f(i)));
  fill(() => 0); // all zero
  fill(() => 0.75); // constant positive
  fill(() => -0.75); // constant negative
  fill((i) => (i === 3 ? -2 : 0)); // single value
  fill((i) => (i === blockSize - 1 ? 1e-3 : 0));
  fill((i) => 1 + i / blockSize); // positive ramp
  fill((i) => -1 - i / blockSize); // negative ramp
  fill(() => (rand() - 0.5) * 1e6); // scales beyond fp16 range
  fill(() => (rand() - 0.5) * 1e-7); // subnormal fp16 scales
  fill(() => (rand() - 0.5) * 1e-30); // tiny
  fill((i) => (i % 2 ? 1 : -1) * (1 + (i % 7))); // small integers, many ties
  fill((i) => ((i % 32) - 16) / 8); // exact grid
  const out = new Float32Array(rows.length * blockSize);
  rows.forEach((r, b) => out.set(r, b * blockSize));
  return out;
}

for (const name of QUANT_TYPES) {
  test(`${name}: quantizeRow matches quantize_row_${name.toLowerCase().replace("_k", "_K")}_ref byte for byte`, () => {
    const { block, bytes: bs } = refGeometry(name);
    const x = quantInputs(block, 7 + name.charCodeAt(1) * 13 + name.length);
    const expected = ggmlQuantize(name, x);
    assertSameBytes(quantize(GGMLType[name], x), expected, `${name} quant`, bs);
    // source subarray with an offset; destination subarray with an odd offset and dirty bytes
    const src = new Float32Array(x.length + 3);
    src.set(x, 3);
    const dst = new Uint8Array(expected.length + 1).fill(0xa5);
    quantizeRow(GGMLType[name], src.subarray(3), dst.subarray(1), x.length);
    assertSameBytes(dst.subarray(1), expected, `${name} quant (offsets, dirty destination)`, bs);
    // and the round trip is a sane approximation on the weight-like part
    const nWeights = WEIGHT_BLOCKS(block) * block;
    const back = dequantize(GGMLType[name], expected, x.length);
    let err = 0;
    let ref = 0;
    for (let i = 0; i < nWeights; i++) {
      err += (back[i] - x[i]) ** 2;
      ref += x[i] ** 2;
    }
    const bits = Number(name[1]);
    assert.ok(Math.sqrt(err / ref) < 2 ** (2 - bits), `${name}: relative RMS error ${Math.sqrt(err / ref)} too large`);
  });
}

test("every supported type round-trips through the public API with the right sizes", () => {
  for (const name of [...QUANT_TYPES, "F16", "BF16", "F32"] as const) {
    const t = typeTraits(GGMLType[name]);
    const n = t.blockSize * 4;
    const x = new Float32Array(n).map((_, i) => Math.sin(i));
    const q = quantize(GGMLType[name], x);
    assert.equal(q.length, rowBytes(GGMLType[name], n));
    assert.equal(dequantize(GGMLType[name], q, n).length, n);
  }
});

// Weight layouts in kernel memory, and packing a GGUF tensor's bytes into them at load time.
//
//   q8r   Q8_0 — rows interleaved 4 at a time (a group); per group and 32-column block, 144 bytes:
//         f32 d[4] then the 4 rows' 32 int8 quants interleaved by chunks of 4 columns (byte
//         16 + 16·(j >> 2) + 4·k + (j & 3): row k, column j), so that one 16-byte load and one dot
//         product against 4 activations cover the 4 rows. Each thread streams one contiguous range
//         of groups. A tensor holding the quant −128 (never written by ggml's quantizer) runs the
//         kernel variant mm_q8r_x (KTensor.exactDot), whose i16 path has no sign flip to overflow.
//   q8u   Q4_0, Q5_0 — 144 bytes per group and block: f32 d[4], then the quants stored unsigned
//         (0..15 / 0..31; the kernels take the offset 8 / 16 off in integers), the 4 rows
//         interleaved by chunks of 4 columns (byte 16 + 16·(j >> 2) + 4·k + (j & 3): row k,
//         column j) for the 7-bit relaxed dot: exactly ggml's integer dot products, at the cost
//         of reading 8.5 instead of 4.5/5.5 bits per weight.
//   q8r1  Q4_1, Q5_1 — the same with f32 m[4] after d[4] (160 bytes), quants 0..15/0..31.
//   q4kr  Q4_K — rows interleaved 4 at a time; per group and super-block of 256 columns, 608
//         bytes (4.75 bits per weight, GGUF's 4.5 + 5.6%): f32 d[4], f32 dmin[4] (offsets 0, 16);
//         the 6-bit scales unpacked to bytes (offset 32 + 4j + k: sub-block j, row k); the mins
//         unpacked to bytes (offset 64 + 8k + j); then per 64-column chunk c the 4 rows' GGUF quant
//         bytes interleaved by 4 as in q8u (offset 96 + 128c + 16·(l >> 2) + 4k + (l & 3): row k,
//         low nibble column 64c + l, high nibble column 64c + 32 + l, l < 32), so that one 16-byte
//         load holds 8 columns of the 4 rows and one dot against 4 splatted activations serves them.
//         Nothing is unpacked in the kernel's loop, and every activation is loaded once per group.
//   q6kr  Q6_K — rows interleaved 4 at a time; per group and super-block of 256 columns, 848 bytes
//         (6.625 bits per weight, GGUF's 6.5625 + 1%): f32 d[4]; then for each unit u = 2c + h
//         (64-column chunk c, half h) 8 bytes of int8 scales (16 + 8u + 2k + e: row k, sub-block
//         4c + h (e = 0) or 4c + 2 + h (e = 1)); then per unit 96 quant bytes: the low 4 bits of
//         the 6-bit q (GGUF quant + 32) of columns 64c + 16h + l and 32 further as q4kr's nibble
//         pairs (80 + 96u + 16·(l >> 2) + 4k + (l & 3)), then their top 2 bits, two 16-byte
//         vectors each completing two nibble vectors (80 + 96u + 64 + 16·(l >> 3) + 4k + (l & 3),
//         bit 4·((l >> 2) & 1) for the low column, 2 above for the high one). See assembly/q6k.ts.
//   k8    Q5_K — widened to one byte per quant per 256 columns (336 bytes): f32 d, f32 dmin, 8 pad
//         bytes, i16 sc[16] (scale per 16 columns), i16 m[16] (offset per 16 columns, the min of
//         the 32-column sub-block), u8 q[256] (0..31).
//   f32 / f16 / bf16 — GGUF rows as they are.
// Rows are padded to a multiple of 4 (zero rows) in every layout so that threads split at groups.
import { FP16_TO_F32, dequantizeRow } from "../gguf/formats/index.ts";
import { GGMLType } from "../gguf/types.ts";
import type { KernelMemory } from "./memory.ts";

export type LayoutName = "q8r" | "q8u" | "q8r1" | "q4kr" | "q6kr" | "k8" | "f32" | "f16" | "bf16";
/**
 * The activation format a layout's kernel takes: q8 (Q8_0 as i16), q8i (Q8_0 as int8 with
 * Q8_1 block sums), q8k (Q8_K as int8), or floats.
 */
export type ActKind = "q8" | "q8i" | "q8k" | "f32" | "f16" | "bf16";

export interface KTensor {
  mem: KernelMemory;
  layout: LayoutName;
  /** GGUF type it was packed from. */
  type: number;
  act: ActKind;
  /** Kernel export (SIMD version). */
  kernel: string;
  ptr: number;
  bytes: number;
  nCols: number;
  nRows: number;
  /** nRows rounded up to a multiple of 4. */
  nRowsPadded: number;
  /** Run the kernel's `_x` variant even where relaxed SIMD is exact (a Q8_0 tensor holding −128). */
  exactDot?: boolean;
}

interface LayoutInfo {
  layout: LayoutName;
  act: ActKind;
  kernel: string;
  /** Bytes of the packed (padded) tensor. */
  bytes(nCols: number, nRowsPadded: number): number;
}

const LAYOUTS: Record<number, LayoutInfo> = {
  [GGMLType.Q8_0]: { layout: "q8r", act: "q8", kernel: "mm_q8r", bytes: (c, r) => (c / 32) * 36 * r },
  [GGMLType.Q4_0]: { layout: "q8u", act: "q8i", kernel: "mm_q40", bytes: (c, r) => (c / 32) * 36 * r },
  [GGMLType.Q5_0]: { layout: "q8u", act: "q8i", kernel: "mm_q50", bytes: (c, r) => (c / 32) * 36 * r },
  [GGMLType.Q4_1]: { layout: "q8r1", act: "q8i", kernel: "mm_q8r1", bytes: (c, r) => (c / 32) * 40 * r },
  [GGMLType.Q5_1]: { layout: "q8r1", act: "q8i", kernel: "mm_q8r1", bytes: (c, r) => (c / 32) * 40 * r },
  [GGMLType.Q4_K]: { layout: "q4kr", act: "q8k", kernel: "mm_q4k", bytes: (c, r) => (c / 256) * 152 * r },
  [GGMLType.Q5_K]: { layout: "k8", act: "q8k", kernel: "mm_k8", bytes: (c, r) => (c / 256) * 336 * r },
  [GGMLType.Q6_K]: { layout: "q6kr", act: "q8k", kernel: "mm_q6k", bytes: (c, r) => (c / 256) * 212 * r },
  [GGMLType.F32]: { layout: "f32", act: "f32", kernel: "mm_f32", bytes: (c, r) => c * 4 * r },
  [GGMLType.F16]: { layout: "f16", act: "f16", kernel: "mm_f16", bytes: (c, r) => c * 2 * r },
  [GGMLType.BF16]: { layout: "bf16", act: "bf16", kernel: "mm_bf16", bytes: (c, r) => c * 2 * r },
};

/** Bytes a tensor takes in kernel memory once packed (rows padded to a multiple of 4). */
export function packedBytes(type: number, nCols: number, nRows: number): number {
  const info = LAYOUTS[type];
  if (!info) throw new Error(`kernels: no layout for GGML type ${type}`);
  return info.bytes(nCols, (nRows + 3) & ~3);
}

/** Whether the kernels take weights of this GGUF type. */
export function kernelSupports(type: number): boolean {
  return type in LAYOUTS;
}

const f16 = (b: Uint8Array, o: number): number => FP16_TO_F32[b[o] | (b[o + 1] << 8)];

/** Byte offsets of column j within a q8r/q8u/q8r1 group-block row (chunks of 4 columns). */
const POS_CHUNKS = Int32Array.from({ length: 32 }, (_, j) => ((j >> 2) << 4) + (j & 3));
/** unpack32's [d, m] (no array allocated per block). */
const unpacked = new Float64Array(2);

/**
 * Widens the GGUF block of 32 at src[o] (types Q4_0/Q5_0/Q4_1/Q5_1; Q8_0's quants are copied as they
 * are, see packRows) into q (32 bytes: the unsigned quants — Q4_0/Q5_0 without their offset 8/16),
 * and [d, m] into `unpacked`.
 */
function unpack32(type: number, src: Uint8Array, o: number, q: Int8Array): void {
  switch (type) {
    case GGMLType.Q4_0:
      for (let j = 0; j < 16; j++) {
        q[j] = src[o + 2 + j] & 15;
        q[j + 16] = src[o + 2 + j] >> 4;
      }
      unpacked[0] = f16(src, o);
      unpacked[1] = 0;
      return;
    case GGMLType.Q4_1:
      for (let j = 0; j < 16; j++) {
        q[j] = src[o + 4 + j] & 15;
        q[j + 16] = src[o + 4 + j] >> 4;
      }
      unpacked[0] = f16(src, o);
      unpacked[1] = f16(src, o + 2);
      return;
    case GGMLType.Q5_0:
    case GGMLType.Q5_1: {
      const h = type === GGMLType.Q5_1 ? 2 : 0;
      const qh = (src[o + 2 + h] | (src[o + 3 + h] << 8) | (src[o + 4 + h] << 16) | (src[o + 5 + h] << 24)) >>> 0;
      for (let j = 0; j < 16; j++) {
        const b = src[o + 6 + h + j];
        q[j] = (b & 15) | (((qh >>> j) << 4) & 0x10);
        q[j + 16] = (b >> 4) | ((qh >>> (j + 12)) & 0x10);
      }
      unpacked[0] = f16(src, o);
      unpacked[1] = type === GGMLType.Q5_1 ? f16(src, o + 2) : 0;
      return;
    }
  }
  throw new Error(`unpack32: type ${type}`);
}

const BLOCK32_BYTES: Record<number, number> = { [GGMLType.Q8_0]: 34, [GGMLType.Q4_0]: 18, [GGMLType.Q5_0]: 22, [GGMLType.Q4_1]: 20, [GGMLType.Q5_1]: 24 };

function kScale(s: Uint8Array, o: number, j: number): number {
  return j < 4 ? s[o + j] & 63 : (s[o + j + 4] & 0xf) | ((s[o + j - 4] >> 6) << 4);
}
function kMin(s: Uint8Array, o: number, j: number): number {
  return j < 4 ? s[o + j + 4] & 63 : (s[o + j + 4] >> 4) | ((s[o + j] >> 6) << 4);
}

/** unpackQ6's output: the 256 6-bit quants (GGUF quant + 32) of one Q6_K block. */
const q6Values = new Uint8Array(256);

/** The 6-bit quants of the GGUF Q6_K block at src[o] (ql[128], qh[64], scales[16], d) in column order. */
function unpackQ6(src: Uint8Array, o: number, q: Uint8Array): void {
  // ggml's dequantize_row_q6_K: two halves of 128, each from 64 ql bytes and 32 qh bytes
  for (let n = 0; n < 2; n++) {
    const ql = o + 64 * n;
    const qh = o + 128 + 32 * n;
    for (let l = 0; l < 32; l++) {
      const h = src[qh + l];
      q[128 * n + l] = (src[ql + l] & 0xf) | ((h & 3) << 4);
      q[128 * n + l + 32] = (src[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4);
      q[128 * n + l + 64] = (src[ql + l] >> 4) | (((h >> 4) & 3) << 4);
      q[128 * n + l + 96] = (src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4);
    }
  }
}

/** Reads rows [row0, row0 + n) of a GGUF tensor's bytes into dst[0..) (e.g. from the file). */
export type RowReader = (row0: number, n: number, dst: Uint8Array) => void;

/** Bytes of GGUF rows read at a time when a tensor is repacked (layouts that copy read straight in). */
const PACK_CHUNK_BYTES = 1 << 20;
let chunk = new Uint8Array(0);

/** Packs GGUF tensor bytes (nRows rows of nCols elements of `type`) into kernel memory. */
export function packTensor(mem: KernelMemory, type: number, nCols: number, nRows: number, src: Uint8Array): KTensor {
  const rowBytes = src.length / nRows;
  return packTensorRows(mem, type, nCols, nRows, rowBytes, (r0, n, dst) => dst.set(src.subarray(r0 * rowBytes, (r0 + n) * rowBytes)));
}

/**
 * Packs a tensor into kernel memory reading its GGUF rows through `read`: layouts kept as they are
 * are read straight into kernel memory; the others are read in chunks of whole row groups
 * (≤ PACK_CHUNK_BYTES, one buffer reused) and repacked, so no copy of the whole tensor ever exists
 * outside kernel memory.
 */
export function packTensorRows(mem: KernelMemory, type: number, nCols: number, nRows: number, rowBytes: number, read: RowReader): KTensor {
  const info = LAYOUTS[type];
  if (!info) throw new Error(`kernels: no layout for GGML type ${type}`);
  const nRowsPadded = (nRows + 3) & ~3;
  const bytes = info.bytes(nCols, nRowsPadded);
  const ptr = mem.alloc(bytes);
  const out = mem.u8.subarray(ptr, ptr + bytes);
  // Every byte of the real rows is written below; only the padding rows must be zeroed (the memory may
  // be reused): in the interleaved layouts they sit in the last group of 4 rows, else at the end.
  const interleaved = info.layout === "q8r" || info.layout === "q8u" || info.layout === "q8r1" || info.layout === "q4kr" || info.layout === "q6kr";
  out.fill(0, interleaved ? bytes - bytes / (nRowsPadded / 4) : (bytes / nRowsPadded) * nRows);
  const t: KTensor = { mem, layout: info.layout, type, act: info.act, kernel: info.kernel, ptr, bytes, nCols, nRows, nRowsPadded };
  if (info.layout === "f32" || info.layout === "f16" || info.layout === "bf16") {
    read(0, nRows, out);
    return t;
  }
  const step = Math.max(4, Math.floor(PACK_CHUNK_BYTES / rowBytes) & ~3);
  if (chunk.length < Math.min(nRows, step) * rowBytes) chunk = new Uint8Array(Math.min(nRows, step) * rowBytes);
  for (let r0 = 0; r0 < nRows; r0 += step) {
    const n = Math.min(step, nRows - r0);
    read(r0, n, chunk);
    if (packRows(info, type, nCols, out, r0, n, rowBytes, chunk)) t.exactDot = true;
  }
  return t;
}

/**
 * Repacks GGUF rows [r0, r0 + n) (src holds them from row r0 on) into the packed tensor `out`;
 * true when a Q8_0 quant was −128.
 */
function packRows(info: LayoutInfo, type: number, nCols: number, out: Uint8Array, r0: number, count: number, rowBytes: number, src: Uint8Array): boolean {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const r1 = r0 + count;
  let minQuant = false;
  switch (info.layout) {
    case "q8r": case "q8u": case "q8r1": {
      const nb = nCols / 32;
      const bb = BLOCK32_BYTES[type];
      const hdr = info.layout === "q8r1" ? 32 : 16;
      const gbb = hdr + 128; // bytes per group-block
      const q = new Int8Array(out.buffer, out.byteOffset, out.byteLength);
      const f = new Float32Array(out.buffer, out.byteOffset, out.byteLength >> 2); // out is 64-byte aligned
      const tmp = new Int8Array(32);
      const q8 = type === GGMLType.Q8_0;
      for (let r = r0; r < r1; r++) {
        const g = r >> 2;
        const k = r & 3;
        for (let b = 0; b < nb; b++) {
          const o = (g * nb + b) * gbb;
          const so = (r - r0) * rowBytes + b * bb;
          const base = o + hdr + 4 * k;
          if (q8) {
            // Q8_0: the quants as they are (an Int8Array store wraps the byte to its signed value)
            for (let j = 0; j < 32; j++) {
              q[base + POS_CHUNKS[j]] = src[so + 2 + j];
              if (src[so + 2 + j] === 0x80) minQuant = true;
            }
            f[(o >> 2) + k] = f16(src, so);
            continue;
          }
          unpack32(type, src, so, tmp);
          for (let j = 0; j < 32; j++) q[base + POS_CHUNKS[j]] = tmp[j];
          f[(o >> 2) + k] = unpacked[0];
          if (hdr === 32) f[(o >> 2) + 4 + k] = unpacked[1];
        }
      }
      break;
    }
    case "q4kr": {
      const nsb = nCols / 256;
      for (let r = r0; r < r1; r++) {
        const k = r & 3;
        for (let s = 0; s < nsb; s++) {
          const o = ((r >> 2) * nsb + s) * 608;
          const bo = (r - r0) * rowBytes + s * 144;
          dv.setFloat32(o + 4 * k, f16(src, bo), true);
          dv.setFloat32(o + 16 + 4 * k, f16(src, bo + 2), true);
          for (let j = 0; j < 8; j++) {
            out[o + 32 + 4 * j + k] = kScale(src, bo + 4, j);
            out[o + 64 + 8 * k + j] = kMin(src, bo + 4, j);
          }
          for (let c = 0; c < 4; c++) for (let l = 0; l < 32; l++) out[o + 96 + 128 * c + 4 * k + POS_CHUNKS[l]] = src[bo + 16 + 32 * c + l];
        }
      }
      break;
    }
    case "k8": {
      const nsb = nCols / 256;
      for (let r = r0; r < r1; r++) {
        for (let s = 0; s < nsb; s++) {
          const o = (r * nsb + s) * 336;
          const bo = (r - r0) * rowBytes + s * 176;
          dv.setFloat32(o, f16(src, bo), true);
          dv.setFloat32(o + 4, f16(src, bo + 2), true);
          for (let j = 0; j < 8; j++) {
            const sc = kScale(src, bo + 4, j);
            const m = kMin(src, bo + 4, j);
            dv.setInt16(o + 16 + 4 * j, sc, true);
            dv.setInt16(o + 18 + 4 * j, sc, true);
            dv.setInt16(o + 48 + 4 * j, m, true);
            dv.setInt16(o + 50 + 4 * j, m, true);
          }
          for (let c = 0; c < 4; c++) {
            for (let l = 0; l < 32; l++) {
              const b = src[bo + 48 + 32 * c + l];
              const h = src[bo + 16 + l];
              out[o + 80 + 64 * c + l] = (b & 15) + (((h >> (2 * c)) & 1) << 4);
              out[o + 80 + 64 * c + 32 + l] = (b >> 4) + (((h >> (2 * c + 1)) & 1) << 4);
            }
          }
        }
      }
      break;
    }
    case "q6kr": {
      const nsb = nCols / 256;
      const q = q6Values;
      for (let r = r0; r < r1; r++) {
        const k = r & 3;
        for (let s = 0; s < nsb; s++) {
          const o = ((r >> 2) * nsb + s) * 848;
          const bo = (r - r0) * rowBytes + s * 210;
          dv.setFloat32(o + 4 * k, f16(src, bo + 208), true);
          unpackQ6(src, bo, q);
          for (let u = 0; u < 8; u++) {
            const lo = 64 * (u >> 1) + 16 * (u & 1); // the unit's first low column; high = lo + 32
            out[o + 16 + 8 * u + 2 * k] = src[bo + 192 + (lo >> 4)];
            out[o + 16 + 8 * u + 2 * k + 1] = src[bo + 192 + ((lo + 32) >> 4)];
            const e = o + 80 + 96 * u + 4 * k;
            for (let l = 0; l < 16; l++) {
              const a = q[lo + l];
              const c = q[lo + 32 + l];
              out[e + 16 * (l >> 2) + (l & 3)] = (a & 15) | ((c & 15) << 4);
              const at = e + 64 + 16 * (l >> 3) + (l & 3);
              const sh = 4 * ((l >> 2) & 1);
              out[at] = (sh === 0 ? 0 : out[at]) | ((a >> 4) << sh) | ((c >> 4) << (sh + 2));
            }
          }
        }
      }
      break;
    }
    default:
      throw new Error(`packRows: layout ${info.layout} is copied as it is`);
  }
  return minQuant;
}

/** Decodes row `row` of a packed tensor into dst[0..nCols) (embedding lookups). */
export function decodePackedRow(t: KTensor, row: number, dst: Float32Array): void {
  const u8 = t.mem.u8;
  const n = t.nCols;
  switch (t.layout) {
    case "f32": case "f16": case "bf16": {
      const rb = t.bytes / t.nRowsPadded;
      dequantizeRow(t.type, u8.subarray(t.ptr + row * rb, t.ptr + (row + 1) * rb), dst, n);
      return;
    }
    case "q8r": case "q8u": case "q8r1": {
      const nb = n / 32;
      const hdr = t.layout === "q8r1" ? 32 : 16;
      const off = t.type === GGMLType.Q4_0 ? 8 : t.type === GGMLType.Q5_0 ? 16 : 0;
      const gbb = hdr + 128;
      const dv = new DataView(u8.buffer, t.ptr, t.bytes);
      const g = row >> 2;
      const k = row & 3;
      for (let b = 0; b < nb; b++) {
        const o = (g * nb + b) * gbb;
        const d = dv.getFloat32(o + 4 * k, true);
        const m = hdr === 32 ? dv.getFloat32(o + 16 + 4 * k, true) : 0;
        for (let j = 0; j < 32; j++) {
          const qo = o + hdr + 4 * k + POS_CHUNKS[j];
          dst[b * 32 + j] = Math.fround(d * (dv.getInt8(qo) - off)) + m;
        }
      }
      return;
    }
    case "q4kr": {
      // ggml's dequantize_row_q4_K: y = (d·sc)·q − dmin·m, each product rounded to f32
      const dv = new DataView(u8.buffer, t.ptr, t.bytes);
      const k = row & 3;
      for (let s = 0; s < n / 256; s++) {
        const o = ((row >> 2) * (n / 256) + s) * 608;
        const d = dv.getFloat32(o + 4 * k, true);
        const dmin = dv.getFloat32(o + 16 + 4 * k, true);
        for (let j = 0; j < 8; j++) {
          const ds = Math.fround(d * dv.getUint8(o + 32 + 4 * j + k));
          const dm = Math.fround(dmin * dv.getUint8(o + 64 + 8 * k + j));
          const q = o + 96 + 128 * (j >> 1) + 4 * k;
          for (let l = 0; l < 32; l++) {
            const b = dv.getUint8(q + POS_CHUNKS[l]);
            dst[s * 256 + 32 * j + l] = Math.fround(ds * (j & 1 ? b >> 4 : b & 15)) - dm;
          }
        }
      }
      return;
    }
    case "q6kr": {
      // ggml's dequantize_row_q6_K: y = (d·sc)·(q − 32), the product d·sc rounded to f32
      const dv = new DataView(u8.buffer, t.ptr, t.bytes);
      const k = row & 3;
      for (let s = 0; s < n / 256; s++) {
        const o = ((row >> 2) * (n / 256) + s) * 848;
        const d = dv.getFloat32(o + 4 * k, true);
        for (let u = 0; u < 8; u++) {
          const lo = s * 256 + 64 * (u >> 1) + 16 * (u & 1);
          for (let e = 0; e < 2; e++) {
            const ds = Math.fround(d * dv.getInt8(o + 16 + 8 * u + 2 * k + e));
            for (let l = 0; l < 16; l++) {
              const b = dv.getUint8(o + 80 + 96 * u + 16 * (l >> 2) + 4 * k + (l & 3));
              const h = dv.getUint8(o + 80 + 96 * u + 64 + 16 * (l >> 3) + 4 * k + (l & 3));
              const q = (e ? b >> 4 : b & 15) | (((h >> (4 * ((l >> 2) & 1) + 2 * e)) & 3) << 4);
              dst[lo + 32 * e + l] = Math.fround(ds * (q - 32));
            }
          }
        }
      }
      return;
    }
    case "k8": {
      const nsb = n / 256;
      const dv = new DataView(u8.buffer, t.ptr, t.bytes);
      for (let s = 0; s < nsb; s++) {
        const o = (row * nsb + s) * 336;
        const d = dv.getFloat32(o, true);
        const dmin = dv.getFloat32(o + 4, true);
        for (let e = 0; e < 256; e++) {
          const sc = dv.getInt16(o + 16 + 2 * (e >> 4), true);
          const m = dv.getInt16(o + 48 + 2 * (e >> 4), true);
          const q = dv.getUint8(o + 80 + e);
          dst[s * 256 + e] = Math.fround(Math.fround(d * sc) * q) - Math.fround(dmin * m);
        }
      }
      return;
    }
  }
}

// Weight layouts in kernel memory, and packing a GGUF tensor's bytes into them at load time.
//
//   q8r   Q8_0 — rows interleaved 4 at a time (a group); per group and 32-column block, 144 bytes:
//         f32 d[4] then the 4 rows' 32 int8 quants interleaved by chunks of 4 columns (byte
//         16 + 16·(j >> 2) + 4·k + (j & 3): row k, column j), so that one 16-byte load and one dot
//         product against 4 activations cover the 4 rows. Each thread streams one contiguous range
//         of groups. A tensor holding the quant −128 (never written by ggml's quantizer) runs the
//         kernel variant mm_q8r_x (KTensor.exactDot), whose i16 path has no sign flip to overflow.
//   q4r   Q4_0, Q4_1 — per group and 32-column block: f32 d[4] (Q4_1: then f32 m[4]), then GGUF's
//         nibble pairs (low nibble column j, high nibble column j + 16, j < 16) of the 4 rows
//         interleaved by 4 (hdr + 16·(j >> 2) + 4k + (j & 3)): 80 / 96 bytes, 5 / 6 bits per
//         weight against GGUF's 4.5 / 5. The quants are unsigned (0..15): the kernels take Q4_0's
//         offset 8 off in integers, exactly ggml's integer dot products.
//   q8u   Q5_0, Q5_1 — the same header, then one byte per quant (0..31; Q5_0's offset 16 comes off
//         in integers), interleaved by 4 (hdr + 16·(j >> 2) + 4k + (j & 3), j < 32): 144 / 160
//         bytes, 8.5 / 10 bits per weight against 5.5 / 6 (a nibble layout with the 5th bits beside
//         lost 10-40% of the speed to joining them; see assembly/q45.ts).
//   q4kr  Q4_K — rows interleaved 4 at a time; per group and super-block of 256 columns, 608
//         bytes (4.75 bits per weight, GGUF's 4.5 + 5.6%): f32 d[4], f32 dmin[4] (offsets 0, 16);
//         the 6-bit scales unpacked to bytes (offset 32 + 4j + k: sub-block j, row k); the mins
//         unpacked to bytes (offset 64 + 8k + j); then per 64-column chunk c the 4 rows' GGUF quant
//         bytes interleaved by 4 as in q8r (offset 96 + 128c + 16·(l >> 2) + 4k + (l & 3): row k,
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
//   q5kr  Q5_K — q4kr with each 64-column chunk's 5th bits after its 128 nibble bytes: 736 bytes
//         per group and super-block (5.75 bits per weight, GGUF's 5.5 + 4.5%): header as q4kr, then
//         per chunk c at 96 + 160c the nibble pairs as q4kr, then two 16-byte bit vectors (96 +
//         160c + 128 + 16·(i >> 2) + 4k + (l & 3), i = l >> 2: bit 2·(i & 3) is column 64c + l's,
//         the next bit column 64c + 32 + l's). See assembly/q5k.ts.
//   f32 / f16 / bf16 — GGUF rows as they are.
// Rows are padded to a multiple of 4 (zero rows) in every layout so that threads split at groups.
import { FP16_TO_F32, dequantizeRow } from "../gguf/formats/index.ts";
import { GGMLType } from "../gguf/types.ts";
import type { KernelMemory } from "./memory.ts";

export type LayoutName = "q8r" | "q4r" | "q8u" | "q4kr" | "q5kr" | "q6kr" | "f32" | "f16" | "bf16";
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
  [GGMLType.Q4_0]: { layout: "q4r", act: "q8i", kernel: "mm_q40", bytes: (c, r) => (c / 32) * 20 * r },
  [GGMLType.Q4_1]: { layout: "q4r", act: "q8i", kernel: "mm_q41", bytes: (c, r) => (c / 32) * 24 * r },
  [GGMLType.Q5_0]: { layout: "q8u", act: "q8i", kernel: "mm_q50", bytes: (c, r) => (c / 32) * 36 * r },
  [GGMLType.Q5_1]: { layout: "q8u", act: "q8i", kernel: "mm_q51", bytes: (c, r) => (c / 32) * 40 * r },
  [GGMLType.Q4_K]: { layout: "q4kr", act: "q8k", kernel: "mm_q4k", bytes: (c, r) => (c / 256) * 152 * r },
  [GGMLType.Q5_K]: { layout: "q5kr", act: "q8k", kernel: "mm_q5k", bytes: (c, r) => (c / 256) * 184 * r },
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

/** Byte offsets of column j within a q8r group-block row, or of nibble pair j in q4r/q4kr (chunks of 4 columns). */
const POS_CHUNKS = Int32Array.from({ length: 32 }, (_, j) => ((j >> 2) << 4) + (j & 3));
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
  const interleaved = info.layout === "q8r" || info.layout === "q4r" || info.layout === "q8u" || info.layout === "q4kr" || info.layout === "q5kr" || info.layout === "q6kr";
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
    case "q8r": {
      const nb = nCols / 32;
      const q = new Int8Array(out.buffer, out.byteOffset, out.byteLength);
      const f = new Float32Array(out.buffer, out.byteOffset, out.byteLength >> 2); // out is 64-byte aligned
      for (let r = r0; r < r1; r++) {
        const k = r & 3;
        for (let b = 0; b < nb; b++) {
          const o = ((r >> 2) * nb + b) * 144;
          const so = (r - r0) * rowBytes + b * 34;
          // the quants as they are (an Int8Array store wraps the byte to its signed value)
          for (let j = 0; j < 32; j++) {
            q[o + 16 + 4 * k + POS_CHUNKS[j]] = src[so + 2 + j];
            if (src[so + 2 + j] === 0x80) minQuant = true;
          }
          f[(o >> 2) + k] = f16(src, so);
        }
      }
      break;
    }
    case "q4r": case "q8u": {
      // GGUF blocks: d (f16) [m (f16)] [qh (u32)] qs[16]
      const nb = nCols / 32;
      const one = type === GGMLType.Q4_1 || type === GGMLType.Q5_1;
      const q5 = info.layout === "q8u";
      const hdr = one ? 32 : 16;
      const gbb = hdr + (q5 ? 128 : 64);
      const bb = 18 + (one ? 2 : 0) + (q5 ? 4 : 0);
      const qs = bb - 16;
      for (let r = r0; r < r1; r++) {
        const k = r & 3;
        for (let b = 0; b < nb; b++) {
          const o = ((r >> 2) * nb + b) * gbb;
          const so = (r - r0) * rowBytes + b * bb;
          dv.setFloat32(o + 4 * k, f16(src, so), true);
          if (one) dv.setFloat32(o + 16 + 4 * k, f16(src, so + 2), true);
          const e = o + hdr + 4 * k;
          if (!q5) {
            for (let j = 0; j < 16; j++) out[e + POS_CHUNKS[j]] = src[so + qs + j];
            continue;
          }
          const qh = so + (one ? 4 : 2);
          const bits = (src[qh] | (src[qh + 1] << 8) | (src[qh + 2] << 16) | (src[qh + 3] << 24)) >>> 0;
          for (let j = 0; j < 16; j++) {
            const v = src[so + qs + j];
            out[e + POS_CHUNKS[j]] = (v & 15) | (((bits >>> j) & 1) << 4);
            out[e + POS_CHUNKS[j + 16]] = (v >> 4) | (((bits >>> (j + 16)) & 1) << 4);
          }
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
    case "q5kr": {
      const nsb = nCols / 256;
      for (let r = r0; r < r1; r++) {
        const k = r & 3;
        for (let s = 0; s < nsb; s++) {
          const o = ((r >> 2) * nsb + s) * 736;
          const bo = (r - r0) * rowBytes + s * 176;
          dv.setFloat32(o + 4 * k, f16(src, bo), true);
          dv.setFloat32(o + 16 + 4 * k, f16(src, bo + 2), true);
          for (let j = 0; j < 8; j++) {
            out[o + 32 + 4 * j + k] = kScale(src, bo + 4, j);
            out[o + 64 + 8 * k + j] = kMin(src, bo + 4, j);
          }
          for (let c = 0; c < 4; c++) {
            const e = o + 96 + 160 * c + 4 * k;
            for (let l = 0; l < 32; l++) {
              out[e + POS_CHUNKS[l]] = src[bo + 48 + 32 * c + l]; // GGUF's nibble pair: columns 64c + l, 64c + 32 + l
              const at = e + 128 + 16 * (l >> 4) + (l & 3);
              const sh = 2 * ((l >> 2) & 3);
              const bits = ((src[bo + 16 + l] >> (2 * c)) & 3) << sh;
              out[at] = (sh === 0 ? 0 : out[at]) | bits;
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
    case "q8r": {
      const dv = new DataView(u8.buffer, t.ptr, t.bytes);
      const g = row >> 2;
      const k = row & 3;
      for (let b = 0; b < n / 32; b++) {
        const o = (g * (n / 32) + b) * 144;
        const d = dv.getFloat32(o + 4 * k, true);
        for (let j = 0; j < 32; j++) dst[b * 32 + j] = Math.fround(d * dv.getInt8(o + 16 + 4 * k + POS_CHUNKS[j]));
      }
      return;
    }
    case "q4r": case "q8u": {
      // ggml's dequantize_row_q4_0 / q5_0: (q − off)·d; q4_1 / q5_1: q·d + m
      const nb = n / 32;
      const one = t.type === GGMLType.Q4_1 || t.type === GGMLType.Q5_1;
      const q5 = t.layout === "q8u";
      const hdr = one ? 32 : 16;
      const gbb = hdr + (q5 ? 128 : 64);
      const off = t.type === GGMLType.Q4_0 ? 8 : t.type === GGMLType.Q5_0 ? 16 : 0;
      const dv = new DataView(u8.buffer, t.ptr, t.bytes);
      const k = row & 3;
      for (let b = 0; b < nb; b++) {
        const o = ((row >> 2) * nb + b) * gbb;
        const d = dv.getFloat32(o + 4 * k, true);
        const m = one ? dv.getFloat32(o + 16 + 4 * k, true) : 0;
        const e = o + hdr + 4 * k;
        for (let j = 0; j < 32; j++) {
          const q = q5 ? dv.getUint8(e + POS_CHUNKS[j]) : j < 16 ? dv.getUint8(e + POS_CHUNKS[j]) & 15 : dv.getUint8(e + POS_CHUNKS[j - 16]) >> 4;
          dst[b * 32 + j] = one ? Math.fround(d * q) + m : Math.fround(d * (q - off));
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
    case "q5kr": {
      // ggml's dequantize_row_q5_K: y = (d·sc)·q − dmin·m, each product rounded to f32
      const dv = new DataView(u8.buffer, t.ptr, t.bytes);
      const k = row & 3;
      for (let s = 0; s < n / 256; s++) {
        const o = ((row >> 2) * (n / 256) + s) * 736;
        const d = dv.getFloat32(o + 4 * k, true);
        const dmin = dv.getFloat32(o + 16 + 4 * k, true);
        for (let j = 0; j < 8; j++) {
          const ds = Math.fround(d * dv.getUint8(o + 32 + 4 * j + k));
          const dm = Math.fround(dmin * dv.getUint8(o + 64 + 8 * k + j));
          const cp = o + 96 + 160 * (j >> 1) + 4 * k;
          for (let l = 0; l < 32; l++) {
            const b = dv.getUint8(cp + POS_CHUNKS[l]);
            const h = dv.getUint8(cp + 128 + 16 * (l >> 4) + (l & 3));
            const q = (j & 1 ? b >> 4 : b & 15) | (((h >> (2 * ((l >> 2) & 3) + (j & 1))) & 1) << 4);
            dst[s * 256 + 32 * j + l] = Math.fround(ds * q) - dm;
          }
        }
      }
      return;
    }
  }
}

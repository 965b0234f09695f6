// Activation codecs: how hidden-state rows travel between stages. Chosen per mesh and stated in
// every FORWARD frame's codec byte (stage-protocol.ts). Non-finite values are rejected on both ends.
//
//   F32  (0)  4 bytes/value, exact
//   F16  (1)  2 bytes/value, IEEE half, round-to-nearest-even
//   BF16 (2)  2 bytes/value, bfloat16, round-to-nearest-even
//   INT8 (3)  per row: f32 scale (max|x|/127) then 1 byte/value, round-to-nearest
export const Codec = { F32: 0, F16: 1, BF16: 2, INT8: 3 } as const;
export type Codec = (typeof Codec)[keyof typeof Codec];

export const CODEC_NAMES: Record<string, Codec> = { f32: Codec.F32, f16: Codec.F16, bf16: Codec.BF16, int8: Codec.INT8 };

export function codecName(c: number): string {
  for (const [n, v] of Object.entries(CODEC_NAMES)) if (v === c) return n;
  return `codec ${c}`;
}

export function parseCodec(name: string): Codec {
  const c = CODEC_NAMES[name.toLowerCase()];
  if (c === undefined) throw new Error(`unknown activation codec "${name}" (f32, f16, bf16, int8)`);
  return c;
}

export class CodecError extends Error {
  override name = "CodecError";
}

/** Bytes one row of `width` values takes. */
export function encodedRowBytes(codec: number, width: number): number {
  switch (codec) {
    case Codec.F32:
      return width * 4;
    case Codec.F16:
    case Codec.BF16:
      return width * 2;
    case Codec.INT8:
      return 4 + width;
    default:
      throw new CodecError(`unknown activation codec ${codec}`);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function toBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

function fromBf16(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

function checkFinite(rows: Float32Array): void {
  for (let i = 0; i < rows.length; i++) {
    if (!Number.isFinite(rows[i])) throw new CodecError(`non-finite activation at index ${i} (${rows[i]})`);
  }
}

/** Encodes rows (n × width, f32) into out at offset; throws on a non-finite value. */
export function encodeRowsInto(codec: number, rows: Float32Array, width: number, out: Uint8Array, offset: number): void {
  checkFinite(rows);
  const n = rows.length / width;
  const dv = new DataView(out.buffer, out.byteOffset + offset, n * encodedRowBytes(codec, width));
  switch (codec) {
    case Codec.F32:
      new Uint8Array(out.buffer, out.byteOffset + offset, rows.length * 4).set(new Uint8Array(rows.buffer, rows.byteOffset, rows.length * 4));
      return;
    case Codec.F16:
      for (let i = 0; i < rows.length; i++) dv.setUint16(i * 2, toHalf(rows[i]), true);
      return;
    case Codec.BF16:
      for (let i = 0; i < rows.length; i++) dv.setUint16(i * 2, toBf16(rows[i]), true);
      return;
    case Codec.INT8: {
      const rb = 4 + width;
      for (let r = 0; r < n; r++) {
        let max = 0;
        for (let j = 0; j < width; j++) max = Math.max(max, Math.abs(rows[r * width + j]));
        const scale = max / 127;
        dv.setFloat32(r * rb, scale, true);
        const inv = scale > 0 ? 1 / scale : 0;
        for (let j = 0; j < width; j++) dv.setInt8(r * rb + 4 + j, Math.max(-127, Math.min(127, Math.round(rows[r * width + j] * inv))));
      }
      return;
    }
    default:
      throw new CodecError(`unknown activation codec ${codec}`);
  }
}

/** Decodes n rows of width values at offset; throws on a non-finite value. */
export function decodeRows(codec: number, buf: Uint8Array, offset: number, n: number, width: number): Float32Array {
  const bytes = n * encodedRowBytes(codec, width);
  if (offset + bytes > buf.length) throw new CodecError("truncated activation rows");
  const out = new Float32Array(n * width);
  const dv = new DataView(buf.buffer, buf.byteOffset + offset, bytes);
  switch (codec) {
    case Codec.F32:
      new Uint8Array(out.buffer).set(buf.subarray(offset, offset + bytes));
      break;
    case Codec.F16:
      for (let i = 0; i < out.length; i++) out[i] = fromHalf(dv.getUint16(i * 2, true));
      break;
    case Codec.BF16:
      for (let i = 0; i < out.length; i++) out[i] = fromBf16(dv.getUint16(i * 2, true));
      break;
    case Codec.INT8: {
      const rb = 4 + width;
      for (let r = 0; r < n; r++) {
        const scale = dv.getFloat32(r * rb, true);
        if (!Number.isFinite(scale)) throw new CodecError(`non-finite int8 row scale (${scale})`);
        for (let j = 0; j < width; j++) out[r * width + j] = dv.getInt8(r * rb + 4 + j) * scale;
      }
      break;
    }
    default:
      throw new CodecError(`unknown activation codec ${codec}`);
  }
  checkFinite(out);
  return out;
}

/** Round-trips rows through a codec (what the next stage will see). */
export function roundTrip(codec: Codec, rows: Float32Array, width: number): Float32Array {
  const buf = new Uint8Array((rows.length / width) * encodedRowBytes(codec, width));
  encodeRowsInto(codec, rows, width, buf, 0);
  return decodeRows(codec, buf, 0, rows.length / width, width);
}

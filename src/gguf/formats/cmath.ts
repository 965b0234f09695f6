// Helpers that make JS numbers behave like the C (x86-64, SSE2, no FMA) float code of ggml.
//
// Rule used throughout src/gguf/formats: every C `float` operation is written as
// Math.fround(a op b). For +, -, *, / and sqrt of float operands, computing in double and then
// rounding once to float gives exactly the IEEE single-precision result (53 >= 2*24 + 2), so this
// reproduces C bit for bit as long as the C compiler neither reorders nor fuses (FMA) operations.
// The pinned libggml-base.so is built for baseline x86-64 (no FMA instructions at all), and C
// compilers never reassociate float math without -ffast-math.

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/**
 * ggml-quants.c nearest_int(): `val = fval + 12582912.f; return (bits(val) & 0x7fffff) - 0x400000`,
 * i.e. round-half-to-even for |fval| <= 4194303 (and the same bit trick outside that range).
 */
export function nearestInt(fval: number): number {
  const v = Math.fround(fval + 12582912);
  if (v >= 8388608 && v < 16777216) return v - 12582912;
  f32[0] = v;
  return (i32[0] & 0x007fffff) - 0x00400000;
}

/**
 * C float -> int32 conversion as emitted by gcc on x86-64 (cvttss2si): truncation toward zero;
 * NaN or out-of-range gives INT32_MIN ("integer indefinite").
 */
export function cvtt(v: number): number {
  if (!(v > -2147483649 && v < 2147483648)) return -2147483648;
  return Math.trunc(v) | 0;
}

/** C `(int8_t)(float)` on x86-64: cvttss2si then keep the low byte (signed). */
export function toInt8(v: number): number {
  return (cvtt(v) << 24) >> 24;
}

/** C `(uint8_t)(float)` on x86-64: cvttss2si then keep the low byte. */
export function toUint8(v: number): number {
  return cvtt(v) & 0xff;
}

/** C roundf(): round half away from zero. */
export function roundf(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

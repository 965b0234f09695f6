import { queryRow, scoresRows, keysBlock, keysBlockBytes, scoresBlock, scoreGeneric } from "./attention-scores";
import { f16round } from "./common";
import { expNeg2 } from "./exp";

// ---------------------------------------------------------------------------------------------
// Attention over the KV cache (src/engine/attention.ts has the same arithmetic in TypeScript)
//
// Online softmax with llama.cpp's CPU flash-attention numerics: for each query head, positions
// j = 0 .. pos0+t in order:
//   dot  = Σ q_i·k_ji in f32, lanes i%4 summed separately, then (l0 + l2) + (l1 + l3)
//          (attention-scores.ts; the fp16 products are exact in f32, as in ggml_vec_dot_f16)
//   s    = f32(dot) · scale (f32)
//   s > M: ms = f32(exp(M - s)), M = s, acc = round(acc · ms)    else vs = f32(exp(s - M))
//   acc  = round(f32(f64(acc) + f64(v_j)·vs))                      (an FMA, rounded to f32 once)
//   S    = f32(S·ms + vs)
//   out  = acc · f32(1 / S)
// round = fp16 rounding for an F16 cache (f16 != 0), none for F32; q is rounded to fp16 too.
// exp is musl's f64 exp (NativeMath.exp; expNeg2 below, four at a time, the same bits) rounded to
// f32, which equals the TypeScript fround(Math.exp(x)) (V8's fdlibm) for every f32 x in [-104, 0]
// (checked exhaustively; below that both round to 0).
// The SIMD kernels split this loop into passes (see attendBody) with the same operations per value.
// The f64 products and sums of the acc update emulate the FMA of ggml_vec_mad_f16 (one rounding to
// f32, then to fp16).

/**
 * f16round on 4 lanes, the same values as f16round lane by lane. The constants come in as
 * arguments (loaded from memory once per call: a v128.const in the loop costs V8 several instructions).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function f16round4(x: v128, cAbs: v128, cLo: v128, cSpan: v128, cHalf: v128, cOne: v128, cMask: v128): v128 {
  const a = v128.and(x, cAbs);
  // common case: every lane in the normal fp16 range [2^-14, 65520): keep 10 mantissa bits, ties to even
  if (!v128.any_true(i32x4.ge_u(i32x4.sub(a, cLo), cSpan))) {
    return v128.and(i32x4.add(i32x4.add(x, cHalf), v128.and(i32x4.shr_u(x, 13), cOne)), cMask);
  }
  return f16round4Slow(x);
}

// @ts-expect-error: AssemblyScript decorator
@inline
const F16R_CONSTS: i32 = 9;

/** Writes f16round4's (and f16roundV's) constants at c (F16R_CONSTS·16 bytes). */
function f16round4Consts(c: usize): void {
  v128.store(c, i32x4.splat(0x7fffffff));
  v128.store(c, i32x4.splat(0x38800000), 16);
  v128.store(c, i32x4.splat(0x477ff000 - 0x38800000), 32);
  v128.store(c, i32x4.splat(0xfff), 48);
  v128.store(c, i32x4.splat(1), 64);
  v128.store(c, i32x4.splat(0xffffe000), 80);
  v128.store(c, f32x4.splat(8193), 96);
  // accumulate32's range check on x << 1 (the sign shifted out: no |x| mask): lo << 1, span << 1
  v128.store(c, i32x4.splat(0x38800000 << 1), 112);
  v128.store(c, i32x4.splat((0x477ff000 - 0x38800000) << 1), 128);
}

/**
 * x rounded to fp16 where every lane's |x| is in the normal fp16 range [2^-14, 65520) (the caller
 * checks), by Veltkamp's splitting with σ = 2^13 + 1: c = x·σ, then c − (c − x) is x rounded to its
 * top 11 significant bits, to nearest, ties to even — equal to f16round for every f32 in that range
 * of either sign (checked exhaustively: 503,308,288 values). cV = splat(8193).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function f16roundV(x: v128, cV: v128): v128 {
  const c = f32x4.mul(x, cV);
  return f32x4.sub(c, f32x4.sub(c, x));
}

/** f16round4 when some lane is outside the normal range (zero, fp16 subnormal, overflow, NaN). */
function f16round4Slow(x: v128): v128 {
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  if (v128.any_true(i32x4.ge_u(a, i32x4.splat(0x477ff000)))) {
    // overflow / NaN in some lane: lane by lane
    let r = f32x4.replace_lane(x, 0, f16round(f32x4.extract_lane(x, 0)));
    r = f32x4.replace_lane(r, 1, f16round(f32x4.extract_lane(x, 1)));
    r = f32x4.replace_lane(r, 2, f16round(f32x4.extract_lane(x, 2)));
    return f32x4.replace_lane(r, 3, f16round(f32x4.extract_lane(x, 3)));
  }
  const normal = v128.and(
    i32x4.add(i32x4.add(x, i32x4.splat(0xfff)), v128.and(i32x4.shr_u(x, 13), i32x4.splat(1))),
    i32x4.splat(0xffffe000),
  );
  // |x| < 2^-14: x + 0.75 lies in [0.5, 1) where the f32 step is 2^-24, the fp16 subnormal step
  // (0.75 is an even multiple of it, so ties round to even as they should); keep the sign of zero
  const sub = v128.or(
    f32x4.sub(f32x4.add(x, f32x4.splat(0.75)), f32x4.splat(0.75)),
    v128.and(x, i32x4.splat(0x80000000)),
  );
  return v128.bitselect(sub, normal, i32x4.lt_u(a, i32x4.splat(0x38800000)));
}

/**
 * f16round on 4 lanes for any input, without calls (f16round4Slow's arithmetic, and overflow to
 * ±inf, NaN to NaN, as f16round): the rare paths of accumulate32, where a call would make V8 keep
 * the loop's values on the stack.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function f16round4Any(x: v128): v128 {
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  const sign = v128.and(x, i32x4.splat(0x80000000));
  const normal = v128.and(
    i32x4.add(i32x4.add(x, i32x4.splat(0xfff)), v128.and(i32x4.shr_u(x, 13), i32x4.splat(1))),
    i32x4.splat(0xffffe000),
  );
  const sub = v128.or(f32x4.sub(f32x4.add(x, f32x4.splat(0.75)), f32x4.splat(0.75)), sign);
  const big = v128.bitselect(i32x4.splat(0x7fc00000), v128.or(sign, i32x4.splat(0x7f800000)), i32x4.gt_u(a, i32x4.splat(0x7f800000)));
  const r = v128.bitselect(sub, normal, i32x4.lt_u(a, i32x4.splat(0x38800000)));
  return v128.bitselect(big, r, i32x4.ge_u(a, i32x4.splat(0x477ff000)));
}

/**
 * In place: x = f32(exp(x)) for the n f32 at p (x <= 0, or NaN), four at a time: the same values
 * as f32(NativeMath.exp(x)) (below -200, exp(-200): 0 in f32 either way).
 */
function expNegF32(p: usize, n: i32): void {
  const lim = f32x4.splat(-200);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = p + (<usize>i << 2);
    const x = f32x4.pmax(v128.load(q), lim); // (pmax: NaN stays NaN)
    const lo = expNeg2(f64x2.promote_low_f32x4(x));
    const hi = expNeg2(f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 2, 3)));
    v128.store(q, v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
  }
  for (; i < n; i++) {
    const q = p + (<usize>i << 2);
    store<f32>(q, <f32>NativeMath.exp(<f64>load<f32>(q)));
  }
}

/** For the tests: expNegF32 on the n f32 at p. */
export function attend_exp(p: usize, n: i32): void {
  expNegF32(p, n);
}

/** For the tests: f16roundV on the n f32 at p (n a multiple of 4; every |x| in [2^-14, 65520)). */
export function attend_f16round_v(p: usize, n: i32): void {
  const cV = f32x4.splat(8193);
  for (let i = 0; i < n; i += 4) v128.store(p + (<usize>i << 2), f16roundV(v128.load(p + (<usize>i << 2)), cV));
}

/** For the tests: f32(NativeMath.exp(x)) on the n f32 at p (attend_generic's exp). */
export function attend_exp_generic(p: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const q = p + (<usize>i << 2);
    store<f32>(q, <f32>NativeMath.exp(<f64>load<f32>(q)));
  }
}

/**
 * Pass (3) of attendBody for the 32 accumulator lanes at p (F16: fp16 rounding, else none), held
 * in registers over all positions: v_j at vp + j·vRow, the exps at sc, the rescaling positions at
 * rl (nR of them, ascending). Returns S. With F16 one range check covers the 32 lanes of a step,
 * then f16roundV (f16round4Any where some lane is out of the normal fp16 range: zero, tiny, huge;
 * and at the rare rescalings). cSpanP points to the range's span (loaded where it is needed: one
 * register fewer).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function accumulate32(
  F16: bool, p: usize, vp: usize, vRow: usize, sc: usize, rl: usize, nR: i32, nKv: i32,
  cLo2: v128, cSpanP: usize, cV: v128,
): f32 {
  let c0 = v128.load(p), c1 = v128.load(p, 16), c2 = v128.load(p, 32), c3 = v128.load(p, 48);
  let c4 = v128.load(p, 64), c5 = v128.load(p, 80), c6 = v128.load(p, 96), c7 = v128.load(p, 112);
  let S: f32 = 0;
  let j = 0;
  let r = 0;
  while (true) {
    // positions without a rescaling, up to the next one
    const jr = r < nR ? load<i32>(rl + (<usize>r << 2)) : nKv;
    for (; j < jr; j++, vp += vRow) {
      const vs = load<f32>(sc + (<usize>j << 2));
      S += vs; // = f32(f64(S) + f64(vs))
      const w4 = f32x4.splat(vs);
      c0 = f32x4.relaxed_madd(v128.load(vp), w4, c0);
      c1 = f32x4.relaxed_madd(v128.load(vp, 16), w4, c1);
      c2 = f32x4.relaxed_madd(v128.load(vp, 32), w4, c2);
      c3 = f32x4.relaxed_madd(v128.load(vp, 48), w4, c3);
      c4 = f32x4.relaxed_madd(v128.load(vp, 64), w4, c4);
      c5 = f32x4.relaxed_madd(v128.load(vp, 80), w4, c5);
      c6 = f32x4.relaxed_madd(v128.load(vp, 96), w4, c6);
      c7 = f32x4.relaxed_madd(v128.load(vp, 112), w4, c7);
      if (F16) {
        // |x| in [lo, lo + span) ⟺ (x << 1) − (lo << 1) < span << 1 unsigned (a shift by an
        // immediate instead of a mask: one register fewer)
        const m = i32x4.max_u(i32x4.max_u(
          i32x4.max_u(i32x4.sub(i32x4.shl(c0, 1), cLo2), i32x4.sub(i32x4.shl(c1, 1), cLo2)),
          i32x4.max_u(i32x4.sub(i32x4.shl(c2, 1), cLo2), i32x4.sub(i32x4.shl(c3, 1), cLo2)),
        ), i32x4.max_u(
          i32x4.max_u(i32x4.sub(i32x4.shl(c4, 1), cLo2), i32x4.sub(i32x4.shl(c5, 1), cLo2)),
          i32x4.max_u(i32x4.sub(i32x4.shl(c6, 1), cLo2), i32x4.sub(i32x4.shl(c7, 1), cLo2)),
        ));
        if (!v128.any_true(i32x4.ge_u(m, v128.load(cSpanP)))) {
          c0 = f16roundV(c0, cV);
          c1 = f16roundV(c1, cV);
          c2 = f16roundV(c2, cV);
          c3 = f16roundV(c3, cV);
          c4 = f16roundV(c4, cV);
          c5 = f16roundV(c5, cV);
          c6 = f16roundV(c6, cV);
          c7 = f16roundV(c7, cV);
        } else {
          c0 = f16round4Any(c0);
          c1 = f16round4Any(c1);
          c2 = f16round4Any(c2);
          c3 = f16round4Any(c3);
          c4 = f16round4Any(c4);
          c5 = f16round4Any(c5);
          c6 = f16round4Any(c6);
          c7 = f16round4Any(c7);
        }
      }
    }
    if (j >= nKv) break;
    // position j rescales: acc = round(acc · ms), then acc = round(acc + v_j · 1)
    const ms = load<f32>(sc + (<usize>j << 2));
    S = <f32>(<f64>S * <f64>ms + 1);
    const m4 = f32x4.splat(ms);
    c0 = f32x4.mul(c0, m4);
    c1 = f32x4.mul(c1, m4);
    c2 = f32x4.mul(c2, m4);
    c3 = f32x4.mul(c3, m4);
    c4 = f32x4.mul(c4, m4);
    c5 = f32x4.mul(c5, m4);
    c6 = f32x4.mul(c6, m4);
    c7 = f32x4.mul(c7, m4);
    if (F16) {
      c0 = f16round4Any(c0);
      c1 = f16round4Any(c1);
      c2 = f16round4Any(c2);
      c3 = f16round4Any(c3);
      c4 = f16round4Any(c4);
      c5 = f16round4Any(c5);
      c6 = f16round4Any(c6);
      c7 = f16round4Any(c7);
    }
    c0 = f32x4.add(c0, v128.load(vp));
    c1 = f32x4.add(c1, v128.load(vp, 16));
    c2 = f32x4.add(c2, v128.load(vp, 32));
    c3 = f32x4.add(c3, v128.load(vp, 48));
    c4 = f32x4.add(c4, v128.load(vp, 64));
    c5 = f32x4.add(c5, v128.load(vp, 80));
    c6 = f32x4.add(c6, v128.load(vp, 96));
    c7 = f32x4.add(c7, v128.load(vp, 112));
    if (F16) {
      c0 = f16round4Any(c0);
      c1 = f16round4Any(c1);
      c2 = f16round4Any(c2);
      c3 = f16round4Any(c3);
      c4 = f16round4Any(c4);
      c5 = f16round4Any(c5);
      c6 = f16round4Any(c6);
      c7 = f16round4Any(c7);
    }
    j++;
    vp += vRow;
    r++;
  }
  v128.store(p, c0);
  v128.store(p, c1, 16);
  v128.store(p, c2, 32);
  v128.store(p, c3, 48);
  v128.store(p, c4, 64);
  v128.store(p, c5, 80);
  v128.store(p, c6, 96);
  v128.store(p, c7, 112);
  return S;
}

// @ts-expect-error: AssemblyScript decorator
@inline
const QBLOCK: i32 = 8; // chunks of QBLOCK_MIN+ tokens: queries per block sharing each key block
// @ts-expect-error: AssemblyScript decorator
@inline
const QBLOCK_MIN: i32 = 4;
// @ts-expect-error: AssemblyScript decorator
@inline
const KBLOCK: i32 = 32; // keys per block (keysBlock)

/**
 * Bytes of scratch attend needs per head for a chunk of nTok queries at positions up to n − 1
 * (n = pos0 + nTok), 64-byte aligned — the layout below (attendBody):
 *   constants (F16R_CONSTS·16) | qd f32 (qb, hd) | kd (keysBlock of KBLOCK) when blocked | acc f32 (hdv)
 *   | sc f32 (qb, n) scores, then exps | rl i32 (n) positions that rescale      (qb = QBLOCK or 1)
 */
export function attend_tmp_bytes(hd: i32, hdv: i32, n: i32, nTok: i32): i32 {
  const qb = nTok >= QBLOCK_MIN ? QBLOCK : 1;
  const kb = nTok >= QBLOCK_MIN ? keysBlockBytes(KBLOCK, hd) : 0;
  return ((F16R_CONSTS << 4) + qb * hd * 4 + kb + hdv * 4 + (qb + 1) * n * 4 + 63) & ~63;
}

/**
 * Passes (2) and (3) of attendBody for one query head whose nKv scores are at sc, then its output
 * row: the running maximum and the positions that rescale (rl), the exps, the accumulator (acc,
 * hdv f32) and S in order over the values at vBase (rows vRow bytes apart), out = acc · (1/S).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function softmaxValues(
  FMA: bool, vsMask: bool, sc: usize, rl: usize, nKv: i32, acc: usize, vBase: usize, vRow: usize, hdv: i32, op: usize, tmp: usize,
): void {
  const cAbs = v128.load(tmp), cLo = v128.load(tmp, 16), cSpan = v128.load(tmp, 32);
  const cHalf = v128.load(tmp, 48), cOne = v128.load(tmp, 64), cMask = v128.load(tmp, 80);
  for (let d = 0; d < hdv; d += 4) v128.store(acc + (<usize>d << 2), f32x4.splat(0));
  // (2) the running maximum, listing the positions that rescale (s > M), each score replaced by
  // the argument of its exp (M - s there, else s - M); then the exps, in place
  let M: f32 = -Infinity;
  let nR = 0;
  for (let j = 0; j < nKv; j++) {
    const p = sc + (<usize>j << 2);
    const s = load<f32>(p);
    if (s > M) {
      store<f32>(p, M - s);
      store<i32>(rl + (<usize>nR << 2), j);
      nR++;
      M = s;
    } else {
      store<f32>(p, s - M);
    }
  }
  expNegF32(sc, nKv);
  // (3) the accumulator and S, in order
  let S: f32 = 0;
  if (FMA && (hdv & 31) == 0) {
    const cV = v128.load(tmp, 96);
    const cLo2 = v128.load(tmp, 112);
    for (let d0 = 0; d0 < hdv; d0 += 32) {
      // (the same S from each)
      const p = acc + (<usize>d0 << 2);
      const vp = vBase + (<usize>d0 << 2);
      if (vsMask) S = accumulate32(true, p, vp, vRow, sc, rl, nR, nKv, cLo2, tmp + 128, cV);
      else S = accumulate32(false, p, vp, vRow, sc, rl, nR, nKv, cLo2, tmp + 128, cV);
    }
  } else {
    let r = 0;
    let jr = nR > 0 ? load<i32>(rl) : -1; // the next position that rescales
    for (let j = 0; j < nKv; j++) {
      let vs = load<f32>(sc + (<usize>j << 2));
      if (j == jr) {
        r++;
        jr = r < nR ? load<i32>(rl + (<usize>r << 2)) : -1;
        const ms = vs;
        vs = 1;
        S = <f32>(<f64>S * <f64>ms + 1);
        const m4 = f32x4.splat(ms);
        for (let d = 0; d < hdv; d += 4) {
          const p = acc + (<usize>d << 2);
          const x = f32x4.mul(v128.load(p), m4);
          v128.store(p, vsMask ? f16round4(x, cAbs, cLo, cSpan, cHalf, cOne, cMask) : x);
        }
      } else {
        S += vs; // = f32(f64(S) + f64(vs))
      }
      const vp = vBase + <usize>j * vRow;
      if (FMA) {
        const w4 = f32x4.splat(vs);
        for (let d = 0; d < hdv; d += 4) {
          const p = acc + (<usize>d << 2);
          const x = f32x4.relaxed_madd(v128.load(vp + (<usize>d << 2)), w4, v128.load(p));
          v128.store(p, vsMask ? f16round4(x, cAbs, cLo, cSpan, cHalf, cOne, cMask) : x);
        }
      } else {
        const vs2 = f64x2.splat(<f64>vs);
        for (let d = 0; d < hdv; d += 4) {
          const p = acc + (<usize>d << 2);
          const q4 = vp + (<usize>d << 2);
          const lo = f64x2.add(f64x2.promote_low_f32x4(v128.load64_zero(p)), f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(q4)), vs2));
          const hi = f64x2.add(f64x2.promote_low_f32x4(v128.load64_zero(p, 8)), f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(q4, 8)), vs2));
          const x = v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
          v128.store(p, vsMask ? f16round4(x, cAbs, cLo, cSpan, cHalf, cOne, cMask) : x);
        }
      }
    }
  }
  const inv = f32x4.splat(S == 0 ? <f32>0 : <f32>1 / S);
  for (let d = 0; d < hdv; d += 4) v128.store(op + (<usize>d << 2), f32x4.mul(v128.load(acc + (<usize>d << 2)), inv));
}

/**
 * Causal attention of a chunk of nTok query rows (positions pos0 + t) against a KV cache.
 *   q    f32 (nTok, nHead·hd)          out  f32 (nTok, nHead·hdv)
 *   k    f32 keys: head h's at position j at k + 4·(h·kHead + j·kDim) (hd of them; KV cache
 *        head-major: kDim = hd, kHead = capacity·hd)    v  f32 values likewise (vHead, vDim)
 *   tmp  scratch of attend_tmp_bytes(hd, hdv, pos0 + nTok, nTok) bytes (16-byte aligned)
 * Heads [h0, h1) and query rows [tA, tB) only (threads split the work). hd and hdv are multiples
 * of 4.
 *
 * The online softmax's operations run in three passes per query head, so that independent work is
 * not serialized behind the accumulator: (1) the scores of all positions, four positions at a
 * time (independent dot products); (2) the running maximum, which lists the positions that
 * rescale, then every position's exp — ms where s > M, else vs — four at a time; (3) in order,
 * the rescaling, the fp16 accumulator update and S — with FMA and hdv a multiple of 32, for 32
 * accumulator lanes at a time held in registers (accumulate32). Chunks of QBLOCK_MIN+ tokens
 * (prefill) take the queries of a head QBLOCK at a time: the keys they see are copied a block of
 * KBLOCK positions at a time into groups of 4 positions (keysBlock), once for the QBLOCK queries,
 * and pass (1) takes the queries two at a time against each group (scoresBlock). Each value is
 * computed by exactly the operations of the one-loop form above (attend_generic), in the same order
 * per value: the same bits.
 */
// @ts-expect-error: AssemblyScript decorator
@inline
function attendBody(
  FMA: bool, q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32, kHead: i32, vHead: i32,
  tA: i32, tB: i32,
): void {
  const group = nHead / nHeadKv;
  f16round4Consts(tmp);
  const n = pos0 + nTok;
  const blocked = nTok >= QBLOCK_MIN;
  const qb = blocked ? QBLOCK : 1;
  const qd = tmp + (F16R_CONSTS << 4); // (qb, hd) query heads, fp16-rounded for an F16 cache
  const kd = qd + <usize>(qb * hd * 4); // (KBLOCK, hd) keys in groups of 4 positions (blocked)
  const acc = kd + (blocked ? <usize>keysBlockBytes(KBLOCK, hd) : 0); // (hdv) f32
  const sc = acc + (<usize>hdv << 2); // (qb, n) f32: the scores, then their exps (ms or vs)
  const rl = sc + <usize>(qb * n * 4); // (n) i32: the positions that rescale
  const vsMask = f16 != 0;
  const kRow = <usize>kDim << 2;
  const vRow = <usize>vDim << 2;
  if (!blocked) {
    for (let t = tA; t < tB; t++) {
      const nKv = pos0 + t + 1;
      for (let h = h0; h < h1; h++) {
        const kvh = h / group;
        queryRow(q + (<usize>((t * nHead + h) * hd) << 2), qd, hd, vsMask);
        // (1) scores, four positions at a time
        const kp = k + (<usize>(kvh * kHead) << 2);
        if (vsMask) scoresRows(true, qd, kp, kRow, nKv, hd, sc, scale);
        else scoresRows(false, qd, kp, kRow, nKv, hd, sc, scale);
        softmaxValues(FMA, vsMask, sc, rl, nKv, acc, v + (<usize>(kvh * vHead) << 2), vRow, hdv, out + (<usize>((t * nHead + h) * hdv) << 2), tmp);
      }
    }
    return;
  }
  const scRow = <usize>n << 2;
  for (let h = h0; h < h1; h++) {
    const kvh = h / group;
    const kh = k + (<usize>(kvh * kHead) << 2);
    for (let t0 = tA; t0 < tB; t0 += QBLOCK) {
      const nq = min(QBLOCK, tB - t0);
      for (let i = 0; i < nq; i++) queryRow(q + (<usize>(((t0 + i) * nHead + h) * hd) << 2), qd + <usize>(i * hd * 4), hd, vsMask);
      // (1) scores, the keys KBLOCK positions at a time, each block shared by the queries, taken
      // two at a time
      const nMax = pos0 + t0 + nq; // positions the block's last query sees
      for (let j0 = 0; j0 < nMax; j0 += KBLOCK) {
        const nb = min(KBLOCK, nMax - j0);
        keysBlock(kh + <usize>j0 * kRow, kRow, nb, hd, kd);
        for (let i = 0; i < nq; i += 2) {
          // positions of this block queries i and i + 1 see (≤ 0: none yet)
          const ma = min(nb, pos0 + t0 + i + 1 - j0);
          const mb = i + 1 < nq ? min(nb, pos0 + t0 + i + 2 - j0) : 0;
          const qa = qd + <usize>(i * hd * 4);
          const sa = sc + <usize>i * scRow + (<usize>j0 << 2);
          // (mb ≥ ma: a pair with ma ≤ 0 stores nothing for query i)
          if (mb > 0) {
            if (vsMask) scoresBlock(true, true, qa, qa + <usize>(hd * 4), kd, ma, mb, hd, sa, sa + scRow, scale);
            else scoresBlock(false, true, qa, qa + <usize>(hd * 4), kd, ma, mb, hd, sa, sa + scRow, scale);
          } else if (ma > 0) {
            if (vsMask) scoresBlock(true, false, qa, 0, kd, ma, 0, hd, sa, 0, scale);
            else scoresBlock(false, false, qa, 0, kd, ma, 0, hd, sa, 0, scale);
          }
        }
      }
      for (let i = 0; i < nq; i++) {
        const t = t0 + i;
        softmaxValues(FMA, vsMask, sc + <usize>i * scRow, rl, pos0 + t + 1, acc, v + (<usize>(kvh * vHead) << 2), vRow, hdv, out + (<usize>((t * nHead + h) * hdv) << 2), tmp);
      }
    }
  }
}

export function attend(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32, kHead: i32, vHead: i32,
  tA: i32, tB: i32,
): void {
  attendBody(false, q, out, nTok, pos0, k, v, kDim, vDim, nHead, nHeadKv, hd, hdv, scale, f16, tmp, h0, h1, kHead, vHead, tA, tB);
}

/**
 * attend with the acc update as one f32x4.relaxed_madd: only used where fma_probe() says that it is
 * a fused multiply-add (x86 with FMA3, ARM64), which rounds once to f32 exactly as the f64
 * emulation in attend does (the f64 sum of fp16/f32 operands is exact or rounds far from an f32
 * tie) — test/kernels/attention.test.ts checks the two against each other bit for bit.
 */
export function attend_fma(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32, kHead: i32, vHead: i32,
  tA: i32, tB: i32,
): void {
  attendBody(true, q, out, nTok, pos0, k, v, kDim, vDim, nHead, nHeadKv, hd, hdv, scale, f16, tmp, h0, h1, kHead, vHead, tA, tB);
}

/** attend's scalar twin (the same operations, one lane at a time). */
export function attend_generic(
  q: usize, out: usize, nTok: i32, pos0: i32, k: usize, v: usize, kDim: i32, vDim: i32,
  nHead: i32, nHeadKv: i32, hd: i32, hdv: i32, scale: f32, f16: i32, tmp: usize, h0: i32, h1: i32, kHead: i32, vHead: i32,
  tA: i32, tB: i32,
): void {
  const group = nHead / nHeadKv;
  const qd = tmp + (F16R_CONSTS << 4);
  const acc = qd + (<usize>hd << 2);
  for (let t = tA; t < tB; t++) {
    const nKv = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const kvh = h / group;
      const qp = q + (<usize>((t * nHead + h) * hd) << 2);
      queryRow(qp, qd, hd, f16 != 0);
      for (let d = 0; d < hdv; d++) store<f32>(acc + (<usize>d << 2), 0);
      let M: f32 = -Infinity;
      let S: f32 = 0;
      for (let j = 0; j < nKv; j++) {
        const s = scoreGeneric(qd, k + (<usize>(kvh * kHead + j * kDim) << 2), hd, scale);
        let ms: f32 = 1;
        let vs: f32 = 1;
        if (s > M) {
          ms = <f32>NativeMath.exp(<f64>(M - s));
          M = s;
          for (let d = 0; d < hdv; d++) {
            const p = acc + (<usize>d << 2);
            const r = load<f32>(p) * ms;
            store<f32>(p, f16 != 0 ? f16round(r) : r);
          }
        } else {
          vs = <f32>NativeMath.exp(<f64>(s - M));
        }
        const vp = v + (<usize>(kvh * vHead + j * vDim) << 2);
        for (let d = 0; d < hdv; d++) {
          const p = acc + (<usize>d << 2);
          const r = <f32>(<f64>load<f32>(p) + <f64>load<f32>(vp + (<usize>d << 2)) * <f64>vs);
          store<f32>(p, f16 != 0 ? f16round(r) : r);
        }
        S = <f32>(<f64>S * <f64>ms + <f64>vs);
      }
      const inv: f32 = S == 0 ? 0 : <f32>1 / S;
      const op = out + (<usize>((t * nHead + h) * hdv) << 2);
      for (let d = 0; d < hdv; d++) store<f32>(op + (<usize>d << 2), load<f32>(acc + (<usize>d << 2)) * inv);
    }
  }
}

/**
 * Row tA of the query-row slice sl of S (rows [0, nTok) at positions pos0 + t): slices of about
 * equal causal work (row t attends over pos0 + t + 1 positions), whole query blocks of QBLOCK rows.
 */
function sliceStart(sl: i32, S: i32, nTok: i32, pos0: i32): i32 {
  if (sl <= 0) return 0;
  if (sl >= S) return nTok;
  const total = <f64>nTok * <f64>pos0 + <f64>nTok * <f64>(nTok + 1) * 0.5;
  const target = total * <f64>sl / <f64>S;
  let t = 0;
  let c: f64 = 0;
  while (t < nTok && c < target) {
    c += <f64>(pos0 + t + 1);
    t++;
  }
  return min(nTok, (t + (QBLOCK >> 1)) & ~(QBLOCK - 1));
}

/**
 * attend with the matmuls' uniform signature, for the worker pool: work units [r0/4, r1/4) (the pool
 * splits "rows" in groups of 4, one group per unit here), unit u = query-row slice u % S of head
 * u / S (S = slices, so that a few heads still split evenly among the threads). p points to
 * attend's arguments as i32 (scale as its f32 bits, tmp the base of the units' scratch areas of
 * tmpStride bytes each, then S). Each row of each head is computed by the same code whatever the
 * split: the results never depend on it.
 */
export function attend_mt(p: usize, tmpStride: i32, r0: i32, r1: i32, generic: i32 /* 1: attend_generic, 2: attend_fma */, _a: i32, _b: i32, _c: i32, _d: i32, _e: i32): void {
  const S = load<i32>(p, 68);
  const nTok = load<i32>(p, 8);
  const pos0 = load<i32>(p, 12);
  for (let u = r0 >> 2; u < r1 >> 2; u++) {
    const h = u / S;
    const tA = sliceStart(u % S, S, nTok, pos0);
    const tB = sliceStart(u % S + 1, S, nTok, pos0);
    if (tB <= tA) continue;
    const tmp = <usize>load<i32>(p, 56) + <usize>(u * tmpStride);
    if (generic == 2) {
      attend_fma(
        load<i32>(p), load<i32>(p, 4), nTok, pos0, load<i32>(p, 16), load<i32>(p, 20), load<i32>(p, 24), load<i32>(p, 28),
        load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h, h + 1, load<i32>(p, 60), load<i32>(p, 64), tA, tB,
      );
    } else if (generic != 0) {
      attend_generic(
        load<i32>(p), load<i32>(p, 4), nTok, pos0, load<i32>(p, 16), load<i32>(p, 20), load<i32>(p, 24), load<i32>(p, 28),
        load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h, h + 1, load<i32>(p, 60), load<i32>(p, 64), tA, tB,
      );
    } else {
      attend(
        load<i32>(p), load<i32>(p, 4), nTok, pos0, load<i32>(p, 16), load<i32>(p, 20), load<i32>(p, 24), load<i32>(p, 28),
        load<i32>(p, 32), load<i32>(p, 36), load<i32>(p, 40), load<i32>(p, 44), load<f32>(p, 48), load<i32>(p, 52), tmp, h, h + 1, load<i32>(p, 60), load<i32>(p, 64), tA, tB,
      );
    }
  }
}

import { f16round } from "./common";

// ---------------------------------------------------------------------------------------------
// Attention scores (pass (1) of attention.ts attendBody): s_j = f32(q·k_j) · scale, in f32.
//
// The dot of a query head (hd f32) with a key row sums lane i % 4 of each 4 dims separately,
//   l_r = f32(l_r + f32(q_i · k_ji))  over i ≡ r (mod 4), in order,   dot = (l0 + l2) + (l1 + l3)
// as ggml_vec_dot_f16 (llama.cpp's flash attention) sums in f32 lanes. With an F16 cache q is
// rounded to fp16 and k is fp16: every product of two fp16 values is exact in f32 (11 + 11 bits),
// so f32x4.relaxed_madd gives the bits of the multiply-then-add whether it is fused or not — the
// same scores on every machine. With an F32 cache the product rounds: a multiply then an add
// (EXACT = false). src/engine/attention.ts does the same in TypeScript (fround after each op).
//
// Shapes: q (hd) f32 per query; keys f32 rows kRow bytes apart (the cache), or a block of them
// copied by keysBlock into groups of 4 positions (each 4 dims of the group's 4 positions are 64
// contiguous bytes: one pointer and immediate offsets in the loop); scores (n) f32.

/** acc + q·k, lane by lane: relaxed_madd when the products are exact (F16), else multiply then add. */
// @ts-expect-error: AssemblyScript decorator
@inline
function madd(EXACT: bool, q: v128, k: v128, acc: v128): v128 {
  return EXACT ? f32x4.relaxed_madd(q, k, acc) : f32x4.add(acc, f32x4.mul(q, k));
}

/** [(l0 + l2) + (l1 + l3)] of the four positions' lane sums a0..a3, times scale. */
// @ts-expect-error: AssemblyScript decorator
@inline
function reduce4(a0: v128, a1: v128, a2: v128, a3: v128, scale: v128): v128 {
  const u01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 1, 4, 5), v128.shuffle<f32>(a0, a1, 2, 3, 6, 7));
  const u23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 1, 4, 5), v128.shuffle<f32>(a2, a3, 2, 3, 6, 7));
  return f32x4.mul(f32x4.add(v128.shuffle<f32>(u01, u23, 0, 2, 4, 6), v128.shuffle<f32>(u01, u23, 1, 3, 5, 7)), scale);
}

/** (l0 + l2) + (l1 + l3) of one position's lane sums, times scale. */
// @ts-expect-error: AssemblyScript decorator
@inline
function reduce1(a: v128, scale: f32): f32 {
  return ((f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 2)) + (f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 3))) * scale;
}

/** Query head qp (hd f32) to qd, rounded to fp16 for an F16 cache. */
// @ts-expect-error: AssemblyScript decorator
@inline
export function queryRow(qp: usize, qd: usize, hd: i32, f16: bool): void {
  for (let i = 0; i < hd; i++) {
    const x = load<f32>(qp + (<usize>i << 2));
    store<f32>(qd + (<usize>i << 2), f16 ? f16round(x) : x);
  }
}

/** Scores of one query (qd) against positions [0, nKv) of the keys at kp (rows kRow bytes apart) into sc. */
// @ts-expect-error: AssemblyScript decorator
@inline
export function scoresRows(EXACT: bool, qd: usize, kp: usize, kRow: usize, nKv: i32, hd: i32, sc: usize, scale: f32): void {
  const scale4 = f32x4.splat(scale);
  let j = 0;
  for (; j + 4 <= nKv; j += 4, kp += kRow << 2) {
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    const k1 = kp + kRow;
    const k2 = k1 + kRow;
    const k3 = k2 + kRow;
    for (let i = 0; i < hd; i += 4) {
      const o = <usize>i << 2;
      const q = v128.load(qd + o);
      a0 = madd(EXACT, q, v128.load(kp + o), a0);
      a1 = madd(EXACT, q, v128.load(k1 + o), a1);
      a2 = madd(EXACT, q, v128.load(k2 + o), a2);
      a3 = madd(EXACT, q, v128.load(k3 + o), a3);
    }
    v128.store(sc + (<usize>j << 2), reduce4(a0, a1, a2, a3, scale4));
  }
  for (; j < nKv; j++, kp += kRow) {
    let a = f32x4.splat(0);
    for (let i = 0; i < hd; i += 4) a = madd(EXACT, v128.load(qd + (<usize>i << 2)), v128.load(kp + (<usize>i << 2)), a);
    store<f32>(sc + (<usize>j << 2), reduce1(a, scale));
  }
}

/** Bytes of keysBlock's copy of n positions of hd dims (whole groups of 4 positions). */
// @ts-expect-error: AssemblyScript decorator
@inline
export function keysBlockBytes(n: i32, hd: i32): i32 {
  return ((n + 3) >> 2) * hd * 16;
}

/**
 * Keys [0, n) (f32 rows kRow bytes apart from kp) to kd in groups of 4 positions: key j's dims
 * i..i+3 at kd + (j >> 2)·16·hd + (i >> 2)·64 + (j & 3)·16. A last partial group is padded with
 * zeros (its scores are computed and never stored; zeros keep stale bits out of the arithmetic).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
export function keysBlock(kp: usize, kRow: usize, n: i32, hd: i32, kd: usize): void {
  for (let j = 0; j < n; j++, kp += kRow) {
    let o = kd + <usize>((j >> 2) * hd * 16 + (j & 3) * 16);
    for (let i = 0; i < hd; i += 4, o += 64) v128.store(o, v128.load(kp + (<usize>i << 2)));
  }
  for (let j = n; j & 3; j++) {
    let o = kd + <usize>((j >> 2) * hd * 16 + (j & 3) * 16);
    for (let i = 0; i < hd; i += 4, o += 64) v128.store(o, f32x4.splat(0));
  }
}

/** Stores the first m (1..3, or 4) of four scores r at sp. */
// @ts-expect-error: AssemblyScript decorator
@inline
function storeScores(sp: usize, r: v128, m: i32): void {
  if (m >= 4) v128.store(sp, r);
  else {
    store<f32>(sp, f32x4.extract_lane(r, 0));
    if (m > 1) store<f32>(sp, f32x4.extract_lane(r, 1), 4);
    if (m > 2) store<f32>(sp, f32x4.extract_lane(r, 2), 8);
  }
}

/**
 * Scores of two queries (qa, qb; Q2 = false: qa alone) against a key block from keysBlock: query a
 * sees the block's first ma positions, b its first mb (ma, mb ≤ the block's positions; the pair
 * walks max(ma, mb) of them, 4 at a time, and stores each query's own) into sa, sb. The two queries
 * share every key load: 2 query + 4 key loads per 8 relaxed_madd (32 products).
 */
// @ts-expect-error: AssemblyScript decorator
@inline
export function scoresBlock(
  EXACT: bool, Q2: bool, qa: usize, qb: usize, kd: usize, ma: i32, mb: i32, hd: i32, sa: usize, sb: usize, scale: f32,
): void {
  const scale4 = f32x4.splat(scale);
  const n = Q2 ? max(ma, mb) : ma;
  const groupBytes = <usize>hd << 4;
  let kg = kd;
  for (let j = 0; j < n; j += 4, kg += groupBytes) {
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    let b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    let kq = kg;
    for (let i = 0; i < hd; i += 4, kq += 64) {
      const o = <usize>i << 2;
      const k0 = v128.load(kq);
      const k1 = v128.load(kq, 16);
      const k2 = v128.load(kq, 32);
      const k3 = v128.load(kq, 48);
      const q = v128.load(qa + o);
      a0 = madd(EXACT, q, k0, a0);
      a1 = madd(EXACT, q, k1, a1);
      a2 = madd(EXACT, q, k2, a2);
      a3 = madd(EXACT, q, k3, a3);
      if (Q2) {
        const r = v128.load(qb + o);
        b0 = madd(EXACT, r, k0, b0);
        b1 = madd(EXACT, r, k1, b1);
        b2 = madd(EXACT, r, k2, b2);
        b3 = madd(EXACT, r, k3, b3);
      }
    }
    const off = <usize>j << 2;
    if (j < ma) storeScores(sa + off, reduce4(a0, a1, a2, a3, scale4), ma - j);
    if (Q2 && j < mb) storeScores(sb + off, reduce4(b0, b1, b2, b3, scale4), mb - j);
  }
}

/** The scalar twin of one score: query qd (f32) · the key at kp, times scale. */
// @ts-expect-error: AssemblyScript decorator
@inline
export function scoreGeneric(qd: usize, kp: usize, hd: i32, scale: f32): f32 {
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let i = 0; i < hd; i += 4) {
    const kq = kp + (<usize>i << 2);
    const qi = qd + (<usize>i << 2);
    s0 = s0 + load<f32>(qi) * load<f32>(kq);
    s1 = s1 + load<f32>(qi, 4) * load<f32>(kq, 4);
    s2 = s2 + load<f32>(qi, 8) * load<f32>(kq, 8);
    s3 = s3 + load<f32>(qi, 12) * load<f32>(kq, 12);
  }
  return ((s0 + s2) + (s1 + s3)) * scale;
}

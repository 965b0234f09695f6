// WASM attention over the KV cache: the SIMD kernel against its scalar twin and against the
// TypeScript attention of the fast path (src/engine/attention.ts) — all bit-identical — and
// against a float64 softmax reference (NMSE bound: the fp16 cache/accumulator rounding), for F16
// and F32 caches, grouped-query heads, chunks of several tokens at an offset, cache growth, and
// heads split among 2 threads, and the fused multiply-add variant (where the machine has one) against
// the f64 emulation (the same bits); and the exp of the softmax: the kernels' SIMD exp against
// their NativeMath.exp and the TypeScript side's fround(Math.exp) (the same f32 bits).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kernels } from "../../src/kernels/index.ts";
import { attendChunk } from "../../src/engine/attention.ts";
import { KVCache, type KVCacheType } from "../../src/engine/kv-cache.ts";
import type { ModelConfig } from "../../src/engine/model-config.ts";
import { Scratch } from "../../src/engine/ops.ts";
import { mulberry32 as rng } from "../helpers/random.ts";


function bitEqual(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** float64 softmax attention of query row t (position pos) over the cache's values. */
function reference(c: ModelConfig, q: Float32Array, t: number, pos: number, kv: KVCache, l: number): Float64Array {
  const { nHead, nHeadKv, headDim: hd, headDimV: hdv } = c;
  const out = new Float64Array(nHead * hdv);
  const group = nHead / nHeadKv;
  for (let h = 0; h < nHead; h++) {
    const kvh = Math.floor(h / group);
    const sc: number[] = [];
    for (let j = 0; j <= pos; j++) {
      let d = 0;
      for (let i = 0; i < hd; i++) d += q[t * nHead * hd + h * hd + i] * kv.k[l][kv.kOffset(j, kvh) + i];
      sc.push(d / Math.sqrt(hd));
    }
    const m = Math.max(...sc);
    let sum = 0;
    for (const s of sc) sum += Math.exp(s - m);
    for (let j = 0; j <= pos; j++) {
      const w = Math.exp(sc[j] - m) / sum;
      for (let d = 0; d < hdv; d++) out[h * hdv + d] += w * kv.v[l][kv.vOffset(j, kvh) + d];
    }
  }
  return out;
}

const CASES: Array<{ nHead: number; nHeadKv: number; hd: number; hdv: number; type: KVCacheType }> = [
  { nHead: 9, nHeadKv: 3, hd: 64, hdv: 64, type: "f16" },
  { nHead: 4, nHeadKv: 4, hd: 32, hdv: 16, type: "f16" },
  { nHead: 6, nHeadKv: 2, hd: 8, hdv: 8, type: "f32" },
  { nHead: 2, nHeadKv: 1, hd: 128, hdv: 128, type: "f32" },
];

for (const { nHead, nHeadKv, hd, hdv, type } of CASES) {
  test(`attention ${type} (${nHead}/${nHeadKv} heads, ${hd}/${hdv}): SIMD == scalar twin == TS, ≈ float64`, () => {
    const r = rng(nHead * 1000 + hd * 7 + (type === "f16" ? 1 : 2));
    const c = { nHead, nHeadKv, headDim: hd, headDimV: hdv } as ModelConfig;
    const kDim = nHeadKv * hd;
    const vDim = nHeadKv * hdv;
    const simd = new Kernels({ threads: 1 });
    const twin = new Kernels({ threads: 1, generic: true });
    const threaded = new Kernels({ threads: 2 });
    const noFma = new Kernels({ threads: 1, fma: false }); // the f64 emulation of the FMA
    const nLayers = 2;
    const caches = Array.from({ length: 5 }, () => new KVCache(nLayers, kDim, vDim, 4096, type, 8, nHeadKv));
    caches[4].attach(noFma.mem);
    caches[0].attach(simd.mem);
    caches[1].attach(twin.mem);
    caches[3].attach(threaded.mem);
    const scratch = new Scratch();
    let pos0 = 0;
    // chunks: a prefill, single tokens, a chunk again; scores spread wide enough that the
    // running max changes often, and some tiny values (fp16 subnormals) in the values; the last
    // chunk's keys span several key blocks (assembly/attention.ts KBLOCK) and end mid-group
    for (const nTok of [13, 1, 1, 40, 1, 7, 70]) {
      const amp = 0.5 + r() * 3;
      const q = new Float32Array(nTok * nHead * hd).map(() => (r() * 2 - 1) * amp);
      const k = new Float32Array(nTok * kDim).map(() => (r() * 2 - 1) * amp);
      const v = new Float32Array(nTok * vDim).map(() => (r() < 0.05 ? (r() - 0.5) * 1e-5 : (r() * 2 - 1) * 2));
      const outs: Float32Array[] = [];
      for (const [i, kv] of caches.entries()) {
        kv.reserve(pos0 + nTok);
        const out = new Float32Array(nTok * nHead * hdv);
        for (let l = 0; l < nLayers; l++) {
          kv.write(l, pos0, nTok, k, v, 0);
          if (i === 2) attendChunk(c, q, out, 0, nTok, pos0, kv, l, scratch);
          else [simd, twin, undefined, threaded, noFma][i]!.attend(c, q, out, 0, nTok, pos0, kv.kPtr[l], kv.vPtr[l], kv.kRow, kv.vRow, type === "f16", kv.kHeadStride, kv.vHeadStride);
        }
        kv.length = pos0 + nTok;
        outs.push(out);
      }
      assert.ok(bitEqual(outs[0], outs[1]), `SIMD vs scalar twin at pos0 ${pos0}`);
      assert.ok(bitEqual(outs[0], outs[2]), `SIMD vs TypeScript at pos0 ${pos0}`);
      assert.ok(bitEqual(outs[0], outs[3]), `1 thread vs 2 threads at pos0 ${pos0}`);
      assert.ok(bitEqual(outs[0], outs[4]), `fused multiply-add vs its f64 emulation at pos0 ${pos0}`);
      let num = 0;
      let den = 0;
      for (let t = 0; t < nTok; t++) {
        const want = reference(c, q, t, pos0 + t, caches[2], nLayers - 1);
        for (let i = 0; i < want.length; i++) {
          num += (outs[0][t * nHead * hdv + i] - want[i]) ** 2;
          den += want[i] ** 2;
        }
      }
      assert.ok(num / den < (type === "f16" ? 1e-5 : 1e-12), `NMSE ${num / den}`);
      pos0 += nTok;
    }
    for (const kv of caches) kv.free();
  });
}

test("softmax exp: SIMD == NativeMath.exp == fround(Math.exp) in f32", () => {
  const k = new Kernels({ threads: 1 });
  const ex = k.mem.exports as unknown as { attend_exp(p: number, n: number): void; attend_exp_generic(p: number, n: number): void };
  const r = rng(77);
  const special = [0, -0, -Infinity, NaN, -1e30, -745, -200, -150, -104, -103.97, -87.3, -1, -0.5, -1e-30, -(2 ** -149), -(2 ** -54)];
  const n = (1 << 20) + 3; // (+3: the scalar tail)
  const x = new Float32Array(n).map((_, i) => (i < special.length ? special[i] : r() < 0.5 ? -r() * 110 : -r() * 4));
  const pa = k.mem.alloc(n * 4);
  const pb = k.mem.alloc(n * 4);
  const simd = new Float32Array(k.mem.memory.buffer, pa, n);
  const generic = new Float32Array(k.mem.memory.buffer, pb, n);
  simd.set(x);
  generic.set(x);
  ex.attend_exp(pa, n);
  ex.attend_exp_generic(pb, n);
  for (let i = 0; i < n; i++) {
    const want = Math.fround(Math.exp(x[i]));
    assert.ok(Object.is(simd[i], want) && Object.is(generic[i], want), `exp(${x[i]}): SIMD ${simd[i]}, NativeMath ${generic[i]}, TS ${want}`);
  }
});

test("fp16 rounding by Veltkamp's split (the accumulator's fast path) == Math.f16round over the normal fp16 range", () => {
  // every f32 of either sign with |x| in [2^-14, 65520) in 2^-14's binade and the top one, and every
  // 13th in between (the property is checked exhaustively — 503,308,288 values — where it was derived)
  const k = new Kernels({ threads: 1 });
  const ex = k.mem.exports as unknown as { attend_f16round_v(p: number, n: number): void };
  const lo = 0x38800000;
  const hi = 0x477ff000;
  const n = 1 << 22;
  const p = k.mem.alloc(n * 4);
  const bits = new Uint32Array(k.mem.memory.buffer, p, n);
  const f = new Float32Array(k.mem.memory.buffer, p, n);
  const x = new Float32Array(n);
  const xb = new Uint32Array(x.buffer);
  let b = lo;
  let checked = 0;
  const step = (v: number): number => (v < lo + (1 << 23) || v >= 0x47000000 ? 1 : 13);
  while (b < hi) {
    let m = 0;
    for (; m < n && b < hi; m += 2, b += step(b)) {
      xb[m] = b;
      xb[m + 1] = (b | 0x80000000) >>> 0;
    }
    for (; m % 4 !== 0; m++) xb[m] = lo; // pad to a multiple of 4
    bits.set(xb.subarray(0, m));
    ex.attend_f16round_v(p, m);
    for (let i = 0; i < m; i++) {
      if (f[i] !== Math.f16round(x[i])) assert.fail(`f16roundV(${x[i]}) = ${f[i]}, f16round: ${Math.f16round(x[i])}`);
    }
    checked += m;
  }
  assert.ok(checked > 60e6, `${checked} values`);
});

test("a KV cache attached to kernel memory keeps its contents, grows there and gives blocks back", () => {
  const k = new Kernels({ threads: 1 });
  const kv = new KVCache(2, 4, 4, 100, "f16", 4);
  const row = Float32Array.of(1 / 3, 2, -3, 4);
  kv.write(1, 2, 1, row, row, 0);
  kv.length = 3;
  kv.attach(k.mem);
  assert.deepEqual([...kv.k[1].subarray(8, 12)], [...row].map((x) => Math.f16round(x)));
  kv.reserve(50);
  assert.equal(kv.capacity, 64);
  assert.deepEqual([...kv.v[1].subarray(8, 12)], [...row].map((x) => Math.f16round(x)));
  assert.ok(kv.k[1].buffer instanceof SharedArrayBuffer);
  assert.equal(kv.kPtr[1], kv.k[1].byteOffset);
  const used = k.mem.used;
  kv.free();
  const again = new KVCache(2, 4, 4, 100, "f16", 64);
  again.attach(k.mem);
  assert.equal(k.mem.used, used, "the freed block is reused");
});

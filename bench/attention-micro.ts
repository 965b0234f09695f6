// Prefill attention alone (not a test): one layer's causal attention of an N-token chunk at position 0
// on the kernels (the KV cache in kernel memory), at each thread count given, medians of alternating
// runs. With --base <checkout> (a git worktree of another commit, its kernels built) that checkout's
// kernels run the same layer alternately with ours: the ratio and whether the output bits agree.
//   npm run bench:attention -- [--heads 9/3] [--hd 64] [--tokens 512] [--threads 1,2] [--type f16|f32] [--runs 5] [--base DIR]
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { KVCacheType } from "../src/engine/kv-cache.ts";
import { arg } from "./arg.ts";

type Mods = { Kernels: typeof import("../src/kernels/index.ts").Kernels; KVCache: typeof import("../src/engine/kv-cache.ts").KVCache };
const load = async (root: string): Promise<Mods> => ({
  Kernels: (await import(pathToFileURL(resolve(root, "src/kernels/index.ts")).href)).Kernels,
  KVCache: (await import(pathToFileURL(resolve(root, "src/engine/kv-cache.ts")).href)).KVCache,
});

const [nHead, nHeadKv] = arg("heads", "9/3").split("/").map(Number);
const hd = Number(arg("hd", "64"));
const N = Number(arg("tokens", "512"));
const type = arg("type", "f16") as KVCacheType;
const runs = Number(arg("runs", "5"));
const threadCounts = arg("threads", "1").split(",").map(Number);
const base = arg("base", "");
const kDim = nHeadKv * hd;
let s = 1;
const r = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const q = new Float32Array(N * nHead * hd).map(() => r());
const kk = new Float32Array(N * kDim).map(() => r());
const vv = new Float32Array(N * kDim).map(() => r());

/** A timed layer on one checkout's kernels: returns ms and the output's hash. */
function setup(m: Mods, threads: number): () => [number, string] {
  const k = new m.Kernels({ threads });
  const kv = new m.KVCache(1, kDim, kDim, N, type, N, nHeadKv);
  kv.attach(k.mem);
  kv.write(0, 0, N, kk, vv, 0);
  const out = new Float32Array(N * nHead * hd);
  return () => {
    const t0 = performance.now();
    k.attend({ nHead, nHeadKv, headDim: hd, headDimV: hd }, q, out, 0, N, 0, kv.kPtr[0], kv.vPtr[0], kv.kRow, kv.vRow, type === "f16", kv.kHeadStride, kv.vHeadStride);
    const ms = performance.now() - t0;
    let h = 0;
    for (const x of new Uint32Array(out.buffer)) h = (Math.imul(h, 31) + x) | 0;
    return [ms, (h >>> 0).toString(16)];
  };
}
const mine = await load(".");
const other = base ? await load(base) : undefined;
// one setup per thread count (ours, then the base's), run alternately
const cases = threadCounts.flatMap((t) => [{ name: "ours", t, f: setup(mine, t) }, ...(other ? [{ name: "base", t, f: setup(other, t) }] : [])]);
// warm-up: V8's tier-up, and the pool's workers started (that takes a while on this machine)
for (const t0 = performance.now(); performance.now() - t0 < 1500; ) for (const c of cases) c.f();
const times: number[][] = cases.map(() => []);
const hashes: string[] = [];
for (let i = 0; i < runs; i++) {
  for (const [w, c] of cases.entries()) {
    const [ms, h] = c.f();
    hashes[w] = h;
    times[w].push(ms);
  }
}
const med = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1];
const macs = (nHead * (N * (N + 1)) / 2) * hd * 2;
console.log(`${nHead}/${nHeadKv} heads hd ${hd}, ${N} tokens, ${type} cache (medians of ${runs}):`);
for (const [w, c] of cases.entries()) {
  const ms = med(times[w]);
  const vsBase = c.name === "ours" && other ? `, ×${(med(times[w + 1]) / ms).toFixed(2)} vs base${hashes[w + 1] === hashes[w] ? " (same bits)" : " (DIFFERENT bits)"}` : "";
  const vs1 = c.t !== cases[0].t ? `, ×${(med(times[cases.findIndex((d) => d.name === c.name)]) / ms).toFixed(2)} vs ${cases[0].t} thread(s)` : "";
  console.log(`  ${c.name} ${c.t} thread(s): ${ms.toFixed(1)} ms per layer (${(macs / ms / 1e6).toFixed(2)} GMAC/s), hash ${hashes[w]}${vsBase}${vs1}`);
}

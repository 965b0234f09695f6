// A/B benchmark of the matmul kernels (not a test): this tree's kernels against another checkout's
// (a git worktree of an older commit), in one process, alternating, on the same weights — the way to
// see a kernel change through this shared machine's noise, which moves absolute speeds by ±50%
// from one minute to the next but hits both sides of an alternating pair alike.
//
//   git worktree add /tmp/base <commit> && ln -s "$PWD/node_modules" /tmp/base/node_modules
//   (cd /tmp/base && node src/kernels/build.ts)
//   node bench/ab-kernels.ts /tmp/base [--types Q8_0,Q4_K] [--shapes 576x1536x1,2048x2048x24] [--tokens 1,4,16]
//
// A shape COLSxROWSxCOUNT packs COUNT copies of one COLS×ROWS matrix: 1 copy of a small matrix is
// served from L2, 24 copies of 2048×2048 (~100 MB) from DRAM as in decode. One thread, CPU-bound
// kernel calls only (no engine). Prints GMAC/s per side (median and best of 15 alternating rounds)
// and the ratio of the medians.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { quantize } from "../src/gguf/formats/index.ts";
import { GGMLType } from "../src/gguf/types.ts";
import * as here from "../src/kernels/index.ts";
import { arg } from "./arg.ts";

const base = process.argv[2];
if (!base || base.startsWith("--")) {
  console.error("usage: node bench/ab-kernels.ts <other checkout> [--types ..] [--shapes ..] [--tokens ..]");
  process.exit(2);
}
const TYPES = arg("types", "Q8_0,Q4_K,Q5_0").split(",");
const SHAPES = arg("shapes", "576x1536x1,576x1536x30,2048x2048x24").split(",").map((s) => s.split("x").map(Number));
const TOKENS = arg("tokens", "1,4,16").split(",").map(Number);

const other = (await import(pathToFileURL(resolve(base, "src/kernels/index.ts")).href)) as typeof here;
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1];
let seed = 1;
const rnd = (): number => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32 - 0.5;
};

console.log(`# kernels A/B: base ${resolve(base)} vs this tree, 1 thread\n`);
console.log("| type | shape | tokens | base GMAC/s | this GMAC/s | this/base |");
console.log("|---|---|---|---|---|---|");
for (const name of TYPES) {
  const type = GGMLType[name as keyof typeof GGMLType];
  for (const [nCols, nRows, count] of SHAPES) {
    const bytes = quantize(type, new Float32Array(nCols * nRows).map(() => rnd()));
    const sides = [other, here].map((K) => {
      const k = new K.Kernels({ threads: 1 });
      return { k, Ws: Array.from({ length: count }, () => k.pack(type, nCols, nRows, bytes)) };
    });
    for (const nTok of TOKENS) {
      const x = new Float32Array(nCols * nTok).map(() => rnd());
      const runs = sides.map(({ k, Ws }) => {
        const a = k.input(x, nTok, nCols, Ws[0].act, "x");
        const y = new Float32Array(nTok * nRows);
        return () => {
          for (const W of Ws) k.matmul(W, a, y);
        };
      });
      const reps = Math.max(1, Math.round(2e8 / (nCols * nRows * count * nTok)));
      const ts: number[][] = [[], []];
      for (let r = 0; r < 3; r++) for (const run of runs) run(); // warm-up (and the kernels' tier-up)
      for (let r = 0; r < 15; r++) {
        for (let s = 0; s < 2; s++) {
          const t0 = performance.now();
          for (let i = 0; i < reps; i++) runs[s]();
          ts[s].push((performance.now() - t0) / reps);
        }
      }
      const g = (ms: number): string => ((nCols * nRows * count * nTok) / ms / 1e6).toFixed(2);
      console.log(`| ${name} | ${nCols}×${nRows} ×${count} | ${nTok} | ${g(median(ts[0]))} (best ${g(Math.min(...ts[0]))}) | ${g(median(ts[1]))} (best ${g(Math.min(...ts[1]))}) | ${(median(ts[0]) / median(ts[1])).toFixed(2)} |`);
    }
    for (const { k } of sides) k.dispose();
  }
}
process.exit(0);

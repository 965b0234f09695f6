// A/B benchmark of engine prefill (not a test): this tree's engine against another checkout's (a git
// worktree of an older commit, kernels built), both loaded in one process on the same GGUF file and
// thread count, timed alternately so that the shared machine's drift hits both alike. Prints the
// median prefill tok/s of each side, their ratio, and every round.
//
//   git worktree add /tmp/base <commit> && ln -s "$PWD/node_modules" /tmp/base/node_modules
//   (cd /tmp/base && node src/kernels/build.ts)
//   node bench/ab-prefill.ts /tmp/base <model.gguf> [--threads 2] [--prompt 512] [--rounds 5]
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { openGGUF } from "../src/gguf/reader.ts";
import * as here from "../src/engine/engine.ts";
import { median, syntheticPrompt } from "../src/engine/speed.ts";
import { arg } from "./arg.ts";

const [base, file] = process.argv.slice(2);
if (!base || !file || base.startsWith("--") || file.startsWith("--")) {
  console.error("usage: node bench/ab-prefill.ts <other checkout> <model.gguf> [--threads N] [--prompt N] [--rounds N]");
  process.exit(2);
}
const THREADS = Number(arg("threads", "2"));
const PROMPT = Number(arg("prompt", "512"));
const ROUNDS = Number(arg("rounds", "5"));

const other = (await import(pathToFileURL(resolve(base, "src/engine/engine.ts")).href)) as typeof here;
const engines = [other.Engine, here.Engine].map((E) => {
  const g = openGGUF(file);
  try {
    return E.load(g, { threads: THREADS, maxContext: PROMPT + 8 });
  } finally {
    g.close();
  }
});
const prompt = syntheticPrompt(PROMPT, engines[1].config.nVocab, 7); // llmesh bench's prompt
const rates: number[][] = [[], []];
for (let r = -1; r < ROUNDS; r++) {
  for (const [k, e] of engines.entries()) {
    const seq = e.createSequence();
    const t0 = performance.now();
    e.forward([{ seq, tokens: prompt }]);
    const ms = performance.now() - t0;
    e.freeSequence(seq);
    if (r >= 0) rates[k].push(PROMPT / (ms / 1000)); // round -1 is the warm-up
  }
}
const [b, t] = rates.map(median);
console.log(`${file}, ${THREADS} thread(s), ${PROMPT}-token prefill: base ${b.toFixed(1)} tok/s, this ${t.toFixed(1)} tok/s, this/base ${(t / b).toFixed(2)}`);
console.log(`  base rounds: ${rates[0].map((v) => v.toFixed(1)).join(" ")}\n  this rounds: ${rates[1].map((v) => v.toFixed(1)).join(" ")}`);
process.exit(0);

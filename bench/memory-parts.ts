// A model whose weights do not fit one kernel memory's budget, against llama.cpp (not a test: it
// needs gigabytes). Writes (once) a synthetic model with `llmesh synth`, loads it with llmesh split
// into kernel memories of at most --part-gib GiB of weights each (default 2.5: the first memory then
// uses addresses past 2 GiB, where int32 arithmetic would break), decodes greedily from a prompt, and
// compares the tokens with llama.cpp's (node-llama-cpp, CPU) on the same file.
//
//   node bench/memory-parts.ts [--shape llama-3.2-3b] [--type Q8_0] [--part-gib 2.5] [--tokens 16] [--threads 2]
import { Engine } from "../src/engine/engine.ts";
import { modelFile } from "./synth-cache.ts";
import { argmax } from "../src/engine/sampling.ts";
import { openGGUF } from "../src/gguf/reader.ts";
import { arg } from "./arg.ts";

const SHAPE = arg("shape", "llama-3.2-3b");
const TYPE = arg("type", "Q8_0");
const PART_GIB = Number(arg("part-gib", "2.5"));
const N = Number(arg("tokens", "16"));
const THREADS = Number(arg("threads", "2"));

const file = modelFile(SHAPE, TYPE);
const prompt = [1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203];

const g = openGGUF(file);
const t0 = performance.now();
const e = await Engine.loadAsync(g, { threads: THREADS, maxContext: 64, partWeightBytes: PART_GIB * 2 ** 30 });
const loadS = (performance.now() - t0) / 1000;
g.close();
const seq = e.createSequence();
const ours: number[] = [];
let [l] = e.forward([{ seq, tokens: prompt }]);
const t1 = performance.now();
for (let i = 0; i < N; i++) {
  ours.push(argmax(l));
  if (i < N - 1) [l] = e.forward([{ seq, tokens: [ours[i]] }]);
}
const tokS = (N - 1) / ((performance.now() - t1) / 1000);
const parts = e.partRanges.map((r, i) => `[${r.start}, ${r.end}) ${(e.partUsedBytes[i] / 2 ** 30).toFixed(2)} GiB`);
const peak = (process.resourceUsage().maxRSS * 1024) / 2 ** 30;
e.dispose();

const { getLlama } = await import("node-llama-cpp");
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" } as Parameters<typeof getLlama>[0] & object);
const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
const ctx = await model.createContext({ contextSize: 64, sequences: 1, threads: THREADS });
const theirs: number[] = [];
for await (const t of ctx.getSequence().evaluate(prompt as never, { temperature: 0 })) {
  theirs.push(t as unknown as number);
  if (theirs.length >= N) break;
}
await ctx.dispose();
await model.dispose();

const same = ours.every((t, i) => t === theirs[i]);
console.log(`${SHAPE} ${TYPE}: kernel memories ${parts.join(", ")}; loaded in ${loadS.toFixed(1)} s; decode ${tokS.toFixed(2)} tok/s (${THREADS} threads); peak RSS ${peak.toFixed(2)} GiB`);
console.log(`llmesh:    ${ours.join(" ")}`);
console.log(`llama.cpp: ${theirs.join(" ")}`);
console.log(same ? `greedy tokens identical (${N})` : "greedy tokens DIFFER");
process.exit(same ? 0 : 1);

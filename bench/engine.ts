// Engine benchmark (not a test): decode and prefill speed of llmesh's WASM kernels against
// llama.cpp (node-llama-cpp, CPU) on the same synthetic GGUF files and thread counts, plus the
// weight bandwidth achieved in decode against the machine's measured read bandwidth.
//
//   npm run bench -- [--shapes smollm2-135m,qwen2.5-0.5b,llama-3.2-1b] [--types Q8_0,Q4_K]
//                    [--threads 1,2] [--runs 3] [--decode 128] [--prompt 512] [--no-llama] [--batch 16]
//
// --batch N adds llmesh's aggregate decode speed with N sequences decoding together (one batched
// forward per step, as the gateway's continuous batching runs them; 32-token prompts, 32 steps)
// next to the same measurement for 1 sequence.
//
// --kernels [--types Q8_0,Q5_0,Q4_K,...] instead times the WASM kernels alone on one thread (CPU
// time, the fastest of 7 rounds after a warm-up): a 1536×576 matmul (smollm2's ffn_up) at 1, 2, 4 and 16
// tokens in GMAC/s, and the attention kernel (9/3 heads of 64, F16 cache, context 576) in ns per
// position and head.
//
// The peak RSS column comes from bench/peak-rss.ts run in a process of its own per model (load, a
// --prompt-token prefill, 8 decoded tokens): the process's maximum RSS, next to the weights' bytes,
// the KV cache's and Node's own RSS before loading.
//
// Synthetic models are written once with `llmesh synth` and cached under os.tmpdir()/llmesh-bench.
// Each figure is the median of --runs runs after warm-up runs; llmesh's and llama.cpp's runs are
// taken in back-to-back pairs, and each ratio is the median of the per-pair ratios (benchPair).
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Engine } from "../src/engine/engine.ts";
import { f16round } from "../src/engine/float16.ts";
import { quantize } from "../src/gguf/formats/index.ts";
import { openGGUF } from "../src/gguf/reader.ts";
import { GGMLType } from "../src/gguf/types.ts";
import { KernelMemory, Kernels } from "../src/kernels/index.ts";
import { modelFile } from "./synth-cache.ts";
import { arg } from "./arg.ts";
import { compareSpeed, decodeWeightBytes, median, syntheticPrompt, timeEngine, type Speed } from "../src/engine/speed.ts";
import { argmax } from "../src/engine/sampling.ts";
import { openLlamaCpp } from "../src/cli/llama-cpp.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

const SHAPES = arg("shapes", "smollm2-135m,qwen2.5-0.5b,llama-3.2-1b").split(",");
const TYPES = arg("types", "Q8_0,Q4_K").split(",");
const THREADS = arg("threads", "1,2").split(",").map(Number);
const RUNS = Number(arg("runs", "3"));
const DECODE = Number(arg("decode", "128"));
const PROMPT = Number(arg("prompt", "512"));
const LLAMA = !process.argv.includes("--no-llama");
const BATCH = Number(arg("batch", "0"));

/** Single-thread read bandwidth (GB/s): WASM SIMD streaming sum over 512 MiB, median of 5. */
function readBandwidth(): number {
  const mem = new KernelMemory();
  const n = 512 << 20;
  const p = mem.alloc(n);
  mem.u8.fill(1, p, p + n);
  const ts: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    mem.exports.stream_sum(p, n);
    ts.push(performance.now() - t0);
  }
  return n / (median(ts.slice(1)) / 1000) / 1e9;
}

/** Aggregate decode tok/s of n sequences stepping together (32-token prompts, 32 steps), median of RUNS. */
function batchDecode(e: Engine, n: number): number {
  const vocab = e.config.nVocab;
  const run = (steps: number): number => {
    const seqs = Array.from({ length: n }, () => e.createSequence());
    let ls = e.forward(seqs.map((seq, i) => ({ seq, tokens: syntheticPrompt(32, vocab, 100 + i) })));
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) ls = e.forward(seqs.map((seq, i) => ({ seq, tokens: [argmax(ls[i])] })));
    const dt = (performance.now() - t0) / 1000;
    for (const seq of seqs) e.freeSequence(seq);
    return (n * steps) / dt;
  };
  run(4); // warm-up
  return median(Array.from({ length: RUNS }, () => run(32)));
}

/** One llmesh engine on the file: `run` times a prefill of nPrompt tokens, then nDecode greedy steps. */
function openLlmesh(file: string, threads: number): { run: (nPrompt: number, nDecode: number) => Speed; engine: Engine; weightBytes: number } {
  const g = openGGUF(file);
  const e = Engine.load(g, { threads, maxContext: PROMPT + DECODE + 8 });
  g.close();
  return { run: (nPrompt, nDecode) => timeEngine(e, nPrompt, nDecode), engine: e, weightBytes: decodeWeightBytes(g) };
}

/** bench/peak-rss.ts in a process of its own: the engine's peak RSS against weights + KV + Node's base. */
function peakRss(file: string, threads: number): { peakMiB: number; baseMiB: number; weightsMiB: number; kvMiB: number; kernelMiB: number } {
  const out = execFileSync(process.execPath, [join(ROOT, "bench/peak-rss.ts"), file, String(threads), String(PROMPT)], { encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").at(-1)!) as ReturnType<typeof peakRss>;
}

/**
 * llmesh and llama.cpp on one file, side by side (compareSpeed: warm-ups, then RUNS back-to-back
 * pairs alternating which goes first; ratios are the medians of the per-pair ratios).
 */
async function benchPair(file: string, threads: number) {
  const m = openLlmesh(file, threads);
  const l = LLAMA ? await openLlamaCpp(file, threads, PROMPT + DECODE + 16, m.engine.config.nVocab) : undefined;
  const c = await compareSpeed(m.run, l?.run, PROMPT, DECODE, RUNS);
  if (l) await l.dispose();
  const batch1 = BATCH > 0 ? batchDecode(m.engine, 1) : 0;
  const batchN = BATCH > 0 ? batchDecode(m.engine, BATCH) : 0;
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  m.engine.dispose(); // its kernel memory is reused by the next model's engine
  return {
    llmesh: c.ours,
    llama: c.theirs,
    ratio: c.ratio,
    weightBytes: m.weightBytes, rssMiB, batch1, batchN,
  };
}

/**
 * CPU milliseconds of f(): the fastest of 7 rounds of `reps` calls, after a warm-up of 3 rounds
 * (on a shared machine the minimum is the estimate that other processes disturb least).
 */
function cpuMs(f: () => void, reps: number): number {
  for (let i = 0; i < 3 * reps; i++) f();
  let best = Infinity;
  for (let i = 0; i < 7; i++) {
    const t0 = process.cpuUsage().user;
    for (let j = 0; j < reps; j++) f();
    best = Math.min(best, (process.cpuUsage().user - t0) / 1000 / reps);
  }
  return best;
}

function benchKernels(): void {
  const k = new Kernels({ threads: 1 });
  let seed = 1;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  const nCols = 576;
  const nRows = 1536;
  const toks = [1, 2, 4, 8, 16, 64];
  console.log(`# WASM kernels, 1 thread, CPU time (relaxed int8 dot: ${k.relaxedDot}, FMA: ${k.fma})\n`);
  console.log(`| ${nRows}×${nCols} matmul | ${toks.map((t) => `${t} tok GMAC/s`).join(" | ")} |`);
  console.log(`|---|${toks.map(() => "---").join("|")}|`);
  for (const name of TYPES) {
    const type = GGMLType[name as keyof typeof GGMLType];
    const wf = new Float32Array(nCols * nRows).map(() => rnd() * 2);
    const W = k.pack(type, nCols, nRows, type === GGMLType.F32 ? new Uint8Array(wf.buffer) : quantize(type, wf));
    const cells = toks.map((nTok) => {
      const a = k.input(new Float32Array(nCols * nTok).map(() => rnd() * 2), nTok, nCols, W.act, "x");
      const y = new Float32Array(nTok * nRows);
      const ms = cpuMs(() => k.matmul(W, a, y), Math.max(4, Math.ceil(200 / nTok)));
      return ((nCols * nRows * nTok) / ms / 1e6).toFixed(1);
    });
    console.log(`| ${name} | ${cells.join(" | ")} |`);
  }
  const nHead = 9, nHeadKv = 3, hd = 64, ctx = 576;
  const kDim = nHeadKv * hd;
  const kp = k.mem.alloc(ctx * kDim * 4);
  const vp = k.mem.alloc(ctx * kDim * 4);
  const K = new Float32Array(k.mem.memory.buffer, kp, ctx * kDim);
  const V = new Float32Array(k.mem.memory.buffer, vp, ctx * kDim);
  for (let i = 0; i < K.length; i++) {
    K[i] = f16round(rnd() * 4);
    V[i] = f16round(rnd() * 2);
  }
  const q = new Float32Array(nHead * hd).map(() => rnd() * 4);
  const out = new Float32Array(nHead * hd);
  const cfg = { nHead, nHeadKv, headDim: hd, headDimV: hd };
  // the engine's head-major KV cache (n_head_kv, ctx, hd): kDim = hd, kHead = ctx·hd
  const ms = cpuMs(() => k.attend(cfg, q, out, 0, 1, ctx - 1, kp, vp, hd, hd, true, ctx * hd, ctx * hd), 60);
  console.log(`\nattention (${nHead}/${nHeadKv} heads of ${hd}, F16 cache, context ${ctx}, 1 token): ${((ms * 1e6) / nHead / ctx).toFixed(1)} ns per position and head`);
}

if (process.argv.includes("--kernels")) {
  // compile the kernels with the optimizing tier up front (with dynamic tiering, a loaded machine
  // can delay the tier-up past a short measurement and time the baseline compiler's code)
  setFlagsFromString("--no-wasm-dynamic-tiering");
  benchKernels();
  process.exit(0);
}

const bw = readBandwidth();
console.log(`# llmesh engine benchmark`);
console.log(`node ${process.version}, ${(await import("node:os")).cpus()[0].model}, ${(await import("node:os")).availableParallelism()} cores`);
console.log(`measured read bandwidth (1 thread, WASM SIMD streaming sum over 512 MiB): ${bw.toFixed(1)} GB/s`);
console.log(`decode: ${DECODE} tokens after the prompt; prefill: ${PROMPT}-token prompt; medians of ${RUNS} runs after a warm-up\n`);
const batchCols = BATCH > 0 ? ` llmesh 1 seq decode tok/s (short ctx) | llmesh ${BATCH} seqs decode tok/s (aggregate) | × 1 seq |` : "";
console.log(`| model | type | threads | llmesh decode tok/s | llama.cpp decode tok/s | decode ratio | llmesh prefill tok/s | llama.cpp prefill tok/s | prefill ratio | llmesh weight GB/s | % of bandwidth | peak RSS MiB (weights + KV + base) |${batchCols}`);
console.log(`|---|---|---|---|---|---|---|---|---|---|---|---|${BATCH > 0 ? "---|---|---|" : ""}`);
for (const shape of SHAPES) {
  for (const type of TYPES) {
    const file = modelFile(shape, type);
    for (const threads of THREADS) {
      const rss = peakRss(file, threads);
      const p = await benchPair(file, threads);
      const m = p.llmesh;
      const l = p.llama;
      const gbs = (p.weightBytes * m.decode) / 1e9;
      const f = (x: number): string => x.toFixed(1);
      const batch = BATCH > 0 ? ` ${f(p.batch1)} | ${f(p.batchN)} | ${(p.batchN / p.batch1).toFixed(2)} |` : "";
      console.log(`| ${shape} | ${type} | ${threads} | ${f(m.decode)} | ${l ? f(l.decode) : "–"} | ${p.ratio ? p.ratio.decode.toFixed(2) : "–"} | ${f(m.prefill)} | ${l ? f(l.prefill) : "–"} | ${p.ratio ? p.ratio.prefill.toFixed(2) : "–"} | ${gbs.toFixed(1)} | ${((100 * gbs) / bw).toFixed(0)}% | ${rss.peakMiB.toFixed(0)} (${rss.weightsMiB.toFixed(0)} + ${rss.kvMiB.toFixed(0)} + ${rss.baseMiB.toFixed(0)}) |${batch}`);
      console.error(`  (${shape} ${type} ${threads}t: file ${(statSync(file).size / 2 ** 20).toFixed(0)} MiB, process RSS ${p.rssMiB.toFixed(0)} MiB)`);
    }
  }
}

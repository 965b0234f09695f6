// `llmesh bench MODEL`: how fast this machine runs a model — prefill and decode tokens per second
// and the weight bandwidth decode reaches, per thread count — optionally side by side with
// llama.cpp on the same file (--vs-llama), the measurement bench/engine.ts records in BENCHMARKS.md.
import type { Command } from "commander";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { Presets, SingleBar } from "cli-progress";
import { Engine } from "../../engine/engine.ts";
import { compareSpeed, decodeWeightBytes, timeEngine, type Comparison, type Speed } from "../../engine/speed.ts";
import { openGGUF } from "../../gguf/reader.ts";
import { parseIntFlag, table } from "../format.ts";
import { openLlamaCpp, type LlamaCppRunner } from "../llama-cpp.ts";
import { loadProgress } from "../load-progress.ts";

interface BenchFlags { threads: string; prompt: number; decode: number; runs: number; vsLlama?: boolean; json?: boolean }

/** One thread count's result: medians of the runs; ratios are medians of back-to-back pairs. */
export interface BenchRow {
  threads: number;
  llmesh: Speed;
  /** Weight bytes a decode step reads × decode tok/s. */
  weightGBs: number;
  llama?: Speed;
  ratio?: Speed;
  /** The process's peak resident memory so far (MiB): the engine's weights, KV cache and Node itself, plus llama.cpp's with --vs-llama. */
  peakRssMiB: number;
}

function parseThreads(s: string): number[] {
  const ts = s.split(",").map((x) => Number(x.trim()));
  if (ts.length === 0 || ts.some((t) => !Number.isInteger(t) || t < 1)) throw new Error(`--threads must be a comma-separated list of positive integers, got "${s}"`);
  return ts;
}

/** Progress over the timed runs, on stderr when it is a terminal. */
function runsBar(total: number): { tick: (label: string) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { tick: () => {}, stop: () => {} };
  const bar = new SingleBar({ format: "bench [{bar}] {value}/{total} runs | {label} | {duration}s", stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  bar.start(total, 0, { label: "warm-up" });
  return { tick: (label) => bar.increment(1, { label }), stop: () => bar.stop() };
}

async function benchThreads(file: string, threads: number, f: BenchFlags): Promise<BenchRow> {
  const g = openGGUF(file);
  let e: Engine;
  const bytes = decodeWeightBytes(g);
  try {
    const bar = loadProgress(`loading ${basename(file)} (${threads} thread${threads > 1 ? "s" : ""})`);
    try {
      e = await Engine.loadAsync(g, { threads, maxContext: f.prompt + f.decode + 16 }, bar.update);
    } finally {
      bar.stop();
    }
  } finally {
    g.close();
  }
  let llama: LlamaCppRunner | undefined;
  try {
    if (f.vsLlama) llama = await openLlamaCpp(file, threads, f.prompt + f.decode + 16, e.config.nVocab);
    const progress = runsBar(f.runs * (llama ? 2 : 1));
    let c: Comparison;
    try {
      c = await compareSpeed((p, d) => timeEngine(e, p, d), llama?.run, f.prompt, f.decode, f.runs, progress.tick);
    } finally {
      progress.stop();
    }
    const row: BenchRow = { threads, llmesh: c.ours, weightGBs: (bytes * c.ours.decode) / 1e9, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
    if (c.theirs) {
      row.llama = c.theirs;
      row.ratio = c.ratio;
    }
    return row;
  } finally {
    await llama?.dispose();
    e.dispose();
  }
}

function render(rows: BenchRow[]): string {
  const vs = rows.some((r) => r.llama);
  const f1 = (x: number): string => x.toFixed(1);
  const head = ["threads", "prefill tok/s", "decode tok/s", "weights GB/s", "peak RSS MiB"];
  if (vs) head.push("llama.cpp prefill", "llama.cpp decode", "prefill ratio", "decode ratio");
  const body = rows.map((r) => {
    const cells = [String(r.threads), f1(r.llmesh.prefill), f1(r.llmesh.decode), r.weightGBs.toFixed(2), r.peakRssMiB.toFixed(0)];
    if (vs) cells.push(f1(r.llama!.prefill), f1(r.llama!.decode), r.ratio!.prefill.toFixed(2), r.ratio!.decode.toFixed(2));
    return cells;
  });
  return table([head, ...body]);
}

export function registerBench(program: Command): void {
  program
    .command("bench")
    .description("measure prefill and decode speed of a model on this machine (optionally against llama.cpp on the same file)")
    .argument("<model>", "GGUF model file")
    .option("--threads <list>", "comma-separated thread counts to measure", String(availableParallelism()))
    .option("--prompt <n>", "prompt tokens of each prefill", parseIntFlag("--prompt"), 512)
    .option("--decode <n>", "greedy tokens decoded after the prompt", parseIntFlag("--decode"), 128)
    .option("--runs <n>", "timed runs per thread count (medians are reported)", parseIntFlag("--runs"), 3)
    .option("--vs-llama", "also time llama.cpp (node-llama-cpp) on the same file and print the ratios")
    .option("--json", "machine-readable output (one JSON object per thread count)")
    .action(async (file: string, flags: BenchFlags) => {
      const threads = parseThreads(flags.threads);
      if (flags.prompt < 2) throw new Error(`--prompt must be at least 2, got ${flags.prompt}`);
      if (flags.decode < 1) throw new Error(`--decode must be at least 1, got ${flags.decode}`);
      if (flags.runs < 1) throw new Error(`--runs must be at least 1, got ${flags.runs}`);
      const rows: BenchRow[] = [];
      for (const t of threads) {
        const row = await benchThreads(file, t, flags);
        rows.push(row);
        if (flags.json) process.stdout.write(JSON.stringify(row) + "\n");
      }
      if (!flags.json) {
        process.stdout.write(`${basename(file)}: ${flags.prompt}-token prefill, ${flags.decode} decoded tokens, medians of ${flags.runs} run${flags.runs > 1 ? "s" : ""}\n\n`);
        process.stdout.write(render(rows) + "\n");
      }
    });
}

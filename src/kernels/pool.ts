// Worker threads that run matmul kernels on row ranges, in the kernel memory the main thread names.
//
// One process-wide pool. A job is published in a small SharedArrayBuffer control block:
//   the arguments, then ctrl[GO + i] = job number for each participating worker i; a worker spins
//   on its GO slot while a token is in flight (a hand-off through Atomics.wait costs 30–70 µs, too
//   much at ~200 matmuls per token) and falls back to Atomics.wait after SPIN_MS without work, so an
//   idle engine costs no CPU. It answers in ctrl[ACK + i]; the main thread computes the first row
//   range itself, then spins until every participating worker has answered.
// Small jobs (decode) split the rows into one fixed range per thread. Big jobs (prefill: matmuls of
// many tokens, attention over many positions) are cut into chunks of row groups that the threads
// claim one at a time from a shared counter (ctrl[NEXT]), so a thread slowed by the machine (a
// shared core, a noisy neighbour) takes fewer chunks instead of holding everyone at the barrier.
// Chunks are guided (each claim takes 1/(2·threads) of the rows left, down to a minimum): few
// claims while much is left, and a tail of small ones, so the threads finish within one small
// chunk of each other. (Fixed chunks of 1/8 of a thread's share left the main thread waiting ~7%
// of a 2-thread prefill for the worker's last chunk.)
// Either way each output element is computed by exactly one thread with the same code, whatever
// range it falls in, so results never depend on the thread count, the chunking or timing.
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { kernelModule, type KernelMemory } from "./memory.ts";

export const SEQ = 0;
export const KERNEL = 2;
export const MEM = 3;
export const ARGS = 8; // 10 kernel arguments (r0/r1 replaced per thread)
export const MAX_WORKERS = 64;
export const RANGES = 32; // [r0, r1] per worker
export const GO = RANGES + 2 * MAX_WORKERS; // per worker: the job number it is to run
export const ACK = GO + MAX_WORKERS; // per worker: the last job number it finished
export const ERR = 1; // set by a worker whose kernel threw
export const CLAIM = ACK + MAX_WORKERS; // per worker: the job number whose range was claimed (by it or by the main thread)
export const NEXT = 4; // dynamic jobs: the first row not yet claimed
export const CHUNK = 5; // dynamic jobs: the fewest rows a claim takes (a multiple of 4); 0 = fixed ranges
export const ROWS = 6; // dynamic jobs: the job's row count
export const DIV = 7; // dynamic jobs: a claim takes 1/DIV of the rows left (at least CHUNK)
export const SPIN_MS = 2;
/** Below this many multiply-adds a matmul runs on the calling thread alone (hand-off not worth it). */
export const MIN_PARALLEL_WORK = 1 << 18;

/** Kernel names by index, shared with the worker (the worker calls exports[KERNEL_NAMES[i]]). */
export const KERNEL_NAMES = [
  "mm_q8r", "mm_q8r_generic", "mm_q41", "mm_q41_generic", "mm_q41_x", "mm_q40", "mm_q40_x", "mm_q40_generic",
  "mm_q50", "mm_q50_x", "mm_q50_generic", "mm_q4k", "mm_q4k_generic",
  "mm_q5k", "mm_q5k_generic", "mm_q4k_x", "mm_q5k_x", "mm_q6k", "mm_q6k_x", "mm_q6k_generic", "mm_f32", "mm_f32_generic", "mm_f16", "mm_f16_generic", "mm_bf16", "mm_bf16_generic",
  "attend_mt", "mm_q8r_x", "swiglu_mt", "quantize_mt", "mm_q51", "mm_q51_x", "mm_q51_generic",
];

interface PoolWorker {
  worker: Worker;
  port: MessagePort;
  mems: Set<number>;
}

const dropped = new FinalizationRegistry<number>((id) => {
  for (const w of pool?.workers ?? []) {
    if (w.mems.delete(id)) w.port.postMessage({ drop: id });
  }
});

class Pool {
  readonly ctrl = new Int32Array(new SharedArrayBuffer((CLAIM + MAX_WORKERS) * 4));
  readonly workers: PoolWorker[] = [];

  ensure(n: number): void {
    n = Math.min(n, MAX_WORKERS);
    while (this.workers.length < n) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(new URL("./worker.ts", import.meta.url), {
        workerData: { ctrl: this.ctrl, index: this.workers.length, port: port2, module: kernelModule() },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      this.workers.push({ worker, port: port1, mems: new Set() });
    }
  }

  /** Makes sure workers [0, n) can run kernels in `mem` (they pick the memory up on first use). */
  register(mem: KernelMemory, n: number): void {
    for (let i = 0; i < n; i++) {
      const w = this.workers[i];
      if (w.mems.has(mem.id)) continue;
      if (w.mems.size === 0 || !memIds.has(mem.id)) {
        memIds.add(mem.id);
        dropped.register(mem, mem.id);
      }
      w.port.postMessage({ id: mem.id, memory: mem.memory });
      w.mems.add(mem.id);
    }
  }
}

const memIds = new Set<number>();
let pool: Pool | undefined;

function getPool(): Pool {
  pool ??= new Pool();
  return pool;
}

/**
 * Claims chunks of a dynamic job (ctrl[CHUNK] rows each, from ctrl[NEXT]) and runs `run` on each
 * chunk's rows until none is left. Called by the main thread and by each participating worker.
 */
export function claimChunks(ctrl: Int32Array, run: (r0: number, r1: number) => void): void {
  const min = ctrl[CHUNK];
  const nRows = ctrl[ROWS];
  const div = ctrl[DIV];
  for (let r0 = Atomics.load(ctrl, NEXT); r0 < nRows; r0 = Atomics.load(ctrl, NEXT)) {
    // guided: a share of what is left, at least `min` rows, in whole groups of 4
    const r1 = Math.min(nRows, r0 + Math.max(min, Math.ceil((nRows - r0) / (4 * div)) * 4));
    if (Atomics.compareExchange(ctrl, NEXT, r0, r1) === r0) run(r0, r1);
  }
}

/**
 * Runs kernel `k` (index into KERNEL_NAMES) over rows [0, nRows) split among `threads` threads:
 * the main thread takes the first range. args are the kernel's 10 arguments (r0/r1 ignored).
 * chunkGroups > 0 makes it a dynamic job: guided chunks of at least that many groups of 4 rows,
 * claimed by whichever thread is free.
 */
export function runParallel(mem: KernelMemory, k: number, nRows: number, threads: number, args: number[], chunkGroups = 0): void {
  const fn = mem.exports[KERNEL_NAMES[k]];
  const nGroups = (nRows + 3) >> 2;
  const work = nRows * args[1] * args[7];
  const nt = work < MIN_PARALLEL_WORK ? 1 : Math.max(1, Math.min(threads, nGroups));
  if (nt === 1) {
    fn(args[0], args[1], 0, nRows, args[4], args[5], args[6], args[7], args[8], args[9]);
    return;
  }
  const p = getPool();
  p.ensure(nt - 1);
  p.register(mem, nt - 1);
  const per = Math.ceil(nGroups / nt);
  const ctrl = p.ctrl;
  for (let i = 0; i < 10; i++) ctrl[ARGS + i] = args[i];
  ctrl[KERNEL] = k;
  ctrl[MEM] = mem.id;
  const seq = ctrl[SEQ] + 1;
  ctrl[SEQ] = seq;
  const dynamic = chunkGroups > 0 && chunkGroups < per;
  ctrl[CHUNK] = dynamic ? chunkGroups * 4 : 0;
  ctrl[DIV] = 2 * nt;
  ctrl[ROWS] = nRows;
  ctrl[NEXT] = 0;
  const run = (r0: number, r1: number): void => {
    fn(args[0], args[1], r0, r1, args[4], args[5], args[6], args[7], args[8], args[9]);
  };
  for (let i = 1; i < nt; i++) {
    ctrl[RANGES + 2 * (i - 1)] = Math.min(nRows, i * per * 4);
    ctrl[RANGES + 2 * (i - 1) + 1] = Math.min(nRows, (i + 1) * per * 4);
  }
  for (let i = 0; i < nt - 1; i++) {
    Atomics.store(ctrl, GO + i, seq);
    Atomics.notify(ctrl, GO + i);
  }
  if (dynamic) claimChunks(ctrl, run);
  else run(0, Math.min(nRows, per * 4));
  for (let i = 0; i < nt - 1; i++) {
    // A worker that has not started yet (descheduled: more busy threads than cores) loses its job
    // to us: its fixed range, or nothing in a dynamic job (every chunk is claimed by now). Either
    // way each row is computed once, by the same code: results do not change.
    const old = Atomics.load(ctrl, CLAIM + i);
    if (old !== seq && Atomics.compareExchange(ctrl, CLAIM + i, old, seq) === old) {
      if (!dynamic) run(ctrl[RANGES + 2 * i], ctrl[RANGES + 2 * i + 1]);
      continue;
    }
    // spin: the worker normally finishes within microseconds of us; if it was descheduled mid-way,
    // stop burning the core it needs and sleep until it answers
    for (let spins = 0; Atomics.load(ctrl, ACK + i) !== seq; spins++) {
      if (spins > 20000) Atomics.wait(ctrl, ACK + i, Atomics.load(ctrl, ACK + i), 1);
    }
  }
  if (ctrl[ERR] !== 0) {
    ctrl[ERR] = 0;
    throw new Error("a kernel worker thread failed (see stderr)");
  }
}

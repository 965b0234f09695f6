// Where decode (or prefill) time goes (not a test): V8's CPU profiler around the engine's forward
// passes only (not loading), self time per function, the top entries printed. WASM functions show
// under their export names (kernel calls on worker threads are not seen: run with --threads 1).
//
//   node bench/profile.ts <model.gguf> [--prompt 512] [--decode 64] [--threads 1] [--phase decode|prefill] [--top 25]
import { readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { Engine } from "../src/engine/engine.ts";
import { openGGUF } from "../src/gguf/reader.ts";
import { arg } from "./arg.ts";

const file = process.argv[2];
if (!file || file.startsWith("--")) {
  console.error("usage: node bench/profile.ts <model.gguf> [--prompt N] [--decode N] [--threads N] [--phase decode|prefill] [--top N]");
  process.exit(2);
}
const PROMPT = Number(arg("prompt", "512"));
const DECODE = Number(arg("decode", "64"));
const PHASE = arg("phase", "decode");
const TOP = Number(arg("top", "25"));

const g = openGGUF(file);
const e = Engine.load(g, { threads: Number(arg("threads", "1")), maxContext: PROMPT + DECODE + 8 });
g.close();
const prompt = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919) % (e.config.nVocab - 3)));
const argmax = (l: Float32Array): number => l.reduce((b, v, i) => (v > l[b] ? i : b), 0);

const run = async (profile?: Session): Promise<number> => {
  const seq = e.createSequence();
  if (profile && PHASE === "prefill") await profile.post("Profiler.start");
  const t0 = performance.now();
  let [l] = e.forward([{ seq, tokens: prompt }]);
  const t1 = performance.now();
  if (profile && PHASE === "decode") await profile.post("Profiler.start");
  for (let i = 0; i < DECODE; i++) [l] = e.forward([{ seq, tokens: [argmax(l)] }]);
  const t2 = performance.now();
  e.freeSequence(seq);
  return PHASE === "decode" ? (t2 - t1) / DECODE : (t1 - t0) / PROMPT;
};
await run(); // warm-up (V8's tier-up)
const s = new Session();
s.connect();
await s.post("Profiler.enable");
await s.post("Profiler.setSamplingInterval", { interval: 200 });
const msPerToken = await run(s);
const { profile } = await s.post("Profiler.stop");

/** wasm function index → export name, from the module's import and export sections. */
function wasmNames(bytes: Uint8Array): Map<number, string> {
  let p = 8;
  const u32 = (): number => {
    let r = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[p++];
      r |= (b & 0x7f) << shift;
      if (b < 0x80) return r >>> 0;
    }
  };
  const name = (): string => {
    const n = u32();
    p += n;
    return Buffer.from(bytes.subarray(p - n, p)).toString();
  };
  const names = new Map<number, string>();
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = u32();
    const end = p + size;
    if (id === 2) {
      for (let n = u32(); n > 0; n--) {
        name();
        name();
        const kind = bytes[p++];
        const limits = (): void => {
          if (bytes[p++] & 1) u32();
          u32();
        };
        if (kind === 0) u32(); // a function import: its type index
        else if (kind === 1) {
          p++; // a table: element type, then limits
          limits();
        } else if (kind === 2) limits(); // a memory
        else if (kind === 3) p += 2; // a global: value type, mutability
      }
    } else if (id === 7) {
      for (let n = u32(); n > 0; n--) {
        const nm = name();
        const kind = bytes[p++];
        const idx = u32();
        if (kind === 0) names.set(idx, nm);
      }
    }
    p = end;
  }
  return names;
}
const wasm = wasmNames(readFileSync(new URL("../build/kernels.wasm", import.meta.url)));

const self = new Map<string, number>();
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const dt = profile.timeDeltas ?? [];
for (let i = 0; i < (profile.samples ?? []).length; i++) {
  const n = byId.get(profile.samples![i])!;
  const f = n.callFrame;
  const wi = /^wasm-function\[(\d+)\]$/.exec(f.functionName);
  if (wi) {
    const k = `wasm ${wasm.get(Number(wi[1])) ?? f.functionName}`;
    self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0));
    continue;
  }
  const key = `${f.functionName || "(anonymous)"} ${f.url ? f.url.replace(/^.*\/(src|assembly)\//, "$1/") + ":" + (f.lineNumber + 1) : ""}`.trim();
  self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`${file}: ${PHASE} ${msPerToken.toFixed(2)} ms/token (profiled run)\n`);
console.log("| self % | ms/token | function |\n|---|---|---|");
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
  console.log(`| ${((100 * v) / total).toFixed(1)} | ${((v / total) * msPerToken).toFixed(2)} | ${k} |`);
}

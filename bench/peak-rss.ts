// Peak resident memory of one engine, in a process of its own (run by bench/engine.ts per model):
// loads the model, prefills a prompt of `ctx` tokens and decodes 8, then prints one JSON line:
//   { peakMiB, baseMiB, weightsMiB, kvMiB, kernelMiB }
// peak: the process's maximum RSS (getrusage); base: RSS before the model was opened (Node and the
// kernels' module); weights: the matrices' bytes in the file; kv: the sequence's KV cache (f32 storage);
// kernel: the kernel memories' size. The claim checked: peak ≈ weights + KV + base.
//
//   node bench/peak-rss.ts <model.gguf> <threads> <ctx>
import { Engine } from "../src/engine/engine.ts";
import { argmax } from "../src/engine/sampling.ts";
import { openGGUF } from "../src/gguf/reader.ts";

const [file, threadsArg, ctxArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 1);
const ctx = Number(ctxArg ?? 512);
const mib = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;
const baseMiB = mib(process.memoryUsage().rss);
const g = openGGUF(file);
const e = Engine.load(g, { threads, maxContext: ctx + 16 });
let weights = 0;
for (const t of g.tensors.values()) if (t.dims.length >= 2) weights += t.nBytes;
g.close();
const seq = e.createSequence();
const prompt = Array.from({ length: ctx }, (_, i) => 1 + ((i * 7919) % (e.config.nVocab - 1)));
let [l] = e.forward([{ seq, tokens: prompt }]);
for (let i = 0; i < 8; i++) [l] = e.forward([{ seq, tokens: [argmax(l)] }]);
const c = e.config;
const kv = (ctx + 8) * c.nLayer * c.nHeadKv * (c.headDim + c.headDimV) * 4;
console.log(JSON.stringify({ peakMiB: mib(process.resourceUsage().maxRSS * 1024), baseMiB, weightsMiB: mib(weights), kvMiB: mib(kv), kernelMiB: mib(e.kernelBytes) }));
process.exit(0);

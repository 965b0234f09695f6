// llama.cpp on the same GGUF file, timed as src/engine/speed.ts times our engine: the reference
// side of `llmesh bench --vs-llama` and of bench/engine.ts. llama.cpp comes from node-llama-cpp
// (its prebuilt CPU binary), a devDependency: present in a checkout of this repository after
// `npm install`, absent from a production install — hence the dynamic import and the clear error.
import { syntheticPrompt, type Speed } from "../engine/speed.ts";

export interface LlamaCppRunner {
  /** A prefill of nPrompt tokens (syntheticPrompt(nPrompt, vocab, 7)), then nDecode greedy tokens, in a fresh context. */
  run(nPrompt: number, nDecode: number): Promise<Speed>;
  dispose(): Promise<void>;
}

/** Loads `file` into llama.cpp on the CPU with `threads` threads; contexts hold contextSize tokens. */
export async function openLlamaCpp(file: string, threads: number, contextSize: number, vocab: number): Promise<LlamaCppRunner> {
  let lib: typeof import("node-llama-cpp");
  try {
    lib = await import("node-llama-cpp");
  } catch {
    throw new Error("comparing with llama.cpp needs node-llama-cpp (a devDependency of llmesh): run `npm install` in the llmesh checkout");
  }
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: "error" } as Parameters<typeof lib.getLlama>[0] & object);
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const run = async (nPrompt: number, nDecode: number): Promise<Speed> => {
    const ctx = await model.createContext({ contextSize, sequences: 1, threads, batchSize: 512 });
    try {
      const seq = ctx.getSequence();
      const prompt = syntheticPrompt(nPrompt, vocab, 7);
      const t0 = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1) as never);
      const t1 = performance.now();
      let n = 0;
      let t2 = 0;
      for await (const _t of seq.evaluate(prompt.slice(-1) as never, { temperature: 0 })) {
        if (n === 0) t2 = performance.now(); // after the last prompt token and the first sampled one
        if (++n > nDecode) break;
      }
      const t3 = performance.now();
      return { prefill: (nPrompt - 1) / ((t1 - t0) / 1000), decode: nDecode / ((t3 - t2) / 1000) };
    } finally {
      await ctx.dispose();
    }
  };
  return { run, dispose: () => model.dispose() };
}

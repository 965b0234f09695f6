// llama.cpp as the reference implementation, through node-llama-cpp (devDependency, prebuilt CPU binary).
// Tests compare our tokens and next-token distributions with what llama.cpp computes on the same GGUF.
import { getLlama, type Llama, type LlamaModel } from "node-llama-cpp";

let llamaPromise: Promise<Llama> | undefined;

/** One llama.cpp runtime per test process (CPU only, never builds from source). */
export function llamaCpp(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: "never", logLevel: "error" } as Parameters<typeof getLlama>[0] & object);
  return llamaPromise;
}

export async function loadReferenceModel(modelPath: string): Promise<LlamaModel> {
  const llama = await llamaCpp();
  return llama.loadModel({ modelPath, gpuLayers: 0 });
}

export interface ReferenceStep {
  /** llama.cpp's greedy choice at this position. */
  argmax: number;
  /** Next-token probabilities (softmax of the logits), by token id. */
  probs: Map<number, number>;
}

/**
 * Teacher forcing: feeds `prompt`, then each of `forced` in turn, and records llama.cpp's next-token
 * distribution before each forced token (forced.length steps, the first one after the prompt).
 */
export async function referenceTeacherForced(model: LlamaModel, prompt: number[], forced: number[], threads = 1, flashAttention?: boolean): Promise<ReferenceStep[]> {
  const ctx = await model.createContext({ contextSize: Math.max(64, prompt.length + forced.length + 8), sequences: 1, threads, batchSize: 512, ...(flashAttention === undefined ? {} : { flashAttention }) });
  try {
    const seq = ctx.getSequence();
    const steps: ReferenceStep[] = [];
    const gen = seq.evaluateWithMetadata(prompt as never, { probabilities: true }, { temperature: 0 });
    let r = await gen.next();
    for (let i = 0; i < forced.length; i++) {
      if (r.done || !r.value) throw new Error("llama.cpp stopped early");
      steps.push({ argmax: r.value.token as number, probs: r.value.probabilities as Map<number, number> });
      if (i === forced.length - 1) break;
      r = await gen.next(forced[i] as never);
    }
    await gen.return();
    return steps;
  } finally {
    await ctx.dispose();
  }
}

/** Greedy generation of `n` tokens after `prompt` (no stop on end-of-generation tokens). */
export async function referenceGreedy(model: LlamaModel, prompt: number[], n: number, threads = 1, flashAttention?: boolean): Promise<number[]> {
  const ctx = await model.createContext({ contextSize: Math.max(64, prompt.length + n + 8), sequences: 1, threads, ...(flashAttention === undefined ? {} : { flashAttention }) });
  try {
    const seq = ctx.getSequence();
    const out: number[] = [];
    for await (const t of seq.evaluate(prompt as never, { temperature: 0 })) {
      out.push(t as number);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

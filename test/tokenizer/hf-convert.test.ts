// tokenizer.json → GGUF tokenizer metadata: agreement with the GGUF vocab fixtures, pre-tokenizer
// detection, and a round trip through a real GGUF file (writer → reader → Tokenizer).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detectPreTokenizer, hfToGGUFMetadata, mapGetter, tokenizerFromHf, type HfTokenizerJson } from "../../src/tokenizer/hf-convert.ts";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { TokenType } from "../../src/tokenizer/vocab.ts";
import { openGGUF } from "../../src/gguf/reader.ts";
import { writeGGUF } from "../../src/gguf/writer.ts";
import { GGUFValueType, type GGUFMetadataEntry } from "../../src/gguf/types.ts";
import { HF_TOKENIZERS, ggufGetter, readGoldens, readJson, vocabPath } from "./helpers.ts";

const load = (key: keyof typeof HF_TOKENIZERS) => JSON.parse(readFileSync(HF_TOKENIZERS[key].json, "utf8")) as HfTokenizerJson;

test("Llama 2 / Phi-3 tokenizer.json (SPM-style BPE) convert to the GGUF fixtures' behaviour", () => {
  for (const [key, vocab] of [["llama2", "llama-spm"], ["phi3", "phi-3"]] as const) {
    const meta = hfToGGUFMetadata(load(key), { tokenizerConfig: readJson(HF_TOKENIZERS[key].config) });
    assert.equal(meta.get("tokenizer.ggml.model"), "llama");
    assert.equal(meta.get("tokenizer.ggml.add_space_prefix"), true);
    const ref = Tokenizer.fromMetadata(ggufGetter(vocabPath(vocab)));
    const tok = Tokenizer.fromMetadata(mapGetter(meta));
    // same token types for the base vocabulary (bytes, <unk>, <s>, </s>, normal)
    const types = meta.get("tokenizer.ggml.token_type") as Int32Array;
    for (let i = 0; i < 32000; i++) {
      const t = types[i];
      const expected = ref.vocab.hasAttr(i, 1 << 5) ? TokenType.BYTE : i === 0 ? TokenType.UNKNOWN : ref.isControl(i) ? TokenType.CONTROL : TokenType.NORMAL;
      if (i > 2 || key === "llama2") assert.equal(t, expected, `${key} token ${i}`);
    }
    for (const c of readGoldens(vocab)) assert.deepEqual(tok.encode(c.text, { addSpecial: false }), c.ids, `${key}: ${JSON.stringify(c.text)}`);
    assert.equal(tok.bos, 1);
  }
});

test("pre-tokenizer detection", () => {
  assert.equal(detectPreTokenizer(load("llama3")), "llama-bpe");
  assert.equal(detectPreTokenizer(load("qwen3")), "qwen2");
  assert.equal(detectPreTokenizer(load("smollm2")), "smollm");
  assert.throws(() => detectPreTokenizer({ model: { type: "BPE", vocab: {} }, pre_tokenizer: { type: "Whitespace" } }), /pass options.pre/);
});

test("SmolLM2: ChatML specials are control tokens, digits split one by one", () => {
  const tok = tokenizerFromHf(load("smollm2"), { modelConfig: readJson(HF_TOKENIZERS.smollm2.modelConfig) });
  assert.deepEqual([tok.bos, tok.eos], [1, 2]); // from config.json
  assert.equal(tokenizerFromHf(load("smollm2")).bos, 11); // llama.cpp's gpt2 default when nothing names one
  assert.equal(tok.tokenId("<|im_start|>"), 1);
  assert.ok(tok.isControl(1) && tok.isControl(2));
  assert.ok(tok.isEog(2) && tok.isEog(0)); // <|im_end|>, <|endoftext|>
  assert.equal(tok.encode("12345", { addSpecial: false }).length, 5);
  const chat = "<|im_start|>user\nHi there, 1234 🦙!<|im_end|>\n";
  const ids = tok.encode(chat, { addSpecial: false, parseSpecial: true });
  assert.deepEqual([ids[0], ids.at(-2)], [1, 2]);
  assert.equal(tok.decode(ids), chat);
});

test("round trip through a GGUF file", () => {
  const meta = hfToGGUFMetadata(load("smollm2"), { chatTemplate: "{{ messages[0]['content'] }}" });
  const entries = new Map<string, GGUFMetadataEntry>();
  for (const [k, v] of meta) {
    if (typeof v === "string") entries.set(k, { type: GGUFValueType.STRING, value: v });
    else if (typeof v === "number") entries.set(k, { type: GGUFValueType.UINT32, value: v });
    else if (typeof v === "boolean") entries.set(k, { type: GGUFValueType.BOOL, value: v });
    else if (v instanceof Int32Array) entries.set(k, { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.INT32, value: v });
    else entries.set(k, { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING, value: v });
  }
  const dir = mkdtempSync(join(tmpdir(), "llmesh-hf-"));
  try {
    const path = join(dir, "smollm2-vocab.gguf");
    writeGGUF(path, { metadata: entries, tensors: [] });
    const a = Tokenizer.fromMetadata(mapGetter(meta));
    const b = Tokenizer.fromMetadata(ggufGetter(path));
    assert.equal(b.nVocab, a.nVocab);
    assert.equal(b.chatTemplate, "{{ messages[0]['content'] }}");
    const text = "The quick brown fox — 42 times, naïvely! <|im_end|>\n\t  x";
    for (const parseSpecial of [false, true]) {
      const ids = b.encode(text, { parseSpecial });
      assert.deepEqual(ids, a.encode(text, { parseSpecial }));
      assert.equal(b.decode(ids), text);
    }
    const f = openGGUF(path);
    assert.deepEqual(f.getValue("tokenizer.ggml.merges"), meta.get("tokenizer.ggml.merges"));
    f.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

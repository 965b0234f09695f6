// Golden tokenizations (HF `encode(text, add_special_tokens=False)`) from llama.cpp's
// models/ggml-vocab-*.gguf.inp/.out: every case must match exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { tokenizerFromHf } from "../../src/tokenizer/hf-convert.ts";
import { HF_TOKENIZERS, ggufGetter, readGoldens, readJson, vocabPath } from "./helpers.ts";

const fromGGUF = (name: string) => () => Tokenizer.fromMetadata(ggufGetter(vocabPath(name)));
const fromHf = (key: keyof typeof HF_TOKENIZERS) => () => {
  const h = HF_TOKENIZERS[key];
  return tokenizerFromHf(readFileSync(h.json, "utf8"), { pre: h.pre, tokenizerConfig: h.config ? readJson(h.config) : undefined });
};

const SUITES: [name: string, make: () => Tokenizer][] = [
  ["llama-spm", fromGGUF("llama-spm")],
  ["gpt-2", fromGGUF("gpt-2")],
  ["phi-3", fromGGUF("phi-3")],
  ["starcoder", fromGGUF("starcoder")],
  ["mpt", fromGGUF("mpt")],
  ["llama-bpe", fromHf("llama3")],
  ["qwen2", fromHf("qwen3")],
];

for (const [name, make] of SUITES) {
  test(`golden tokenization: ${name}`, async (t) => {
    const tok = make();
    const cases = readGoldens(name);
    assert.ok(cases.length >= 40);
    for (const c of cases) {
      const got = tok.encode(c.text, { addSpecial: false });
      assert.deepEqual(got, c.ids, `${name}: ${JSON.stringify(c.text)}`);
    }
    await t.test("decode(encode(x)) round trip", () => {
      for (const c of cases) {
        // clean_up_tokenization_spaces vocabularies (gpt-2, starcoder, mpt) rewrite " ," etc. on decode
        if (tok.vocab.cleanSpaces && /[ ][?!.,']/.test(c.text)) continue;
        assert.equal(tok.decode(tok.encode(c.text, { addSpecial: false })), c.text, `${name}: ${JSON.stringify(c.text)}`);
      }
    });
  });
}

// Special tokens: BOS/EOS per metadata, parse_special splitting, end-of-generation set, pieces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { tokenizerFromHf } from "../../src/tokenizer/hf-convert.ts";
import { TokenAttr } from "../../src/tokenizer/vocab.ts";
import { HF_TOKENIZERS, ggufGetter, readJson, vocabPath } from "./helpers.ts";

const qwen = (() => {
  let t: Tokenizer | undefined;
  return () => (t ??= tokenizerFromHf(readFileSync(HF_TOKENIZERS.qwen3.json, "utf8"), { pre: "qwen2", tokenizerConfig: readJson(HF_TOKENIZERS.qwen3.config) }));
})();

test("parseSpecial splits <|im_start|> / <|im_end|> (Qwen)", () => {
  const tok = qwen();
  const text = "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n";
  const ids = tok.encode(text, { addSpecial: false, parseSpecial: true });
  assert.equal(ids[0], 151644);
  assert.deepEqual(ids.filter((id) => id === 151644 || id === 151645), [151644, 151645, 151644]);
  assert.equal(tok.decode(ids), text);
  assert.equal(tok.decode(ids, { skipSpecial: true }), "user\nHello!\nassistant\n");
  // without parseSpecial the markers are plain text
  const plain = tok.encode(text, { addSpecial: false });
  assert.ok(!plain.includes(151644) && !plain.includes(151645));
  assert.equal(tok.decode(plain), text);
  assert.ok(tok.isEog(151645) && tok.isEog(151643) && !tok.isEog(151644));
  assert.equal(tok.eos, 151645);
});

test("BOS/EOS follow tokenizer.ggml.add_bos_token / add_eos_token", () => {
  const spm = Tokenizer.fromMetadata(ggufGetter(vocabPath("llama-spm")));
  assert.deepEqual(spm.encode("Hello"), [1, 15043]);
  assert.deepEqual(spm.encode("Hello", { addSpecial: false }), [15043]);
  assert.deepEqual(spm.encode(""), [1]);
  assert.deepEqual(spm.encode("", { addSpecial: false }), []);
  // llama.cpp: leading space of the first piece is dropped on decode; not after BOS
  assert.equal(spm.decode([15043]), "Hello");
  assert.equal(spm.decode([1, 15043]), "<s> Hello");
  assert.equal(spm.decode([1, 15043], { skipSpecial: true }), " Hello");
  // remove_special drops the BOS (keeping the space after it) but not EOS, which llama does not add
  assert.equal(spm.decode([1, 15043, 2], { removeSpecial: true }), " Hello</s>");
  // "<s>" in text is only a token with parseSpecial; then a space prefix follows it
  assert.deepEqual(spm.encode("<s>Hi", { addSpecial: false, parseSpecial: true }).slice(0, 1), [1]);
  assert.notEqual(spm.encode("<s>Hi", { addSpecial: false })[0], 1);

  const gpt2 = Tokenizer.fromMetadata(ggufGetter(vocabPath("gpt-2")));
  assert.equal(gpt2.addBos, false);
  assert.deepEqual(gpt2.encode("Hello world"), [15496, 995]);
  assert.ok(gpt2.isEog(50256));

  const llama3 = tokenizerFromHf(readFileSync(HF_TOKENIZERS.llama3.json, "utf8"), { pre: "llama-bpe", tokenizerConfig: readJson(HF_TOKENIZERS.llama3.config) });
  assert.deepEqual(llama3.encode("Hello world"), [128000, 9906, 1917]);
  assert.ok(llama3.isEog(128009) && llama3.isEog(128001));
  assert.equal(llama3.eot, 128009);
});

test("phi-3: control tokens get RSTRIP (llama.cpp sets it by model name), </s> is EOG", () => {
  const tok = Tokenizer.fromMetadata(ggufGetter(vocabPath("phi-3")));
  const user = tok.tokenId("<|user|>")!;
  assert.ok(tok.vocab.hasAttr(user, TokenAttr.RSTRIP));
  assert.ok(!tok.vocab.hasAttr(tok.bos!, TokenAttr.RSTRIP));
  const ids = tok.encode("<|user|>\n  Hi<|end|>", { addSpecial: false, parseSpecial: true });
  assert.equal(ids[0], user);
  assert.equal(ids.at(-1), tok.tokenId("<|end|>"));
  assert.equal(tok.decode(ids.slice(1, -1)), "Hi"); // the whitespace after <|user|> was swallowed
  for (const t of ["</s>", "<|endoftext|>", "<|end|>"]) assert.ok(tok.isEog(tok.tokenId(t)!), t);
});

test("tokenToPiece: byte tokens, byte-level pieces, special pieces", () => {
  const spm = Tokenizer.fromMetadata(ggufGetter(vocabPath("llama-spm")));
  assert.deepEqual([...spm.tokenToPiece(spm.tokenId("<0x0A>")!)], [0x0a]);
  assert.deepEqual([...spm.tokenToPiece(15043)], [...new TextEncoder().encode(" Hello")]);
  assert.equal(spm.tokenToPiece(2, { special: false }).length, 0);
  assert.throws(() => spm.tokenToPiece(32000), RangeError);
  const gpt2 = Tokenizer.fromMetadata(ggufGetter(vocabPath("gpt-2")));
  assert.deepEqual([...gpt2.tokenToPiece(220)], [0x20]); // "Ġ"
  assert.equal(new TextDecoder().decode(gpt2.tokenToPiece(50256)), "<|endoftext|>");
});

test("token texts survive the GGUF reader byte for byte (Llama's U+FEFF token)", () => {
  // llama vocab id 30143 is exactly "\uFEFF"; a UTF-8 decoder that strips a leading BOM
  // (TextDecoder without ignoreBOM) turns it into "" and breaks tokenization of U+FEFF.
  const tok = Tokenizer.fromMetadata(ggufGetter(vocabPath("llama-spm")));
  assert.equal(tok.tokenText(30143), "\uFEFF");
  assert.deepEqual(tok.encode("\uFEFF", { addSpecial: false }), [29871, 30143]);
});

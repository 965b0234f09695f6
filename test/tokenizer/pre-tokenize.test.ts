// Pre-tokenizer splitting (llama.cpp unicode_regex_split): custom splitters, the category-collapsed
// regex path, the raw-codepoint regex path, and the pre-tokenizer table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { regexSplit } from "../../src/tokenizer/pre-tokenize.ts";
import { preTokenizerFor } from "../../src/tokenizer/pre-tokenize-table.ts";
import { CptFlag, byteToBpeChar, cptFlags } from "../../src/tokenizer/unicode.ts";

const split = (pre: string, text: string) => regexSplit(text, preTokenizerFor(pre).exprs, false);

test("gpt-2: contractions, letters, digits, punctuation, whitespace runs", () => {
  assert.deepEqual(split("gpt-2", "Hello world's  end\n\n 123!?"), ["Hello", " world", "'s", " ", " end", "\n\n", " 123", "!?"]);
  // contractions are case-sensitive in gpt-2
  assert.deepEqual(split("gpt-2", "I'LL"), ["I", "'", "LL"]);
});

test("llama3: case-insensitive contractions, digit triples, newline runs", () => {
  assert.deepEqual(split("llama-bpe", "I'LL pay 1234567\n\n  ok"), ["I", "'LL", " pay", " ", "123", "456", "7", "\n\n", " ", " ok"]);
  assert.deepEqual(split("qwen2", "x 2024"), ["x", " ", "2", "0", "2", "4"]);
});

test("starcoder: \\p{N} on the collapsed text splits every digit, including non-ASCII ones", () => {
  assert.deepEqual(split("starcoder", "abc 123 ٣٤"), ["abc", " ", "1", "2", "3", " ", "٣", "٤"]);
});

test("default pre-tokenizer: punctuation runs and digit triples", () => {
  assert.deepEqual(split("default", "a+b=1234;"), ["a", "+", "b", "=", "123", "4", ";"]);
});

test("deepseek-llm: raw-codepoint regexes (non-ASCII classes, astral characters)", () => {
  assert.deepEqual(split("deepseek-llm", "Hello 𐐀𐐁 world\n中文"), ["Hello", " 𐐀𐐁", " world", "\n", "中文"]);
});

test("byte encoding of words", () => {
  const words = regexSplit(" é\n", preTokenizerFor("gpt-2").exprs, true);
  assert.deepEqual(words, [byteToBpeChar(0x20) + byteToBpeChar(0xc3) + byteToBpeChar(0xa9), byteToBpeChar(0x0a)]);
  assert.equal(byteToBpeChar(0x20), "Ġ");
  assert.equal(byteToBpeChar(0x0a), "Ċ");
});

test("pre-tokenizer table", () => {
  const l3 = preTokenizerFor("llama-bpe");
  assert.equal(l3.type, "LLAMA3");
  assert.deepEqual(l3.flags, { ignoreMerges: true, addBos: true });
  assert.equal(preTokenizerFor("").type, "DEFAULT");
  assert.equal(preTokenizerFor("gemma4").byteEncode, false);
  assert.throws(() => preTokenizerFor("no-such-pre"), /unknown pre-tokenizer/);
});

test("codepoint categories come from llama.cpp's table", () => {
  assert.ok(cptFlags(0x41) & CptFlag.LETTER);
  assert.ok(cptFlags(0x663) & CptFlag.NUMBER);
  assert.ok(cptFlags(0xa0) & CptFlag.WHITESPACE);
  assert.ok(!(cptFlags(0xfeff) & CptFlag.WHITESPACE));
  assert.ok(cptFlags(0x301) & CptFlag.ACCENT_MARK);
  assert.equal(cptFlags(0x110000), CptFlag.UNDEFINED);
});

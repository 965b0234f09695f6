// Streaming detokenization never emits half a UTF-8 character.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { StreamDecoder } from "../../src/tokenizer/stream-decoder.ts";
import { ggufGetter, vocabPath } from "./helpers.ts";

const TEXT = "🦙 llamas 😶‍🌫️ (emoji), 你好世界, ключ, ✅ done\n\tकाम 👨‍👩‍👧‍👦!";

for (const name of ["llama-spm", "gpt-2", "phi-3"]) {
  test(`stream decoder reassembles split characters: ${name}`, () => {
    const tok = Tokenizer.fromMetadata(ggufGetter(vocabPath(name)));
    const ids = tok.encode(TEXT, { addSpecial: false });
    // the text must really be split mid-character somewhere
    assert.ok(ids.some((id) => new TextDecoder("utf-8", { fatal: false }).decode(tok.tokenToPiece(id)).includes("\uFFFD")));
    const sd = new StreamDecoder(tok);
    let out = "";
    let held = 0;
    for (const id of ids) {
      const chunk = sd.push(id);
      assert.ok(!chunk.includes("\uFFFD"), `chunk ${JSON.stringify(chunk)} has U+FFFD`);
      if (chunk === "") held++;
      out += chunk;
    }
    out += sd.flush();
    assert.ok(held > 0, "some tokens completed no character");
    // no clean-up or leading-space removal while streaming: equals the concatenated pieces
    const whole = new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => [...tok.tokenToPiece(id)])));
    assert.equal(out, whole);
    assert.equal(out.replace(/^ /, ""), TEXT);
  });
}

test("stream decoder: flush of an incomplete character and special tokens", () => {
  const tok = Tokenizer.fromMetadata(ggufGetter(vocabPath("llama-spm")));
  const b = (x: number) => tok.vocab.byteToToken(x);
  const sd = new StreamDecoder(tok);
  assert.equal(sd.push(b(0xf0)), "");
  assert.equal(sd.push(b(0x9f)), "");
  assert.equal(sd.flush(), "\uFFFD");
  assert.equal(sd.pushAll([b(0xf0), b(0x9f), b(0xa6), b(0x99)]), "🦙");
  // control tokens are skipped by default, rendered on request
  assert.equal(sd.push(tok.eos!), "");
  assert.equal(new StreamDecoder(tok, { skipSpecial: false }).push(tok.eos!), "</s>");
  sd.push(b(0xe4));
  sd.reset();
  assert.equal(sd.push(tok.tokenId("▁ok")!), " ok");
});

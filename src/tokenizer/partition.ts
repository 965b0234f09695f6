// Splitting raw text around special tokens before tokenization.
// Reference: llama.cpp src/llama-vocab.cpp, llama_vocab::impl::tokenizer_st_partition.
// Special tokens (control, user-defined, unknown) are matched longest first; control and
// unknown tokens only when parse_special is set, user-defined tokens always (as HF tokenizers
// do). LSTRIP/RSTRIP tokens swallow the ASCII whitespace (C isspace) beside them.

import { isCSpace } from "./unicode.ts";
import { TokenAttr, type Vocab } from "./vocab.ts";

/** A text fragment still to tokenize, or a special token id. */
export type Fragment = string | number;

export function partitionSpecial(vocab: Vocab, text: string, parseSpecial: boolean): Fragment[] {
  let fragments: Fragment[] = text.length > 0 ? [text] : [];
  for (const id of vocab.specialTokens) {
    const attr = vocab.attrs[id];
    if (!parseSpecial && attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) continue;
    const special = vocab.tokens[id];
    let out: Fragment[] | undefined;
    for (let f = 0; f < fragments.length; f++) {
      const frag = fragments[f];
      if (typeof frag === "number" || frag.indexOf(special) < 0) {
        out?.push(frag);
        continue;
      }
      out ??= fragments.slice(0, f);
      let pos = 0;
      const end = frag.length;
      for (;;) {
        const match = frag.indexOf(special, pos);
        if (match < 0) {
          if (pos < end) out.push(pos === 0 ? frag : frag.slice(pos));
          break;
        }
        if (match > pos) {
          let leftEnd = match;
          if (attr & TokenAttr.LSTRIP) while (leftEnd > pos && isCSpace(frag.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > pos) out.push(frag.slice(pos, leftEnd));
        }
        out.push(id);
        pos = match + special.length;
        if (pos >= end) break;
        if (attr & TokenAttr.RSTRIP) while (pos < end && isCSpace(frag.charCodeAt(pos))) pos++;
      }
    }
    if (out) fragments = out;
  }
  return fragments;
}

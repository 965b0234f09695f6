// SentencePiece-style tokenization of one text fragment.
// Reference: llama.cpp src/llama-vocab.cpp, llm_tokenizer_spm_session (bigram merging by token
// score, highest first, ties to the leftmost; unmatched characters fall back to <0xXX> byte
// tokens via byte_to_token). The caller has already prefixed the space (add_space_prefix) and
// replaced spaces by U+2581 (llama_escape_whitespace), as llama_vocab::impl::tokenize does.
//
// Symbols are kept as UTF-16 ranges of the JS string; merging compares range lengths where
// llama.cpp compares byte lengths, which is equivalent (both grow monotonically with the range).

import { PriorityQueue } from "./priority-queue.ts";
import { symbolList } from "./symbol-list.ts";
import { utf8Encode } from "./unicode.ts";
import { NO_TOKEN, type Vocab } from "./vocab.ts";

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

// llm_bigram_spm::comparator: higher score first, then lower left index.
const before = (a: Bigram, b: Bigram) => a.score > b.score || (a.score === b.score && a.left < b.left);

export function spmTokenize(vocab: Vocab, text: string, output: number[]): void {
  const { count, start, len, prev, next } = symbolList(text);
  if (count === 0) return;

  const queue = new PriorityQueue<Bigram>(before);
  const revMerge = new Map<string, readonly [number, number]>();

  const tryAddBigram = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const piece = text.substr(start[left], len[left] + len[right]);
    const token = vocab.textToToken(piece);
    if (token === NO_TOKEN || token >= vocab.nTokens) return;
    queue.push({ left, right, score: vocab.scores[token], size: len[left] + len[right] });
    revMerge.set(piece, [left, right]);
  };

  for (let i = 1; i < count; i++) tryAddBigram(i - 1, i);

  for (let bigram = queue.pop(); bigram !== undefined; bigram = queue.pop()) {
    const { left, right } = bigram;
    // skip if one of the symbols already got merged
    if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== bigram.size) continue;
    len[left] += len[right];
    len[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    tryAddBigram(prev[left], left);
    tryAddBigram(left, next[left]);
  }

  const resegment = (sym: number) => {
    const piece = text.substr(start[sym], len[sym]);
    const token = vocab.textToToken(piece);
    if (token !== NO_TOKEN) {
      output.push(token);
      return;
    }
    const p = revMerge.get(piece);
    if (p === undefined) {
      // output any symbols that did not form tokens as bytes
      for (const b of utf8Encode(piece)) output.push(vocab.byteToToken(b));
      return;
    }
    resegment(p[0]);
    resegment(p[1]);
  };
  for (let i = 0; i !== -1; i = next[i]) resegment(i);
}

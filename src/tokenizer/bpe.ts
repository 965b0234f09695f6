// Byte-level BPE tokenization of one pre-tokenized word.
// Reference: llama.cpp src/llama-vocab.cpp, llm_tokenizer_bpe_session::tokenize (merge the
// adjacent pair of lowest merge rank, ties to the leftmost; `ignore_merges` vocabularies take a
// word that is itself a token whole; symbols that end up outside the vocabulary fall back to
// single-byte tokens — for GPT-2 byte encoding only ASCII bytes can be found that way, exactly
// as in llama.cpp — or to <0xXX> tokens for raw-UTF-8 BPE such as Gemma 4).

import { PriorityQueue } from "./priority-queue.ts";
import { symbolList } from "./symbol-list.ts";
import { utf8Encode } from "./unicode.ts";
import { NO_TOKEN, type Vocab } from "./vocab.ts";

interface Bigram {
  left: number;
  right: number;
  rank: number;
  size: number;
}

// llm_bigram_bpe::comparator: lower rank first, then lower left index.
const before = (a: Bigram, b: Bigram) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

/**
 * Tokenize one word (GPT-2 byte-encoded when `byteEncode`, else raw text) and append the ids.
 */
export function bpeTokenizeWord(vocab: Vocab, word: string, byteEncode: boolean, output: number[]): void {
  if (word.length === 0) return;
  if (vocab.ignoreMerges) {
    const id = vocab.textToToken(word);
    if (id !== NO_TOKEN) {
      output.push(id);
      return;
    }
  } else if (vocab.preTokenizer?.type === "GEMMA4" && /^\n+$/.test(word)) {
    const id = vocab.textToToken(word);
    if (id !== NO_TOKEN) {
      output.push(id);
      return;
    }
  }

  const { count, start, len, prev, next } = symbolList(word);

  const queue = new PriorityQueue<Bigram>(before);
  const addBigram = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const rank = vocab.bpeRank(word.substr(start[left], len[left]), word.substr(start[right], len[right]));
    if (rank < 0) return;
    queue.push({ left, right, rank, size: len[left] + len[right] });
  };
  for (let i = 1; i < count; i++) addBigram(i - 1, i);

  for (let bigram = queue.pop(); bigram !== undefined; bigram = queue.pop()) {
    const { left, right } = bigram;
    if (len[left] === 0 || len[right] === 0) continue;
    // outdated: the pair's text changed since it was queued (llama.cpp compares the strings;
    // the left end is fixed, so comparing the combined length is equivalent)
    if (next[left] !== right || len[left] + len[right] !== bigram.size) continue;
    len[left] += len[right];
    len[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    addBigram(prev[left], left);
    addBigram(left, next[left]);
  }

  for (let i = 0; i !== -1; i = next[i]) {
    if (len[i] === 0) continue;
    const piece = word.substr(start[i], len[i]);
    const token = vocab.textToToken(piece);
    if (token !== NO_TOKEN) {
      output.push(token);
      continue;
    }
    for (const b of utf8Encode(piece)) {
      let id: number;
      if (byteEncode) id = b < 0x80 ? vocab.textToToken(String.fromCharCode(b)) : NO_TOKEN;
      else id = vocab.textToToken(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
      if (id !== NO_TOKEN) output.push(id);
    }
  }
}

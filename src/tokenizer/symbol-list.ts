// The doubly linked list of symbols that SentencePiece and BPE merging both start from: one symbol
// per codepoint of the text (a surrogate pair is one symbol), as llama.cpp's llm_symbol array.

export interface SymbolList {
  count: number;
  /** UTF-16 offset of each symbol in the text; `len` 0 marks a symbol merged into its left neighbour. */
  start: number[];
  len: number[];
  /** Index of the previous / next live symbol, -1 at the ends. */
  prev: Int32Array;
  next: Int32Array;
}

export function symbolList(text: string): SymbolList {
  const start: number[] = [];
  const len: number[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    const n = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
    start.push(i);
    len.push(n);
    i += n;
  }
  const count = start.length;
  const prev = new Int32Array(count);
  const next = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < count ? i + 1 : -1;
  }
  return { count, start, len, prev, next };
}

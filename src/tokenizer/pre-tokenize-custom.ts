// Hand-written pre-tokenizer splitters, ported line by line from llama.cpp src/unicode.cpp:
// unicode_regex_split_custom_gpt2, _llama3, _qwen2, _qwen35, _afmoe and _newlines, and the
// dispatch in unicode_regex_split_custom. llama.cpp replaces these well-known regexes with
// code; the code differs from a real regex engine in corner cases (e.g. codepoints of no
// category, segment ends), so we reproduce the code, not the regex.
//
// Every splitter takes the codepoints of the whole text and the current segmentation
// (`offsets`: segment lengths in codepoints) and returns the refined segmentation.

import { CptFlag, cptFlagTable, toLowerForAsciiCompare } from "./unicode.ts";

type Splitter = (cpts: ArrayLike<number>, offsets: readonly number[]) => number[];

const OUT_OF_RANGE = 0xffffffff;
const { NUMBER, LETTER, ACCENT_MARK, WHITESPACE } = CptFlag;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const APOS = 0x27;
const ch = (c: string) => c.charCodeAt(0);

/**
 * Shared skeleton of llama.cpp's custom splitters: per segment, `step` is called at each
 * position with accessors clamped to the segment (outside → OUT_OF_RANGE / flags 0).
 */
interface Cursor {
  cpt(pos: number): number;
  flags(pos: number): number;
  /** _add_token: close the current word at `end`; returns its length. */
  add(end: number): number;
  end: number;
}

function runSegments(
  cpts: ArrayLike<number>,
  offsets: readonly number[],
  step: (c: Cursor, pos: number) => number,
): number[] {
  const table = cptFlagTable();
  const out: number[] = [];
  let start = 0;
  for (const offset of offsets) {
    const ini = start;
    const end = start + offset;
    start = end;
    let prevEnd = ini;
    const c: Cursor = {
      end,
      cpt: (p) => (p >= ini && p < end ? cpts[p] : OUT_OF_RANGE),
      flags: (p) => (p >= ini && p < end ? table[cpts[p]] : 0),
      add: (e) => {
        const len = e - prevEnd;
        if (len > 0) out.push(len);
        prevEnd = e;
        return len;
      },
    };
    for (let pos = ini; pos < end; ) pos = step(c, pos);
  }
  return out;
}

/** regex: (?i:'s|'t|'re|'ve|'m|'ll|'d) — returns the new position, or -1 when no match. */
function contraction(c: Cursor, pos: number, caseInsensitive: boolean): number {
  if (c.cpt(pos) !== APOS || pos + 1 >= c.end) return -1;
  const low = caseInsensitive ? toLowerForAsciiCompare : (x: number) => x;
  const n1 = low(c.cpt(pos + 1));
  if (n1 === ch("s") || n1 === ch("t") || n1 === ch("m") || n1 === ch("d")) return pos + c.add(pos + 2);
  if (pos + 2 < c.end) {
    const n2 = low(c.cpt(pos + 2));
    if ((n1 === ch("r") && n2 === ch("e")) || (n1 === ch("v") && n2 === ch("e")) || (n1 === ch("l") && n2 === ch("l"))) {
      return pos + c.add(pos + 3);
    }
  }
  return -1;
}

/** The whitespace tail shared by all splitters: \s*[\r\n]+ (optional), \s+(?!\S), \s+, else 1 char. */
function whitespaceTail(c: Cursor, pos: number, withNewlines: boolean): number {
  let nws = 0;
  let lastRN = 0;
  while (c.flags(pos + nws) & WHITESPACE) {
    const c2 = c.cpt(pos + nws);
    if (withNewlines && (c2 === CR || c2 === LF)) lastRN = pos + nws + 1;
    nws++;
  }
  if (lastRN > 0) {
    c.add(lastRN);
    return lastRN;
  }
  if (nws > 1 && c.cpt(pos + nws) !== OUT_OF_RANGE) {
    pos += nws - 1;
    c.add(pos);
    return pos;
  }
  if (nws > 0) {
    pos += nws;
    c.add(pos);
    return pos;
  }
  c.add(++pos);
  return pos;
}

// GPT2 system regex: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
const splitGpt2: Splitter = (cpts, offsets) =>
  runSegments(cpts, offsets, (c, pos) => {
    const k = contraction(c, pos, false);
    if (k >= 0) return k;
    const cpt = c.cpt(pos);
    let f2 = cpt === SPACE ? c.flags(pos + 1) : c.flags(pos);
    for (const cls of [LETTER, NUMBER]) {
      if (f2 & cls) {
        if (cpt === SPACE) pos++;
        while (f2 & cls) f2 = c.flags(++pos);
        c.add(pos);
        return pos;
      }
    }
    if (!(f2 & (WHITESPACE | LETTER | NUMBER)) && f2) {
      if (cpt === SPACE) pos++;
      while (!(f2 & (WHITESPACE | LETTER | NUMBER)) && f2) f2 = c.flags(++pos);
      c.add(pos);
      return pos;
    }
    return whitespaceTail(c, pos, false);
  });

/**
 * LLAMA3 system regex:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * qwen2 is the same with \p{N} (maxDigits 1); qwen35 also folds \p{M} into letters.
 */
function makeLlama3Like(maxDigits: number, marksAreLetters: boolean): Splitter {
  const LET = marksAreLetters ? LETTER | ACCENT_MARK : LETTER;
  return (cpts, offsets) =>
    runSegments(cpts, offsets, (c, pos) => {
      const k = contraction(c, pos, true);
      if (k >= 0) return k;
      const cpt = c.cpt(pos);
      const flags = c.flags(pos);
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (!(cpt === CR || cpt === LF || flags & NUMBER)) {
        if (flags & LET || c.flags(pos + 1) & LET) {
          pos++;
          while (c.flags(pos) & LET) pos++;
          c.add(pos);
          return pos;
        }
      }
      // \p{N}{1,maxDigits}
      if (flags & NUMBER) {
        if (maxDigits === 1) {
          c.add(++pos);
          return pos;
        }
        let ini = pos;
        while (c.flags(pos) & NUMBER) {
          if (++pos - ini >= maxDigits) {
            c.add(pos);
            ini = pos;
          }
        }
        c.add(pos);
        return pos;
      }
      // <space>?[^\s\p{L}\p{N}]+[\r\n]*
      let f2 = cpt === SPACE ? c.flags(pos + 1) : flags;
      if (!(f2 & (WHITESPACE | LET | NUMBER)) && flags) {
        if (cpt === SPACE) pos++;
        while (!(f2 & (WHITESPACE | LET | NUMBER)) && f2) f2 = c.flags(++pos);
        let c2 = c.cpt(pos);
        while (c2 === CR || c2 === LF) c2 = c.cpt(++pos);
        c.add(pos);
        return pos;
      }
      return whitespaceTail(c, pos, true);
    });
}

/** \p{AFMoE_digits} / \d{1,3}(?=(?:\d{3})*\b): digit runs grouped in threes from the right. */
const splitAfmoeDigits: Splitter = (cpts, offsets) => {
  const table = cptFlagTable();
  const out: number[] = [];
  let start = 0;
  for (const offset of offsets) {
    const ini = start;
    const end = start + offset;
    start = end;
    let prevEnd = ini;
    const add = (e: number) => {
      if (e - prevEnd > 0) out.push(e - prevEnd);
      prevEnd = e;
    };
    for (let pos = ini; pos < end; ) {
      if (table[cpts[pos]] & NUMBER) {
        const digitStart = pos;
        while (pos < end && table[cpts[pos]] & NUMBER) pos++;
        const count = pos - digitStart;
        let cur = digitStart;
        const rem = count % 3;
        if (rem > 0) add((cur += rem));
        while (cur < digitStart + count) add((cur += 3));
        continue;
      }
      pos++;
    }
    if (prevEnd < end) add(end);
  }
  return out;
};

/** [^\n]+|[\n]+ */
const splitNewlines: Splitter = (cpts, offsets) => {
  const out: number[] = [];
  let start = 0;
  for (const offset of offsets) {
    const end = start + offset;
    let pos = start;
    while (pos < end) {
      const isNl = cpts[pos] === LF;
      const runStart = pos;
      while (pos < end && (cpts[pos] === LF) === isNl) pos++;
      out.push(pos - runStart);
    }
    start = end;
  }
  return out;
};

const CUSTOM: ReadonlyMap<string, Splitter> = new Map<string, Splitter>([
  ["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)", splitGpt2],
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    makeLlama3Like(3, false),
  ],
  [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    makeLlama3Like(3, false),
  ],
  [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    makeLlama3Like(1, false),
  ],
  [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    makeLlama3Like(1, true),
  ],
  ["\\p{AFMoE_digits}", splitAfmoeDigits],
  ["[^\\n]+|[\\n]+", splitNewlines],
  ["\\d{1,3}(?=(?:\\d{3})*\\b)", splitAfmoeDigits],
]);

/** unicode_regex_split_custom: the hand-written splitter for `expr`, if llama.cpp has one. */
export function customSplitter(expr: string): Splitter | undefined {
  if (expr === "\\p{Han}+") throw new Error("pre-tokenizer kimi-k2 (\\p{Han}+) is not supported");
  return CUSTOM.get(expr);
}

// BPE pre-tokenization: splitting text into words with the expressions of a pre-tokenizer
// (see pre-tokenize-table.ts for which expressions each `tokenizer.ggml.pre` uses).
// Reference: llama.cpp src/unicode.cpp, unicode_regex_split and unicode_regex_split_stl.
//
// unicode_regex_split applies each expression of the list in turn, refining the segmentation.
// An expression is handled (1) by a hand-written splitter when llama.cpp has one
// (pre-tokenize-custom.ts); else (2) when it uses \p{..} categories, by running the regex on a
// "collapsed" text where every non-ASCII codepoint is replaced by one byte naming its category
// (0xD1 number, 0xD2 letter, 0xD3 punctuation, 0xD4 mark, 0xD5 symbol, 0x0B whitespace,
// 0xD0 other) and \p{X} by a class of that byte plus the ASCII members; else (3) by running
// the regex on the codepoints with non-ASCII whitespace replaced by 0x0B. We use JavaScript
// RegExp (non-unicode mode for (2), unicode mode for (3)) where llama.cpp uses std::regex
// (ECMAScript grammar): the semantics agree for these patterns.

import { customSplitter } from "./pre-tokenize-custom.ts";
import { CptFlag, bytesToBpeString, codepointsOf, cptFlagTable, utf8Encode } from "./unicode.ts";

// ---- unicode_regex_split ----

const UCAT_ENUM: ReadonlyMap<string, number> = new Map([
  ["\\p{N}", CptFlag.NUMBER],
  ["\\p{L}", CptFlag.LETTER],
  ["\\p{P}", CptFlag.PUNCTUATION],
  ["\\p{M}", CptFlag.ACCENT_MARK],
  ["\\p{S}", CptFlag.SYMBOL],
  ["\\p{Lu}", CptFlag.LETTER],
  ["\\p{Ll}", CptFlag.LETTER],
  ["\\p{Lt}", CptFlag.LETTER],
  ["\\p{Lm}", CptFlag.LETTER],
  ["\\p{Lo}", CptFlag.LETTER],
]);
const UCAT_CPT: ReadonlyMap<number, number> = new Map([
  [CptFlag.NUMBER, 0xd1],
  [CptFlag.LETTER, 0xd2],
  [CptFlag.PUNCTUATION, 0xd3],
  [CptFlag.ACCENT_MARK, 0xd4],
  [CptFlag.SYMBOL, 0xd5],
]);
// The ASCII members of each category, as regex class text (k_ucat_map).
const UCAT_MAP: ReadonlyMap<number, string> = new Map([
  [CptFlag.NUMBER, "0-9"],
  [CptFlag.LETTER, "A-Za-z"],
  [CptFlag.PUNCTUATION, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"],
  [CptFlag.ACCENT_MARK, ""],
  [CptFlag.SYMBOL, "\\$\\+<->^`\\|~"],
]);

const usesCategories = (expr: string) => [...UCAT_ENUM.keys()].some((k) => expr.includes(k));

/** Rewrite \p{X} into classes over the collapsed alphabet (the loop in unicode_regex_split). */
function collapseRegex(expr: string): string {
  let out = "";
  let inside = false;
  for (let i = 0; i < expr.length; i++) {
    if (expr[i] === "[" && (i === 0 || expr[i - 1] !== "\\")) {
      out += "[";
      inside = true;
      continue;
    }
    if (inside && expr[i] === "]" && expr[i - 1] !== "\\") {
      out += "]";
      inside = false;
      continue;
    }
    if (expr[i] === "\\" && i + 3 < expr.length && expr[i + 1] === "p" && expr[i + 2] === "{") {
      const close = expr.indexOf("}", i + 3);
      if (close >= 0 && close <= i + 10) {
        const flag = UCAT_ENUM.get(expr.slice(i, close + 1));
        if (flag !== undefined) {
          const cls = String.fromCharCode(UCAT_CPT.get(flag)!) + UCAT_MAP.get(flag)!;
          out += inside ? cls : `[${cls}]`;
          i = close;
          continue;
        }
      }
    }
    out += expr[i];
  }
  return out;
}

/** \s / \S with the C-locale meaning std::wregex gives them (non-ASCII spaces are pre-mapped to \v). */
function asciiWhitespaceRegex(expr: string): string {
  let out = "";
  let inside = false;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === "\\" && i + 1 < expr.length) {
      const n = expr[i + 1];
      if (n === "s") out += inside ? "\\t-\\r " : "[\\t-\\r ]";
      else if (n === "S" && !inside) out += "[^\\t-\\r ]";
      else out += c + n;
      i++;
      continue;
    }
    if (c === "[") inside = true;
    else if (c === "]") inside = false;
    out += c;
  }
  return out;
}

const regexCache = new Map<string, RegExp>();
function compiled(key: string, source: string, flags: string): RegExp {
  let re = regexCache.get(key);
  if (!re) {
    re = new RegExp(source, flags);
    regexCache.set(key, re);
  }
  return re;
}

/** unicode_regex_split_stl: split each segment of `text` (one JS char per unit of `offsets`). */
function splitWithRegex(text: string, re: RegExp, offsets: readonly number[], unitOf?: Int32Array): number[] {
  const out: number[] = [];
  let start = 0;
  for (const offset of offsets) {
    // unitOf maps codepoint index → UTF-16 index when the text has astral characters.
    const a = unitOf ? unitOf[start] : start;
    const b = unitOf ? unitOf[start + offset] : start + offset;
    const seg = text.slice(a, b);
    const toCpt = (u: number) => (unitOf ? countCodepoints(seg, u) : u);
    re.lastIndex = 0;
    let startIdx = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(seg)) !== null) {
      const pos = toCpt(m.index);
      const len = toCpt(m.index + m[0].length) - pos;
      if (pos > startIdx) out.push(pos - startIdx);
      out.push(len);
      startIdx = pos + len;
      // std::regex_iterator retries an empty match position as non-empty first; we just step on.
      if (m[0].length === 0) re.lastIndex++;
    }
    if (startIdx < offset) out.push(offset - startIdx);
    start += offset;
  }
  return out;
}

function countCodepoints(s: string, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++, n++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < end) i++;
  }
  return n;
}

/**
 * unicode_regex_split: split `text` (well-formed: no lone surrogates, see toWellFormed) into
 * words by the expressions; with `byteEncode` each word comes back GPT-2 byte-encoded (one
 * character per UTF-8 byte), else as plain text.
 */
export function regexSplit(text: string, exprs: readonly string[], byteEncode: boolean): string[] {
  const cpts = codepointsOf(text);
  const flags = cptFlagTable();
  let collapsed: string | undefined;
  let wide: { text: string; unitOf?: Int32Array } | undefined;
  let offsets: number[] = [cpts.length];

  for (const expr of exprs) {
    const custom = customSplitter(expr);
    if (custom) {
      const tmp = custom(cpts, offsets);
      // llama.cpp: an empty result means "no custom splitter" and falls through to the regex.
      if (tmp.length > 0) {
        offsets = tmp;
        continue;
      }
    }
    if (usesCategories(expr)) {
      if ([...expr].some((c) => c.charCodeAt(0) > 0x7f)) throw new Error("Regex includes both unicode categories and non-ASCII characters - not supported");
      collapsed ??= collapseText(cpts, flags);
      offsets = splitWithRegex(collapsed, compiled("c:" + expr, collapseRegex(expr), "g"), offsets);
    } else {
      wide ??= wideText(cpts, flags);
      offsets = splitWithRegex(wide.text, compiled("w:" + expr, asciiWhitespaceRegex(expr), "gu"), offsets, wide.unitOf);
    }
  }

  const words: string[] = [];
  let cp = 0;
  let unit = 0;
  for (const offset of offsets) {
    const from = unit;
    for (const end = cp + offset; cp < end; cp++) unit += cpts[cp] > 0xffff ? 2 : 1;
    const word = text.slice(from, unit);
    words.push(byteEncode ? bytesToBpeString(utf8Encode(word)) : word);
  }
  return words;
}

function collapseText(cpts: readonly number[], flags: Uint16Array): string {
  const codes = new Array<number>(cpts.length);
  for (let i = 0; i < cpts.length; i++) {
    const c = cpts[i];
    if (c < 128) codes[i] = c;
    else {
      const f = flags[c];
      codes[i] = f & CptFlag.WHITESPACE ? 0x0b : (UCAT_CPT.get(f & CptFlag.MASK_CATEGORIES) ?? 0xd0);
    }
  }
  let s = "";
  for (let i = 0; i < codes.length; i += 8192) s += String.fromCharCode(...codes.slice(i, i + 8192));
  return s;
}

function wideText(cpts: readonly number[], flags: Uint16Array): { text: string; unitOf?: Int32Array } {
  let s = "";
  let astral = false;
  for (const c of cpts) {
    const cc = c > 0x7f && flags[c] & CptFlag.WHITESPACE ? 0x0b : c;
    if (cc > 0xffff) astral = true;
    s += String.fromCodePoint(cc);
  }
  if (!astral) return { text: s };
  const unitOf = new Int32Array(cpts.length + 1);
  for (let i = 0, u = 0; i < cpts.length; i++) {
    unitOf[i] = u;
    u += cpts[i] > 0xffff ? 2 : 1;
    unitOf[i + 1] = u;
  }
  return { text: s, unitOf };
}

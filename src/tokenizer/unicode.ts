// Unicode helpers for the tokenizers.
// Reference: llama.cpp src/unicode.cpp / unicode.h (unicode_cpt_flags, unicode_cpt_flags_from_cpt,
// unicode_byte_to_utf8_map / unicode_utf8_to_byte_map, unicode_tolower).
// The category table is llama.cpp's own (unicode-data.ts, generated from src/unicode-data.cpp),
// so results do not depend on the Unicode version of the JavaScript engine.

import { RANGE_FLAGS_ENCODED, WHITESPACE_CODEPOINTS } from "./unicode-data.ts";

/** llama.cpp unicode_cpt_flags bits (unicode.h). */
export const CptFlag = {
  UNDEFINED: 0x0001,
  NUMBER: 0x0002, // \p{N}
  LETTER: 0x0004, // \p{L}
  SEPARATOR: 0x0008, // \p{Z}
  ACCENT_MARK: 0x0010, // \p{M}
  PUNCTUATION: 0x0020, // \p{P}
  SYMBOL: 0x0040, // \p{S}
  CONTROL: 0x0080, // \p{C}
  MASK_CATEGORIES: 0x00ff,
  WHITESPACE: 0x0100, // \s as llama.cpp defines it (unicode_set_whitespace)
} as const;

export const MAX_CODEPOINTS = 0x110000;

let flagTable: Uint16Array | undefined;

function buildFlagTable(): Uint16Array {
  const table = new Uint16Array(MAX_CODEPOINTS);
  const parts = RANGE_FLAGS_ENCODED.split(",");
  let start = 0;
  let prevStart = 0;
  let prevFlags = 0;
  for (let i = 0; i < parts.length; i++) {
    const dot = parts[i].indexOf(".");
    start += parseInt(parts[i].slice(0, dot), 36);
    const flags = parseInt(parts[i].slice(dot + 1), 36);
    if (i > 0) table.fill(prevFlags, prevStart, Math.min(start, MAX_CODEPOINTS));
    prevStart = start;
    prevFlags = flags;
  }
  for (const cpt of WHITESPACE_CODEPOINTS) table[cpt] |= CptFlag.WHITESPACE;
  return table;
}

/** unicode_cpt_flags_from_cpt(): category + whitespace bits of a codepoint (UNDEFINED when out of range). */
export function cptFlags(cpt: number): number {
  flagTable ??= buildFlagTable();
  return cpt < MAX_CODEPOINTS ? flagTable[cpt] : CptFlag.UNDEFINED;
}

/** The whole flag table (index = codepoint), for hot loops. */
export function cptFlagTable(): Uint16Array {
  flagTable ??= buildFlagTable();
  return flagTable;
}

/**
 * unicode_tolower() restricted to what the pre-tokenizers need: they only compare the result
 * against ASCII letters ('s', 't', 're', ...). Every codepoint whose llama.cpp lowercase mapping
 * is ASCII is covered: A-Z, U+0130 (İ → i) and U+212A (Kelvin sign → k). Other codepoints are
 * returned unchanged, which can never compare equal to an ASCII letter either way.
 */
export function toLowerForAsciiCompare(cpt: number): number {
  if (cpt >= 0x41 && cpt <= 0x5a) return cpt + 32;
  if (cpt === 0x130) return 0x69;
  if (cpt === 0x212a) return 0x6b;
  return cpt;
}

// ---- GPT-2 byte-level mapping (unicode_byte_to_utf8_map) ----

const BYTE_TO_CHAR: string[] = new Array(256);
const CHAR_TO_BYTE = new Map<number, number>();
{
  const direct = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const cpt = direct(b) ? b : 256 + n++;
    BYTE_TO_CHAR[b] = String.fromCharCode(cpt);
    CHAR_TO_BYTE.set(cpt, b);
  }
}

/** Byte → its printable stand-in character in byte-level BPE vocabularies ("Ġ" for 0x20, ...). */
export function byteToBpeChar(byte: number): string {
  return BYTE_TO_CHAR[byte & 0xff];
}

/** Inverse of byteToBpeChar, by codepoint; undefined when the codepoint stands for no byte. */
export function bpeCharToByte(cpt: number): number | undefined {
  return CHAR_TO_BYTE.get(cpt);
}

/** unicode_byte_encoding_process for one word: UTF-8 bytes → byte-level characters. */
export function bytesToBpeString(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

// ---- UTF-8 ----

const encoder = new TextEncoder();

export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** UTF-8 byte length of a (well-formed) JS string, without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Codepoints of a JS string (lone surrogates become U+FFFD, as their UTF-8 encoding would). */
export function codepointsOf(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out.push(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000);
        i++;
        continue;
      }
    }
    out.push(c >= 0xd800 && c <= 0xdfff ? 0xfffd : c);
  }
  return out;
}

/** Lossy UTF-8 decode (invalid sequences → U+FFFD), as V8's UTF-8 string creation does. */
export function utf8Decode(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
}

/** C isspace() in the "C" locale, as llama.cpp uses for LSTRIP/RSTRIP of special tokens. */
export function isCSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/** Replace lone surrogates by U+FFFD (what UTF-8 encoding the string would produce). */
export function toWellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

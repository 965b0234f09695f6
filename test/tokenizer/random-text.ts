// Seeded random text for tokenizer comparisons: a mix of scripts, whitespace runs, digits,
// emoji sequences, contractions, special-token look-alikes and odd codepoints.

export { mulberry32 as rng } from "../helpers/random.ts";

const WORDS = ["Hello", "world", "the", "quick", "brown", "FOX", "don't", "I'LL", "we've", "it's", "they'Re", "l'amour", "naïve", "café", "Straße", "ÆØÅ", "привет", "мир", "Ελληνικά", "日本語", "中文字符", "한국어", "العربية", "עברית", "हिन्दी", "ไทย", "ក្រុម", "Ωμέγα", "İstanbul", "KELVIN", "x²", "½", "Ⅻ", "१२३", "٣٤٥", "ǅ", "ﬁ"];
const PUNCT = [".", ",", "!", "?", ";", ":", "'", "\"", "(", ")", "[", "]", "{", "}", "-", "--", "...", "/", "\\", "@", "#", "$", "%", "^", "&", "*", "+", "=", "<", ">", "|", "~", "`", "_", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "’", "“", "”", "«", "»", "—", "…", "¿", "¡", "§", "©", "€", "£", "¥", "→", "∑", "√"];
const SPACES = [" ", "  ", "   ", "      ", "\t", "\n", "\n\n", "\r\n", "\r", "\n\r \t", " \n ", "\t\t", "\u00a0", "\u3000", "\u2028", "\u0085", "\u2003", "\u200b", "\ufeff", "\u000b", "\u000c", "    \n", "\n   "];
const EMOJI = ["🦙", "🚀", "😶‍🌫️", "👍🏽", "🇺🇸", "❤️", "✅", "👨‍👩‍👧‍👦", "🙂", "🤖", "1️⃣", "🏳️‍🌈", "𝕏", "𓀀", "🀄"];
const SPECIAL = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|user|>", "<|end|>", "<|assistant|>", "<|eot_id|>", "<|begin_of_text|>", "<|start_header_id|>", "<fim_prefix>", "<|padding|>", "<0x0A>", "▁", "▁▁", "Ġ", "Ċ"];

export function randomText(r: () => number, maxParts = 24): string {
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)];
  const n = 1 + Math.floor(r() * maxParts);
  let s = "";
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.3) s += pick(WORDS);
    else if (k < 0.45) s += pick(SPACES);
    else if (k < 0.55) s += pick(PUNCT);
    else if (k < 0.65) s += String(Math.floor(r() * 10 ** (1 + Math.floor(r() * 9))));
    else if (k < 0.72) s += pick(EMOJI);
    else if (k < 0.77) s += pick(SPECIAL);
    else if (k < 0.85) {
      // random codepoint from assorted ranges (assigned or not)
      const ranges: [number, number][] = [[0x20, 0x7e], [0xa0, 0x2ff], [0x300, 0x36f], [0x370, 0x1fff], [0x2000, 0x2bff], [0x3000, 0x9fff], [0xac00, 0xd7a3], [0xe000, 0xf8ff], [0xfb00, 0xfffd], [0x10000, 0x1ffff], [0x20000, 0x2ffff], [0xe0000, 0xe01ef]];
      const [a, b] = pick(ranges);
      s += String.fromCodePoint(a + Math.floor(r() * (b - a + 1)));
    } else if (k < 0.87) s += String.fromCharCode(Math.floor(r() * 32)); // control characters
    else s += " ";
  }
  return s;
}

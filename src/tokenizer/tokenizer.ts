// Tokenizer: text ↔ token ids for a GGUF vocabulary, matching llama.cpp.
// Reference: llama.cpp src/llama-vocab.cpp — llama_vocab::impl::tokenize (special-token
// partition, BOS/EOS per vocab flags, SPM space prefix and whitespace escaping, BPE
// pre-tokenization), token_to_piece (with its cache) and detokenize (leading-space removal,
// clean_up_tokenization_spaces passes).

import { bpeTokenizeWord } from "./bpe.ts";
import { partitionSpecial } from "./partition.ts";
import { regexSplit } from "./pre-tokenize.ts";
import { spmTokenize } from "./spm.ts";
import { bpeCharToByte, codepointsOf, toWellFormed, utf8Decode, utf8Encode } from "./unicode.ts";
import { NO_TOKEN, TokenAttr, Vocab, type MetadataGetter } from "./vocab.ts";

export interface EncodeOptions {
  /** Add BOS/EOS as the vocabulary asks (tokenizer.ggml.add_bos_token / add_eos_token). Default true. */
  addSpecial?: boolean;
  /** Recognise control tokens written in the text (e.g. "<|im_start|>"). Default false. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Render control/unknown tokens as nothing instead of their text. Default false. */
  skipSpecial?: boolean;
  /** Drop a leading BOS / trailing EOS the vocabulary would add (llama.cpp remove_special). Default false. */
  removeSpecial?: boolean;
}

const EMPTY = new Uint8Array(0);
const WORD_CACHE_LIMIT = 50_000;
const ATTR_SPECIAL = TokenAttr.UNKNOWN | TokenAttr.CONTROL;

export class Tokenizer {
  readonly vocab: Vocab;
  private readonly pieces: (Uint8Array | undefined)[];
  private wordCache = new Map<string, number[]>();

  constructor(vocab: Vocab) {
    this.vocab = vocab;
    this.pieces = new Array(vocab.nTokens);
  }

  /** Build from GGUF metadata, e.g. `Tokenizer.fromMetadata((k) => gguf.getValue(k))`. */
  static fromMetadata(get: MetadataGetter): Tokenizer {
    return new Tokenizer(Vocab.fromMetadata(get));
  }

  get nVocab(): number {
    return this.vocab.nTokens;
  }
  get bos(): number | undefined {
    return orUndefined(this.vocab.special.bos);
  }
  get eos(): number | undefined {
    return orUndefined(this.vocab.special.eos);
  }
  get eot(): number | undefined {
    return orUndefined(this.vocab.special.eot);
  }
  get eom(): number | undefined {
    return orUndefined(this.vocab.special.eom);
  }
  get unk(): number | undefined {
    return orUndefined(this.vocab.special.unk);
  }
  get pad(): number | undefined {
    return orUndefined(this.vocab.special.pad);
  }
  get addBos(): boolean {
    return this.vocab.addBos;
  }
  get addEos(): boolean {
    return this.vocab.addEos;
  }
  /** tokenizer.chat_template, if the model has one. */
  get chatTemplate(): string | undefined {
    return this.vocab.chatTemplate;
  }
  /** All end-of-generation token ids. */
  get eogIds(): ReadonlySet<number> {
    return this.vocab.eogIds;
  }

  isEog(id: number): boolean {
    return this.vocab.isEog(id);
  }
  isControl(id: number): boolean {
    return this.vocab.hasAttr(id, TokenAttr.CONTROL);
  }
  /** The token's vocabulary text (byte-level / ▁-escaped form). */
  tokenText(id: number): string {
    return this.vocab.tokens[id];
  }
  /** The id of a token by its exact vocabulary text, if any. */
  tokenId(text: string): number | undefined {
    return orUndefined(this.vocab.textToToken(text));
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addSpecial = opts.addSpecial ?? true;
    const v = this.vocab;
    const sp = v.special;
    const fragments = partitionSpecial(v, toWellFormed(text), opts.parseSpecial ?? false);
    const out: number[] = [];
    if (addSpecial && v.addBos) {
      if (sp.bos === NO_TOKEN) throw new Error("vocabulary asks for BOS but has none");
      out.push(sp.bos);
    }
    if (v.type === "spm") {
      let prevSpecial = true; // prefix with space if first token
      for (const f of fragments) {
        if (typeof f === "number") {
          out.push(f);
          prevSpecial = true;
          continue;
        }
        const t = v.addSpacePrefix && prevSpecial ? " " + f : f;
        spmTokenize(v, t.replaceAll(" ", "\u2581"), out);
        prevSpecial = false;
      }
    } else {
      const pt = v.preTokenizer!;
      for (const f of fragments) {
        if (typeof f === "number") {
          out.push(f);
          continue;
        }
        const t = v.escapeWhitespaces ? f.replaceAll(" ", "\u2581") : f;
        for (const word of regexSplit(t, pt.exprs, pt.byteEncode)) this.encodeWord(word, pt.byteEncode, out);
      }
    }
    if (addSpecial && v.addEos) {
      if (sp.eos === NO_TOKEN) throw new Error("vocabulary asks for EOS but has none");
      out.push(sp.eos);
    }
    return out;
  }

  private encodeWord(word: string, byteEncode: boolean, out: number[]): void {
    let ids = this.wordCache.get(word);
    if (ids === undefined) {
      ids = [];
      bpeTokenizeWord(this.vocab, word, byteEncode, ids);
      if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache = new Map();
      this.wordCache.set(word, ids);
    }
    for (const id of ids) out.push(id);
  }

  /**
   * The raw bytes a token stands for (llama.cpp token_to_piece). Control and unknown tokens give
   * their text when `special` (default true), else nothing. May be part of a UTF-8 character.
   */
  tokenToPiece(id: number, opts: { special?: boolean } = {}): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.nTokens) throw new RangeError(`token id out of range: ${id}`);
    if (!(opts.special ?? true) && this.vocab.attrs[id] & ATTR_SPECIAL) return EMPTY;
    return (this.pieces[id] ??= this.computePiece(id));
  }

  private computePiece(id: number): Uint8Array {
    const v = this.vocab;
    const attr = v.attrs[id];
    const text = v.tokens[id];
    if (attr & (ATTR_SPECIAL | TokenAttr.USER_DEFINED)) return utf8Encode(text);
    if (attr & TokenAttr.NORMAL) {
      if (v.type === "spm" || v.escapeWhitespaces) return utf8Encode(text.replaceAll("\u2581", " "));
      return decodeByteLevel(text);
    }
    if (attr & TokenAttr.BYTE) return Uint8Array.of(v.tokenToByte(id));
    return EMPTY;
  }

  /** llama.cpp detokenize, as raw bytes. */
  decodeBytes(ids: readonly number[], opts: DecodeOptions = {}): Uint8Array {
    const v = this.vocab;
    const special = !(opts.skipSpecial ?? false);
    let removeSpace = v.addSpacePrefix;
    let from = 0;
    let to = ids.length;
    if (opts.removeSpecial && v.addBos && to > 0 && ids[0] === v.special.bos) {
      removeSpace = false;
      from++;
    }
    if (opts.removeSpecial && v.addEos && to > from && ids[to - 1] === v.special.eos) to--;

    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = from; i < to; i++) {
      let piece = this.tokenToPiece(ids[i], { special });
      if (removeSpace && piece.length > 0 && piece[0] === 0x20) piece = piece.subarray(1);
      removeSpace = false;
      parts.push(piece);
      total += piece.length;
    }
    const text = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      text.set(p, off);
      off += p.length;
    }
    return v.cleanSpaces ? cleanSpaces(text) : text;
  }

  /** Token ids → text (invalid UTF-8 becomes U+FFFD). */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    return utf8Decode(this.decodeBytes(ids, opts));
  }
}

function orUndefined(id: number): number | undefined {
  return id === NO_TOKEN ? undefined : id;
}

/** llama_decode_text: byte-level characters back to bytes; unknown characters are spelled out. */
function decodeByteLevel(text: string): Uint8Array {
  const out: number[] = [];
  for (const cpt of codepointsOf(text)) {
    const b = bpeCharToByte(cpt);
    if (b !== undefined) {
      out.push(b);
      continue;
    }
    const utf8 = utf8Encode(String.fromCodePoint(cpt));
    const hex = [...utf8].map((x) => x.toString(16).padStart(2, "0")).join("");
    out.push(...utf8Encode(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return Uint8Array.from(out);
}

/** The three clean_up_tokenization_spaces passes of llama_vocab::impl::detokenize, on bytes. */
function cleanSpaces(text: Uint8Array): Uint8Array {
  const t = text;
  const SP = 0x20;
  const Q = 0x27;
  const c = (s: string) => s.charCodeAt(0);
  // first pass: " ?", " !", " .", " ,"
  const total1 = t.length;
  let total = total1 ? 1 : 0;
  for (let i = 1; i < total1; i++) {
    const x = t[i];
    if (t[i - 1] === SP && (x === c("?") || x === c("!") || x === c(".") || x === c(","))) total--;
    t[total++] = x;
  }
  // second pass: strip single apostrophe between spaces
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; i++) {
    const x = t[i];
    if (x === Q && i + 1 < total2 && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0;
    }
    t[total++] = x;
  }
  // third pass: apostrophe contractions " 's", " 'm", " 're", " 've"
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; i++) {
    const x = t[i];
    if (t[i - 1] === SP && x === Q && i + 1 < total3) {
      const x1 = t[i + 1];
      if (x1 === c("s") || x1 === c("m")) total--;
      else if (x1 !== c("t") && x1 !== c("d") && i + 2 < total3) {
        const x2 = t[i + 2];
        if ((x1 === c("r") && x2 === c("e")) || (x1 === c("v") && x2 === c("e"))) total--;
      }
    }
    t[total++] = x;
  }
  return t.subarray(0, total);
}

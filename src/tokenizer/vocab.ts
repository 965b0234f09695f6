// Vocabulary from GGUF metadata (tokenizer.ggml.*).
// Reference: llama.cpp src/llama-vocab.cpp, llama_vocab::impl::load (defaults per tokenizer
// model, pre-tokenizer flags, special token ids, EOT/EOM/FIM auto-detection, end-of-generation
// set, special-token cache, per-model token attributes), byte_to_token, token_to_byte,
// find_bpe_rank. Supported tokenizer models: "llama" (SPM), "gpt2" and "gemma4" (BPE).

import type { GGUFValue } from "../gguf/types.ts";
import { preTokenizerFor, type PreTokenizerConfig } from "./pre-tokenize-table.ts";
import { utf8Length } from "./unicode.ts";

/** Reads one metadata key; undefined when absent. `openGGUF(path).getValue` fits. */
export type MetadataGetter = (key: string) => GGUFValue | undefined;

/** tokenizer.ggml.token_type values (llama.h enum llama_token_type). */
export const TokenType = { UNDEFINED: 0, NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Token attribute bits (llama.h enum llama_token_attr). */
export const TokenAttr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

/** LLAMA_TOKEN_NULL. */
export const NO_TOKEN = -1;

export type VocabType = "spm" | "bpe";

const TYPE_TO_ATTR = [
  TokenAttr.UNDEFINED, TokenAttr.NORMAL, TokenAttr.UNKNOWN, TokenAttr.CONTROL,
  TokenAttr.USER_DEFINED, TokenAttr.UNUSED, TokenAttr.BYTE,
];

// Auto-detected by token text when the metadata does not name them (load(), same lists).
const EOT_TEXTS = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"];
const EOM_TEXTS = ["<|eom_id|>"];
const FIM_PRE_TEXTS = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"];
const FIM_SUF_TEXTS = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"];
const FIM_MID_TEXTS = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"];
const FIM_PAD_TEXTS = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_TEXTS = ["<|file_sep|>"];
const EOG_TEXTS = new Set(["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["]);

/** Special token ids (NO_TOKEN when absent). */
export interface SpecialIds {
  bos: number; eos: number; eot: number; eom: number; unk: number; sep: number; pad: number; mask: number;
  fimPre: number; fimSuf: number; fimMid: number; fimPad: number; fimRep: number; fimSep: number;
}

const SPECIAL_KEYS: ReadonlyArray<readonly [string, keyof SpecialIds]> = [
  ["bos_token_id", "bos"], ["eos_token_id", "eos"], ["eot_token_id", "eot"], ["eom_token_id", "eom"],
  ["unknown_token_id", "unk"], ["seperator_token_id", "sep"], ["padding_token_id", "pad"], ["mask_token_id", "mask"],
  ["fim_pre_token_id", "fimPre"], ["fim_suf_token_id", "fimSuf"], ["fim_mid_token_id", "fimMid"],
  ["fim_pad_token_id", "fimPad"], ["fim_rep_token_id", "fimRep"], ["fim_sep_token_id", "fimSep"],
  ["prefix_token_id", "fimPre"], ["suffix_token_id", "fimSuf"], ["middle_token_id", "fimMid"], // deprecated keys
];

export class Vocab {
  type!: VocabType;
  /** tokenizer.ggml.model */
  model!: string;
  /** tokenizer.ggml.pre ("" when absent) */
  pre = "";
  /** BPE pre-tokenizer (undefined for SPM). */
  preTokenizer?: PreTokenizerConfig;
  tokens: string[] = [];
  scores!: Float32Array;
  attrs!: Uint16Array;
  tokenToId = new Map<string, number>();
  /** "left right" → merge rank (find_bpe_rank). */
  bpeRanks = new Map<string, number>();
  special: SpecialIds = {
    bos: NO_TOKEN, eos: NO_TOKEN, eot: NO_TOKEN, eom: NO_TOKEN, unk: NO_TOKEN, sep: NO_TOKEN, pad: NO_TOKEN, mask: NO_TOKEN,
    fimPre: NO_TOKEN, fimSuf: NO_TOKEN, fimMid: NO_TOKEN, fimPad: NO_TOKEN, fimRep: NO_TOKEN, fimSep: NO_TOKEN,
  };
  addSpacePrefix = false;
  addBos = false;
  addEos = false;
  addSep = false;
  ignoreMerges = false;
  cleanSpaces = false;
  removeExtraWhitespaces = false;
  escapeWhitespaces = true;
  /** Tokens that end generation. */
  eogIds = new Set<number>();
  /** Control / user-defined / unknown tokens, longest text (in UTF-8 bytes) first. */
  specialTokens: number[] = [];
  chatTemplate?: string;

  get nTokens(): number {
    return this.tokens.length;
  }

  static fromMetadata(get: MetadataGetter): Vocab {
    const v = new Vocab();
    v.load(get);
    return v;
  }

  textToToken(text: string): number {
    return this.tokenToId.get(text) ?? NO_TOKEN;
  }

  /** find_bpe_rank: merge rank of (left, right), -1 when not a merge. */
  bpeRank(left: string, right: string): number {
    return this.bpeRanks.get(left + " " + right) ?? -1;
  }

  /** byte_to_token: the token standing for one raw byte. Throws when the vocabulary has none. */
  byteToToken(byte: number): number {
    if (this.type === "spm") {
      const id = this.tokenToId.get(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`);
      if (id !== undefined) return id;
      const id2 = byte < 0x80 ? this.tokenToId.get(String.fromCharCode(byte)) : undefined;
      if (id2 !== undefined) return id2;
      throw new Error(`vocabulary has no token for byte 0x${byte.toString(16)}`);
    }
    throw new Error("byteToToken is only used for SPM vocabularies");
  }

  /** token_to_byte: the byte of a BYTE token ("<0xXX>"). */
  tokenToByte(id: number): number {
    return parseInt(this.tokens[id].slice(3, 5), 16);
  }

  hasAttr(id: number, attr: number): boolean {
    return (this.attrs[id] & attr) !== 0;
  }

  isEog(id: number): boolean {
    return id !== NO_TOKEN && this.eogIds.has(id);
  }

  private load(get: MetadataGetter): void {
    const str = (k: string) => { const x = get(k); return typeof x === "string" ? x : undefined; };
    const bool = (k: string) => { const x = get(k); return typeof x === "boolean" ? x : undefined; };
    const num = (k: string) => { const x = get(k); return typeof x === "number" || typeof x === "bigint" ? Number(x) : undefined; };

    const model = str("tokenizer.ggml.model");
    if (model === undefined) throw new Error("GGUF has no tokenizer.ggml.model");
    this.model = model;
    this.pre = str("tokenizer.ggml.pre") ?? "";
    const sp = this.special;
    if (model === "llama") {
      this.type = "spm";
      sp.bos = 1; sp.eos = 2; sp.unk = 0;
      this.addSpacePrefix = true; this.cleanSpaces = false; this.addBos = true; this.addEos = false;
    } else if (model === "gpt2" || model === "gemma4") {
      this.type = "bpe";
      if (model === "gpt2") { sp.bos = 11; sp.eos = 11; } else this.pre = "gemma4";
      const merges = get("tokenizer.ggml.merges");
      if (!Array.isArray(merges)) throw new Error("cannot find tokenizer merges in model file");
      for (let i = 0; i < merges.length; i++) {
        const m = merges[i] as string;
        // llama.cpp splits at the first space after position 0; without one the pair is ("", "").
        const key = m.indexOf(" ", 1) >= 0 ? m : " ";
        if (!this.bpeRanks.has(key)) this.bpeRanks.set(key, i);
      }
      this.addSpacePrefix = false; this.escapeWhitespaces = false; this.cleanSpaces = true;
      const pt = preTokenizerFor(this.pre);
      this.preTokenizer = pt;
      const f = pt.flags;
      if (f.ignoreMerges) this.ignoreMerges = true;
      if (f.addBos) this.addBos = true;
      if (f.cleanSpaces === false) this.cleanSpaces = false;
      if (f.escapeWhitespaces) this.escapeWhitespaces = true;
      if (f.addSep) this.addSep = true;
      if (f.noDefaultBos) sp.bos = NO_TOKEN;
    } else {
      throw new Error(`unsupported tokenizer model: '${model}' (supported: llama, gpt2, gemma4)`);
    }
    this.addSpacePrefix = bool("tokenizer.ggml.add_space_prefix") ?? this.addSpacePrefix;
    this.removeExtraWhitespaces = bool("tokenizer.ggml.remove_extra_whitespaces") ?? false;

    const tokens = get("tokenizer.ggml.tokens");
    if (!Array.isArray(tokens)) throw new Error("cannot find tokenizer vocab in model file");
    const n = tokens.length;
    const scores = get("tokenizer.ggml.scores");
    const types = get("tokenizer.ggml.token_type");
    this.scores = new Float32Array(n);
    if (scores !== undefined) {
      if (!ArrayBuffer.isView(scores) || (scores as Float32Array).length < n) throw new Error("invalid tokenizer.ggml.scores");
      for (let i = 0; i < n; i++) this.scores[i] = Number((scores as Float32Array)[i]);
    }
    if (types !== undefined && (!ArrayBuffer.isView(types) || (types as Int32Array).length < n)) throw new Error("invalid tokenizer.ggml.token_type");
    this.attrs = new Uint16Array(n);
    this.tokens = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      let word = tokens[i] as string;
      if (word === "") word = `[EMPTY_${i}]`;
      this.tokens[i] = word;
      this.tokenToId.set(word, i);
      const t = types === undefined ? TokenType.NORMAL : Number((types as Int32Array)[i]);
      this.attrs[i] = TYPE_TO_ATTR[t] ?? TokenAttr.UNDEFINED;
    }

    for (const [key, field] of SPECIAL_KEYS) {
      if (sp[field] >= n) sp[field] = NO_TOKEN; // default out of range
      const id = num(`tokenizer.ggml.${key}`);
      if (id !== undefined && id >= 0 && id < n) sp[field] = id;
    }
    this.addBos = bool("tokenizer.ggml.add_bos_token") ?? this.addBos;
    this.addEos = bool("tokenizer.ggml.add_eos_token") ?? this.addEos;
    this.addSep = bool("tokenizer.ggml.add_sep_token") ?? this.addSep;
    if (this.preTokenizer?.type === "GEMMA4") this.addBos = true;
    this.chatTemplate = str("tokenizer.chat_template");

    this.detectSpecials();
    this.buildEog();
    for (let id = 0; id < n; id++) {
      if (this.attrs[id] & (TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN)) this.specialTokens.push(id);
    }
    const len = this.specialTokens.map((id) => utf8Length(this.tokens[id]));
    const order = this.specialTokens.map((_, i) => i).sort((a, b) => len[b] - len[a] || a - b);
    this.specialTokens = order.map((i) => this.specialTokens[i]);
    this.applyModelAttrs((str("general.name") ?? "").toLowerCase(), str("general.architecture") ?? "");
  }

  private markControl(id: number): void {
    this.attrs[id] |= TokenAttr.CONTROL;
  }

  /** Ids (ascending) of the tokens with one of these texts. */
  private idsOf(texts: Iterable<string>): number[] {
    const ids: number[] = [];
    for (const t of texts) {
      const id = this.tokenToId.get(t);
      if (id !== undefined) ids.push(id);
    }
    return ids.sort((a, b) => a - b);
  }

  private detectSpecials(): void {
    const sp = this.special;
    const auto: ReadonlyArray<readonly [keyof SpecialIds, readonly string[]]> = [
      ["eot", EOT_TEXTS], ["eom", EOM_TEXTS], ["fimPre", FIM_PRE_TEXTS], ["fimSuf", FIM_SUF_TEXTS],
      ["fimMid", FIM_MID_TEXTS], ["fimPad", FIM_PAD_TEXTS], ["fimRep", FIM_REP_TEXTS], ["fimSep", FIM_SEP_TEXTS],
    ];
    // llama.cpp takes the first match in token_to_id's hash order (unspecified); we take the
    // first text of the list that the vocabulary has, e.g. <|eot_id|> before <|end_of_text|>.
    for (const [field, texts] of auto) {
      if (sp[field] !== NO_TOKEN) continue;
      const id = texts.map((t) => this.tokenToId.get(t)).find((x) => x !== undefined);
      if (id === undefined) continue;
      sp[field] = id;
      this.markControl(id);
    }
    // control tokens whose text says "unused" are unused
    for (let id = 0; id < this.tokens.length; id++) {
      if (this.attrs[id] & TokenAttr.CONTROL && this.tokens[id].includes("unused") && this.tokenToId.get(this.tokens[id]) === id) {
        this.attrs[id] |= TokenAttr.UNUSED;
      }
    }
  }

  private buildEog(): void {
    const sp = this.special;
    const eog = this.eogIds;
    for (const id of [sp.fimPad, sp.fimRep, sp.fimSep]) if (id !== NO_TOKEN) eog.add(id);
    for (const id of this.idsOf(EOG_TEXTS)) {
      eog.add(id);
      this.markControl(id);
    }
    // gpt-oss: always render these
    for (const id of this.idsOf(["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"])) this.attrs[id] = TokenAttr.USER_DEFINED;
    for (const id of [sp.eos, sp.eot, sp.eom]) if (id !== NO_TOKEN) eog.add(id);

    const byText = (t: string) => [...eog].find((id) => id >= 0 && id < this.tokens.length && this.tokens[id] === t);
    const end = byText("<|end|>");
    const hasCall = byText("<|call|>") !== undefined || byText("<|calls|>") !== undefined;
    if (end !== undefined && hasCall && (byText("<|return|>") !== undefined || byText("<|flush|>") !== undefined)) {
      eog.delete(end);
      this.attrs[end] = TokenAttr.USER_DEFINED;
    }
    const s = byText("</s>");
    if (s !== undefined && byText("<|tool_response>") !== undefined) {
      eog.delete(s);
      this.attrs[s] = TokenAttr.NORMAL;
    }
  }

  /** "Handle per token attributes": LSTRIP/RSTRIP set by model name (llama.cpp has no GGUF key). */
  private applyModelAttrs(name: string, arch: string): void {
    const set = (text: string, attr: number, on: boolean) => {
      const id = this.tokenToId.get(text);
      if (id !== undefined) this.attrs[id] = on ? this.attrs[id] | attr : this.attrs[id] & ~attr;
    };
    if (["jina-v2-de", "jina-v2-es", "jina-v2-code"].some((s) => this.pre.includes(s)) || ["nomic-bert-moe", "jina-bert-v3"].some((s) => arch.includes(s))) {
      set("<mask>", TokenAttr.LSTRIP, true);
    } else if (name.includes("phi-3") || name.includes("phi3")) {
      for (const id of this.specialTokens) this.attrs[id] |= TokenAttr.RSTRIP;
      set("</s>", TokenAttr.RSTRIP, true);
      for (const t of ["<unk>", "<s>", "<|endoftext|>"]) set(t, TokenAttr.RSTRIP, false);
    } else if (name.includes("modern-bert")) {
      set("[MASK]", TokenAttr.LSTRIP, true);
    }
  }
}

// Hugging Face tokenizer.json (+ tokenizer_config.json) → the GGUF tokenizer metadata
// llama.cpp's converter would write, so that Tokenizer.fromMetadata can use it.
// Reference: llama.cpp convert_hf_to_gguf.py / conversion/base.py (get_vocab_base,
// does_token_look_special, _set_vocab_gpt2, _set_vocab_llama_hf) and gguf-py/gguf/vocab.py
// (SpecialVocab: merges, special token ids, add_*_token, chat_template).
//
// Two families are supported:
// - byte-level BPE (GPT-2 style: Llama 3, Qwen 2/3, SmolLM2, ...) → tokenizer.ggml.model "gpt2",
//   `tokenizer.ggml.pre` from the caller or detected from the pre_tokenizer (detectPreTokenizer);
// - SentencePiece-style BPE with byte fallback (Llama 2, Phi-3 tokenizer.json) → model "llama".
//   tokenizer.json has no piece scores; llama.cpp's own LlamaHfVocab writes -1000 for all, which
//   breaks merge order. We derive score = -(rank of the first merge producing the piece), so that
//   llama.cpp's score-driven SPM merging follows the BPE merge order.
// Deviation: llama.cpp re-normalizes non-normalized added tokens with the HF tokenizer
// (decode(encode(token))); we keep their text as is.

import type { GGUFValue } from "../gguf/types.ts";
import { Tokenizer } from "./tokenizer.ts";
import { TokenType, type MetadataGetter } from "./vocab.ts";

export interface HfAddedToken {
  id: number;
  content: string;
  special?: boolean;
  normalized?: boolean;
}

/** The parts of tokenizer.json we read. */
export interface HfTokenizerJson {
  model: {
    type: string;
    vocab: Record<string, number>;
    merges?: (string | [string, string])[];
    byte_fallback?: boolean;
    unk_token?: string | null;
  };
  added_tokens?: HfAddedToken[];
  normalizer?: HfComponent | null;
  pre_tokenizer?: HfComponent | null;
  post_processor?: HfComponent | null;
  decoder?: HfComponent | null;
}

/** A normalizer / pre_tokenizer / post_processor / decoder node. */
export interface HfComponent {
  type: string;
  [key: string]: unknown;
}

export interface HfConvertOptions {
  /** tokenizer_config.json contents: special tokens, add_bos_token/add_eos_token, chat_template. */
  tokenizerConfig?: Record<string, unknown>;
  /** `tokenizer.ggml.pre` for byte-level BPE; detected from the pre_tokenizer when absent. */
  pre?: string;
  /** Vocabulary size to pad to with [PAD<i>] tokens (default: config.json vocab_size, else the ids used). */
  vocabSize?: number;
  /** config.json contents: vocab_size, and {bos,eos,...}_token_id where the tokenizer files name none. */
  modelConfig?: Record<string, unknown>;
  /** Override the chat template (else tokenizer_config.json chat_template). */
  chatTemplate?: string;
}

const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function flatten(c: HfComponent | null | undefined, listKey: string): HfComponent[] {
  if (!c) return [];
  return c.type === "Sequence" ? ((c[listKey] as HfComponent[] | undefined) ?? []) : [c];
}

/**
 * Guess `tokenizer.ggml.pre` from a byte-level BPE pre_tokenizer (llama.cpp hashes a probe
 * tokenization instead; this covers the common shapes): the Llama 3 split regex → "llama-bpe",
 * the Qwen 2 one → "qwen2", Digits(individual) + ByteLevel → "smollm" (StarCoder has the same
 * shape: pass pre: "starcoder" for it), plain ByteLevel → "gpt-2".
 */
export function detectPreTokenizer(json: HfTokenizerJson): string {
  const steps = flatten(json.pre_tokenizer, "pretokenizers");
  const split = steps.find((s) => s.type === "Split");
  const regex = (split?.pattern as { Regex?: string } | undefined)?.Regex;
  if (regex === LLAMA3_REGEX) return "llama-bpe";
  if (regex === QWEN2_REGEX) return "qwen2";
  const byteLevel = steps.find((s) => s.type === "ByteLevel");
  const digits = steps.find((s) => s.type === "Digits");
  if (!split && byteLevel && byteLevel.use_regex !== false) {
    if (digits?.individual_digits === true) return "smollm";
    if (!digits) return "gpt-2";
  }
  throw new Error(`cannot detect tokenizer.ggml.pre for pre_tokenizer ${JSON.stringify(json.pre_tokenizer)}; pass options.pre`);
}

/** does_token_look_special (conversion/base.py). */
function looksSpecial(t: string): boolean {
  return ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(t) || (t.startsWith("<|") && t.endsWith("|>")) ||
    (t.startsWith("<｜") && t.endsWith("｜>")) || (t.startsWith("<unused") && t.endsWith(">"));
}

function isSpmStyle(json: HfTokenizerJson): boolean {
  if (json.model.type !== "BPE" || !json.model.byte_fallback) return false;
  return flatten(json.decoder, "decoders").some((d) => d.type === "Replace" || d.type === "ByteFallback" || d.type === "Metaspace");
}

/** Convert tokenizer.json (object or text) to GGUF tokenizer metadata (key → value). */
export function hfToGGUFMetadata(tokenizerJson: HfTokenizerJson | string, opts: HfConvertOptions = {}): Map<string, GGUFValue> {
  const json: HfTokenizerJson = typeof tokenizerJson === "string" ? JSON.parse(tokenizerJson) : tokenizerJson;
  if (json.model.type !== "BPE") throw new Error(`unsupported tokenizer.json model type: ${json.model.type}`);
  const spm = isSpmStyle(json);
  const added = json.added_tokens ?? [];
  const addedById = new Map(added.map((t) => [t.id, t]));

  const vocab = json.model.vocab;
  const texts = Object.keys(vocab); // (Object.entries is slow on 150k-key objects)
  const cfgVocab = opts.modelConfig?.vocab_size;
  let n = opts.vocabSize ?? (typeof cfgVocab === "number" ? cfgVocab : 0);
  for (const text of texts) n = Math.max(n, vocab[text] + 1);
  for (const t of added) n = Math.max(n, t.id + 1);
  const tokens: string[] = new Array(n);
  const types = new Int32Array(n);
  for (const text of texts) {
    tokens[vocab[text]] = text;
    types[vocab[text]] = TokenType.NORMAL;
  }
  for (let i = 0; i < n; i++) {
    const a = addedById.get(i);
    if (a) {
      if (a.special || looksSpecial(a.content)) {
        tokens[i] = a.content;
        types[i] = TokenType.CONTROL;
      } else {
        tokens[i] = a.content.replaceAll("\u2581", " "); // pre-normalize user-defined spaces
        types[i] = TokenType.USER_DEFINED;
      }
    } else if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TokenType.UNUSED;
    } else if (spm && /^<0x[0-9A-Fa-f]{2}>$/.test(tokens[i])) {
      types[i] = TokenType.BYTE;
    }
  }

  const meta = new Map<string, GGUFValue>();
  const merges = (json.model.merges ?? []).map((m) =>
    typeof m === "string" ? m : m.map((part) => part.replaceAll(" ", "\u0120")).join(" "),
  );
  if (spm) {
    if (json.model.unk_token) {
      const unk = json.model.vocab[json.model.unk_token];
      if (unk !== undefined) types[unk] = TokenType.UNKNOWN;
    }
    meta.set("tokenizer.ggml.model", "llama");
    meta.set("tokenizer.ggml.pre", "default");
    meta.set("tokenizer.ggml.tokens", tokens);
    meta.set("tokenizer.ggml.scores", spmScores(tokens, types, merges));
    meta.set("tokenizer.ggml.token_type", types);
    const prefix = flatten(json.normalizer, "normalizers").some((s) => s.type === "Prepend" && s.prepend === "\u2581") ||
      flatten(json.pre_tokenizer, "pretokenizers").some((s) => s.type === "Metaspace" && s.prepend_scheme !== "never" && s.add_prefix_space !== false);
    meta.set("tokenizer.ggml.add_space_prefix", prefix);
  } else {
    meta.set("tokenizer.ggml.model", "gpt2");
    meta.set("tokenizer.ggml.pre", opts.pre ?? detectPreTokenizer(json));
    meta.set("tokenizer.ggml.tokens", tokens);
    meta.set("tokenizer.ggml.token_type", types);
    meta.set("tokenizer.ggml.merges", merges);
  }
  addSpecialVocab(meta, json, opts);
  return meta;
}

/** SPM scores from merge order: -(first rank producing the piece); 0 where no merge does. */
function spmScores(tokens: string[], types: Int32Array, merges: string[]): Float32Array {
  const scores = new Float32Array(tokens.length);
  const id = new Map(tokens.map((t, i) => [t, i]));
  const seen = new Uint8Array(tokens.length);
  merges.forEach((m, rank) => {
    const sp = m.indexOf(" ", 1);
    const t = id.get(m.slice(0, sp) + m.slice(sp + 1));
    if (t !== undefined && !seen[t]) {
      seen[t] = 1;
      scores[t] = -rank;
    }
  });
  for (let i = 0; i < tokens.length; i++) {
    if (types[i] === TokenType.USER_DEFINED || types[i] === TokenType.CONTROL) scores[i] = -1000;
    else if (types[i] === TokenType.UNUSED) scores[i] = -10000;
    else if (!seen[i] && types[i] === TokenType.NORMAL && [...tokens[i]].length > 1) scores[i] = -1e9;
  }
  return scores;
}

/** SpecialVocab._try_load_from_tokenizer_json, reduced to what tokenizer.json/config carry. */
function addSpecialVocab(meta: Map<string, GGUFValue>, json: HfTokenizerJson, opts: HfConvertOptions): void {
  const cfg = opts.tokenizerConfig ?? {};
  const content = (v: unknown) => (typeof v === "string" ? v : typeof (v as { content?: unknown })?.content === "string" ? (v as { content: string }).content : undefined);
  const tok: Record<string, string | undefined> = {};
  for (const typ of ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]) tok[typ] = content(cfg[`${typ}_token`]);
  tok.bos ??= tok.cls;
  tok.eos ??= tok.sep;
  const addFlags: Record<string, boolean> = {};
  for (const proc of flatten(json.post_processor, "processors")) {
    if (proc.type === "TemplateProcessing") {
      const single = (proc.single as { SpecialToken?: { id: string } }[] | undefined) ?? [];
      if (single.length > 1) {
        const first = single[0].SpecialToken?.id;
        if (first) {
          tok.bos ??= first;
          addFlags.bos = first === tok.bos || first === tok.cls;
        }
        const last = single[single.length - 1].SpecialToken?.id;
        if (last) {
          tok.eos ??= last;
          addFlags.eos = last === tok.eos;
        }
      }
    } else if (proc.type === "RobertaProcessing") {
      addFlags.bos = addFlags.eos = addFlags.sep = true;
    }
  }
  for (const typ of ["bos", "eos", "sep"]) if (typeof cfg[`add_${typ}_token`] === "boolean") addFlags[typ] = cfg[`add_${typ}_token`] as boolean;

  const keys: Record<string, string> = { bos: "bos_token_id", eos: "eos_token_id", unk: "unknown_token_id", sep: "seperator_token_id", pad: "padding_token_id", cls: "cls_token_id", mask: "mask_token_id" };
  for (const [typ, key] of Object.entries(keys)) {
    const text = tok[typ];
    let id = text === undefined ? undefined : json.added_tokens?.find((t) => t.content === text)?.id;
    const fromModel = opts.modelConfig?.[`${typ}_token_id`]; // _try_load_from_config_json
    if (id === undefined && typeof fromModel === "number") id = fromModel;
    if (id !== undefined) meta.set(`tokenizer.ggml.${key}`, id);
  }
  for (const [typ, on] of Object.entries(addFlags)) meta.set(`tokenizer.ggml.add_${typ}_token`, on);
  const template = opts.chatTemplate ?? (typeof cfg.chat_template === "string" ? cfg.chat_template : undefined);
  if (template !== undefined) meta.set("tokenizer.chat_template", template);
}

/** A MetadataGetter over a key → value map (e.g. from hfToGGUFMetadata). */
export function mapGetter(meta: ReadonlyMap<string, GGUFValue>): MetadataGetter {
  return (k) => meta.get(k);
}

/** Tokenizer straight from tokenizer.json (+ options), via the GGUF metadata it converts to. */
export function tokenizerFromHf(tokenizerJson: HfTokenizerJson | string, opts: HfConvertOptions = {}): Tokenizer {
  return Tokenizer.fromMetadata(mapGetter(hfToGGUFMetadata(tokenizerJson, opts)));
}

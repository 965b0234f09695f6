// The pre-tokenizer families selected by `tokenizer.ggml.pre` (BPE vocabularies).
// Reference: llama.cpp src/llama-vocab.cpp — the llm_tokenizer_bpe constructor (regex_exprs per
// LLAMA_VOCAB_PRE_TYPE_*, copied verbatim: the custom splitters are keyed by exact text) and
// llama_vocab::impl::load (pre name → type and the vocab flags it sets).

export const REGEX_GROUPS: ReadonlyArray<readonly [types: readonly string[], exprs: readonly string[]]> = [
  [["LLAMA3"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["JAIS2"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
  ]],
  [["DBRX", "SMAUG"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["DEEPSEEK_LLM"], [
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
  ]],
  [["DEEPSEEK3_LLM", "HUNYUAN_DENSE", "JOYAI_LLM", "HY_V4"], [
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["SPARK2_5"], [
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+",
    "\\p{N}",
  ]],
  [["YOUTU"], [
    "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["DEEPSEEK_CODER"], [
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
  ]],
  [["FALCON"], [
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
  ]],
  [["STARCODER", "REFACT", "COMMAND_R", "SMOLLM", "CODESHELL", "EXAONE", "MINERVA", "MELLUM2"], [
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  ]],
  [["GPT2", "MPT", "OLMO", "JAIS", "TRILLION", "GRANITE_DOCLING"], [
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  ]],
  [["STABLELM2", "QWEN2", "HUNYUAN", "SOLAR_OPEN"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["QWEN35"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["PORO", "BLOOM", "GPT3_FINNISH"], [
    " ?[^(\\s|.,!?…。，、।۔،)]+",
  ]],
  [["CHATGLM4"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["VIKING"], [
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    "\\p{N}",
  ]],
  [["TEKKEN"], [
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["CHAMELEON"], [
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  ]],
  [["GPT4O", "MINIMAX_M2"], [
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["GRANITE_EMB_MULTI"], [
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["TINY_AYA"], [
    "\\d{1,3}(?=(?:\\d{3})*\\b)",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["KIMI_K2"], [
    "\\p{Han}+",
  ]],
  [["SUPERBPE"], [
    "\\p{N}+",
    "(?=(\\d{3})+(?!\\d))",
  ]],
  [["BAILINGMOE"], [
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
  ]],
  [["SEED_CODER"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["UFAKZEKA"], [
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["GROK_2"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["AFMOE"], [
    "\\p{AFMoE_digits}",
    "[一-鿿㐀-䶿豈-﫿぀-ゟ゠-ヿ･-ﾟ⼀-⿟เ-๿຀-໿ក-៿က-႟ꩠ-ꩿꧠ-꧿가-힯ᄀ-ᇿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["LAGUNA"], [
    "[^\\n]+|[\\n]+",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["EXAONE_MOE"], [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
  ]],
  [["GEMMA4"], [
    "[^\\n]+|[\\n]+",
  ]],
  [["SARVAM_MOE"], [
    "[^\\n]+|[\\n]+",
  ]],
  [["MINICPM5"], [
    "\\p{N}{1,3}",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ]],
  [["WHITESPACE"], [
    "\\S+",
  ]],
  [["DEFAULT"], [
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
  ]],
];

const EXPRS_BY_TYPE = new Map<string, readonly string[]>();
const RAW_UTF8_TYPES = new Set(["GEMMA4", "SARVAM_MOE", "WHITESPACE"]); // byte_encode = false
for (const [types, exprs] of REGEX_GROUPS) for (const t of types) EXPRS_BY_TYPE.set(t, exprs);

/** Vocab flags a pre-tokenizer name sets in llama_vocab::impl::load (on top of the BPE defaults). */
export interface PreTokenizerFlags {
  ignoreMerges?: boolean;
  addBos?: boolean;
  cleanSpaces?: boolean;
  escapeWhitespaces?: boolean;
  addSep?: boolean;
  /** special_bos_id = LLAMA_TOKEN_NULL before metadata is read (glm4). */
  noDefaultBos?: boolean;
}

export interface PreTokenizerConfig {
  /** LLAMA_VOCAB_PRE_TYPE_* without the prefix, e.g. "LLAMA3". */
  type: string;
  exprs: readonly string[];
  /** GPT-2 byte-to-unicode encoding of the words (false: raw UTF-8, <0xXX> byte fallback). */
  byteEncode: boolean;
  flags: PreTokenizerFlags;
}

const NO_CLEAN: PreTokenizerFlags = { cleanSpaces: false };
// [names, type, flags]: llama_vocab::impl::load, in the same order.
const PRE_NAMES: ReadonlyArray<readonly [readonly string[], string, PreTokenizerFlags]> = [
  [["default"], "DEFAULT", {}],
  [["minicpm5"], "MINICPM5", { ignoreMerges: true }],
  [["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"], "LLAMA3", { ignoreMerges: true, addBos: true }],
  [["deepseek-llm"], "DEEPSEEK_LLM", NO_CLEAN],
  [["deepseek-coder"], "DEEPSEEK_CODER", NO_CLEAN],
  [["deepseek-v3"], "DEEPSEEK3_LLM", NO_CLEAN],
  [["spark2_5"], "SPARK2_5", NO_CLEAN],
  [["youtu"], "YOUTU", { cleanSpaces: false, ignoreMerges: true }],
  [["falcon"], "FALCON", {}],
  [["mpt"], "MPT", {}],
  [["starcoder"], "STARCODER", {}],
  [["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert"], "GPT2", {}],
  [["jais-2"], "JAIS2", {}],
  [["gemma4", "granite-embed-multi-311m"], "GEMMA4", { escapeWhitespaces: true }],
  [["sarvam-moe"], "SARVAM_MOE", { escapeWhitespaces: true, cleanSpaces: false }],
  [["jina-v1-en", "jina-v2-code", "roberta-bpe"], "GPT2", { addSep: true }],
  [["refact"], "REFACT", {}],
  [["command-r"], "COMMAND_R", NO_CLEAN],
  [["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"], "QWEN2", NO_CLEAN],
  [["qwen35"], "QWEN35", NO_CLEAN],
  [["stablelm2"], "STABLELM2", {}],
  [["olmo"], "OLMO", {}],
  [["dbrx"], "DBRX", {}],
  [["smaug-bpe"], "SMAUG", {}],
  [["poro-chat"], "PORO", NO_CLEAN],
  [["glm4", "chatglm-bpe"], "CHATGLM4", { noDefaultBos: true }],
  [["viking"], "VIKING", NO_CLEAN],
  [["jais"], "JAIS", {}],
  [["tekken"], "TEKKEN", { cleanSpaces: false, ignoreMerges: true, addBos: true }],
  [["smollm"], "SMOLLM", NO_CLEAN],
  [["codeshell"], "CODESHELL", {}],
  [["bloom"], "BLOOM", {}],
  [["gpt3-finnish"], "GPT3_FINNISH", {}],
  [["exaone"], "EXAONE", {}],
  [["exaone4"], "GPT2", {}],
  [["exaone-moe"], "EXAONE_MOE", {}],
  [["chameleon"], "CHAMELEON", { addBos: true, cleanSpaces: false }],
  [["minerva-7b"], "MINERVA", {}],
  [["megrez"], "QWEN2", {}],
  [["gpt-4o", "llama4", "kanana2", "talkie"], "GPT4O", NO_CLEAN],
  [["granite-embed-multi-97m"], "GRANITE_EMB_MULTI", { cleanSpaces: false, ignoreMerges: true }],
  [["tiny_aya", "cohere2moe"], "TINY_AYA", NO_CLEAN],
  [["superbpe"], "SUPERBPE", NO_CLEAN],
  [["trillion"], "TRILLION", NO_CLEAN],
  [["granite-docling"], "GRANITE_DOCLING", NO_CLEAN],
  [["bailingmoe", "bailingmoe2", "llada-moe"], "BAILINGMOE", NO_CLEAN],
  [["seed-coder"], "SEED_CODER", NO_CLEAN],
  [["hunyuan"], "HUNYUAN", NO_CLEAN],
  [["hunyuan-dense"], "HUNYUAN_DENSE", NO_CLEAN],
  [["hy_v4"], "HY_V4", NO_CLEAN],
  [["joyai-llm"], "JOYAI_LLM", NO_CLEAN],
  [["ufakzeka"], "UFAKZEKA", NO_CLEAN],
  [["grok-2"], "GROK_2", NO_CLEAN],
  [["afmoe"], "AFMOE", NO_CLEAN],
  [["laguna"], "LAGUNA", NO_CLEAN],
  [["minimax-m2"], "MINIMAX_M2", NO_CLEAN],
  [["solar-open"], "SOLAR_OPEN", NO_CLEAN],
  [["mellum2"], "MELLUM2", {}],
];
const PRE_BY_NAME = new Map<string, readonly [string, PreTokenizerFlags]>();
for (const [names, type, flags] of PRE_NAMES) for (const n of names) PRE_BY_NAME.set(n, [type, flags]);

/** The names `tokenizer.ggml.pre` may take (those llama.cpp knows, minus unsupported ones). */
export const KNOWN_PRE_TOKENIZERS: readonly string[] = [...PRE_BY_NAME.keys()];

/**
 * Pre-tokenizer for a `tokenizer.ggml.pre` value (BPE vocabularies). An empty/missing name
 * selects "default", as llama.cpp does (with a quality warning there). Throws on names
 * llama.cpp does not know.
 */
export function preTokenizerFor(pre: string | undefined): PreTokenizerConfig {
  const entry = PRE_BY_NAME.get(pre || "default");
  if (!entry) throw new Error(`unknown pre-tokenizer type: '${pre}'`);
  const [type, flags] = entry;
  const exprs = EXPRS_BY_TYPE.get(type) ?? EXPRS_BY_TYPE.get("DEFAULT")!;
  return { type, exprs, byteEncode: !RAW_UTF8_TYPES.has(type), flags };
}

// Public surface of the tokenizer package: GGUF vocabularies (SPM / byte-level BPE) tokenized as
// llama.cpp does, streaming detokenization, chat templates, and tokenizer.json conversion.
export { Tokenizer, type EncodeOptions, type DecodeOptions } from "./tokenizer.ts";
export { Vocab, TokenAttr, TokenType, NO_TOKEN, type MetadataGetter, type SpecialIds, type VocabType } from "./vocab.ts";
export { StreamDecoder, type StreamDecoderOptions } from "./stream-decoder.ts";
export {
  renderChat, renderChatFor, strftime, FALLBACK_CHAT_TEMPLATE, ChatTemplateError,
  type ChatMessage, type RenderChatOptions,
} from "./chat-template.ts";
export {
  hfToGGUFMetadata, tokenizerFromHf, detectPreTokenizer, mapGetter,
  type HfTokenizerJson, type HfConvertOptions, type HfAddedToken, type HfComponent,
} from "./hf-convert.ts";
export { preTokenizerFor, KNOWN_PRE_TOKENIZERS, type PreTokenizerConfig, type PreTokenizerFlags } from "./pre-tokenize-table.ts";
export { regexSplit } from "./pre-tokenize.ts";

// Incremental detokenization for streaming output.
// Reference: llama.cpp common_token_to_piece (token bytes, no leading-space removal and no
// clean-up passes, as llama-server streams) plus UTF-8 reassembly: a token may end in the middle
// of a multi-byte character (byte-fallback tokens <0xF0><0x9F>..., or byte-level BPE pieces), so
// incomplete trailing bytes are held back until the character is complete.

import type { Tokenizer } from "./tokenizer.ts";

export interface StreamDecoderOptions {
  /** Render control/unknown tokens as nothing (default true: streams show text, not markers). */
  skipSpecial?: boolean;
  /**
   * The stream starts a document (nothing but BOS before it): drop the space a SentencePiece vocabulary
   * with add_space_prefix puts in front of the first word, as llama.cpp's detokenizer does
   * ("▁Once" → "Once", not " Once").
   */
  atTextStart?: boolean;
}

export class StreamDecoder {
  private readonly tokenizer: Tokenizer;
  private readonly special: boolean;
  private decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private stripSpace: boolean;

  constructor(tokenizer: Tokenizer, opts: StreamDecoderOptions = {}) {
    this.tokenizer = tokenizer;
    this.special = !(opts.skipSpecial ?? true);
    this.stripSpace = !!opts.atTextStart && tokenizer.vocab.addSpacePrefix;
  }

  /**
   * Add one token; returns the text that became complete (possibly ""). Never returns part of
   * a character; a byte sequence that can never become valid UTF-8 yields U+FFFD.
   */
  push(id: number): string {
    const text = this.decoder.decode(this.tokenizer.tokenToPiece(id, { special: this.special }), { stream: true });
    if (!this.stripSpace || text.length === 0) return text;
    this.stripSpace = false;
    return text[0] === " " ? text.slice(1) : text;
  }

  /** Add several tokens. */
  pushAll(ids: Iterable<number>): string {
    let s = "";
    for (const id of ids) s += this.push(id);
    return s;
  }

  /** End of stream: returns what is still held back (an incomplete character becomes U+FFFD). */
  flush(): string {
    return this.decoder.decode();
  }

  /** Forget held-back bytes. */
  reset(): void {
    this.decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  }
}

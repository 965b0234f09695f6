// LocalBackend: the ModelBackend that runs a GGUF model in this process on the engine (all layers,
// one stage), with the model's tokenizer, its chat template (or the documented ChatML fallback, see
// src/tokenizer/chat-template.ts FALLBACK_CHAT_TEMPLATE) and the engine's samplers (sequence-samplers.ts).
// A chat template that fails for the given messages is a BackendError (invalid_request).
import { basename } from "node:path";
import { Engine, type EngineOptions, type LayerRange } from "../engine/engine.ts";
import { openGGUF, type GGUFFile } from "../gguf/reader.ts";
import { renderChatFor } from "../tokenizer/chat-template.ts";
import { StreamDecoder as TokenStreamDecoder } from "../tokenizer/stream-decoder.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { BackendInfo, BatchEntry, ChatMessage, ModelBackend, SamplingParams, StreamDecoder, TokenInfo, TokenSampler } from "./backend.ts";
import { invalidRequestError } from "./backend-error.ts";
import { createTokenSampler, SequenceSamplers } from "./sequence-samplers.ts";

export interface LocalBackendOptions {
  /** GGUF file. */
  path: string;
  /** Model id for the API; default the file name without .gguf. */
  id?: string;
  /** Positions per sequence; default the model's context length. */
  maxContext?: number;
  /** Engine implementation; default "fast". */
  enginePath?: "fast" | "reference";
  /** Layers to run (a mesh's stage 0); default all. */
  range?: LayerRange;
  /** Compute threads of the engine's kernels; default the number of cores. */
  threads?: number;
}

export class LocalBackend implements ModelBackend {
  readonly info: BackendInfo;
  readonly engine: Engine;
  readonly tokenizer: Tokenizer;
  private readonly gguf: GGUFFile;
  private readonly samplers = new SequenceSamplers();

  private constructor(gguf: GGUFFile, engine: Engine, tokenizer: Tokenizer, info: BackendInfo) {
    this.gguf = gguf;
    this.engine = engine;
    this.tokenizer = tokenizer;
    this.info = info;
  }

  static load(opts: LocalBackendOptions): LocalBackend {
    const gguf = openGGUF(opts.path);
    try {
      return LocalBackend.build(gguf, Engine.load(gguf, engineOptions(opts)), opts);
    } catch (err) {
      gguf.close();
      throw err;
    }
  }

  /** load() that lets the event loop run while the weights load (the server keeps answering). */
  static async loadAsync(opts: LocalBackendOptions, onProgress?: (bytes: number, total: number) => void): Promise<LocalBackend> {
    const gguf = openGGUF(opts.path);
    try {
      return LocalBackend.build(gguf, await Engine.loadAsync(gguf, engineOptions(opts), onProgress), opts);
    } catch (err) {
      gguf.close();
      throw err;
    }
  }

  private static build(gguf: GGUFFile, engine: Engine, opts: LocalBackendOptions): LocalBackend {
    try {
      const tokenizer = Tokenizer.fromMetadata((k) => gguf.getValue(k));
      const c = engine.config;
      const nLayers = engine.range.end - engine.range.start;
      // The engine stores K and V as f32 (f16-rounded values for the f16 cache type).
      const kvBytesPerToken = nLayers * c.nHeadKv * (c.headDim + c.headDimV) * 4;
      const name = gguf.getValue("general.name");
      const id = opts.id ?? basename(opts.path).replace(/\.gguf$/i, "");
      const aliases = typeof name === "string" && name !== id ? [name] : [];
      const info: BackendInfo = {
        id,
        aliases,
        contextLength: engine.maxContext,
        vocabSize: c.vocabSize,
        kvBytesPerToken,
        created: Math.floor(Date.now() / 1000),
        chatTemplate: tokenizer.chatTemplate ? "model" : "fallback",
      };
      return new LocalBackend(gguf, engine, tokenizer, info);
    } catch (err) {
      engine.dispose();
      throw err;
    }
  }

  encode(text: string, addSpecial: boolean): number[] {
    const ids = this.tokenizer.encode(text, { addSpecial, parseSpecial: true });
    // A template that writes the BOS text itself, plus the vocabulary's own BOS: keep one.
    const bos = this.tokenizer.bos;
    if (bos !== undefined && ids.length >= 2 && ids[0] === bos && ids[1] === bos) ids.shift();
    return ids;
  }

  renderChat(messages: readonly ChatMessage[]): string {
    try {
      return renderChatFor(this.tokenizer, messages.map((m) => ({ ...m })));
    } catch (err) {
      throw invalidRequestError(`The model's chat template failed for these messages: ${(err as Error).message}`, "messages", "chat_template_error");
    }
  }

  isEog(token: number): boolean {
    return this.tokenizer.isEog(token);
  }

  tokenBytes(token: number): Uint8Array {
    return this.tokenizer.tokenToPiece(token);
  }

  createDecoder(): StreamDecoder {
    return new TokenStreamDecoder(this.tokenizer);
  }

  createSequence(): number {
    return this.engine.createSequence();
  }

  freeSequence(seq: number): void {
    this.samplers.delete(seq);
    this.engine.freeSequence(seq);
  }

  forward(batch: readonly BatchEntry[]): Float32Array[] {
    return this.engine.forward(batch.map((e) => ({ seq: e.seq, tokens: e.tokens, logits: e.logits })));
  }

  createSampler(p: SamplingParams): TokenSampler {
    return createTokenSampler(p);
  }

  setSampling(seq: number, params: SamplingParams, logprobs: number | null): void {
    this.samplers.set(seq, params, logprobs);
  }

  step(batch: readonly BatchEntry[]): Array<TokenInfo | null> {
    const outs = this.forward(batch);
    return batch.map((e, i) => (e.logits === "last" ? this.samplers.pick(e.seq, outs[i]) : null));
  }

  close(): void {
    this.engine.dispose();
    this.gguf.close();
  }
}

function engineOptions(opts: LocalBackendOptions): EngineOptions {
  return {
    path: opts.enginePath ?? "fast", ...(opts.range ? { range: opts.range } : {}), ...(opts.maxContext !== undefined ? { maxContext: opts.maxContext } : {}),
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  };
}

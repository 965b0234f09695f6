// LocalBackend: the ModelBackend that runs a GGUF model in this process on the engine (all layers,
// one stage), with the model's tokenizer, its chat template (or the documented ChatML fallback, see
// src/tokenizer/chat-template.ts FALLBACK_CHAT_TEMPLATE) and the engine's samplers.
import { basename } from "node:path";
import { Engine, type LayerRange } from "../engine/engine.ts";
import { Sampler } from "../engine/sampling.ts";
import { openGGUF, type GGUFFile } from "../gguf/reader.ts";
import { renderChatFor } from "../tokenizer/chat-template.ts";
import { StreamDecoder as TokenStreamDecoder } from "../tokenizer/stream-decoder.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { BackendInfo, BatchEntry, ModelBackend, SamplingParams, StreamDecoder, TokenSampler } from "./backend.ts";
import { invalidRequest } from "./errors.ts";
import type { ChatMessage } from "./openai-types.ts";

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
}

export class LocalBackend implements ModelBackend {
  readonly info: BackendInfo;
  readonly engine: Engine;
  readonly tokenizer: Tokenizer;
  private readonly gguf: GGUFFile;

  private constructor(gguf: GGUFFile, engine: Engine, tokenizer: Tokenizer, info: BackendInfo) {
    this.gguf = gguf;
    this.engine = engine;
    this.tokenizer = tokenizer;
    this.info = info;
  }

  static load(opts: LocalBackendOptions): LocalBackend {
    const gguf = openGGUF(opts.path);
    try {
      const engine = Engine.load(gguf, { path: opts.enginePath ?? "fast", ...(opts.range ? { range: opts.range } : {}), ...(opts.maxContext !== undefined ? { maxContext: opts.maxContext } : {}) });
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
      gguf.close();
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
      throw invalidRequest(`The model's chat template failed for these messages: ${(err as Error).message}`, "messages", "chat_template_error");
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
    this.engine.freeSequence(seq);
  }

  forward(batch: readonly BatchEntry[]): Float32Array[] {
    return this.engine.forward(batch.map((e) => ({ seq: e.seq, tokens: e.tokens, logits: e.logits })));
  }

  createSampler(p: SamplingParams): TokenSampler {
    // OpenAI's penalties look at the whole completion (the scheduler passes its tokens as history).
    return new Sampler({
      temperature: p.temperature,
      topK: p.topK,
      topP: Math.max(p.topP, 1e-9),
      minP: Math.min(p.minP, 0.999999),
      repeatPenalty: p.repetitionPenalty,
      frequencyPenalty: p.frequencyPenalty,
      presencePenalty: p.presencePenalty,
      penaltyLastN: -1,
      logitBias: p.logitBias,
      seed: p.seed,
    });
  }

  close(): void {
    for (const id of this.engine.sequenceIds) this.engine.freeSequence(id);
    this.gguf.close();
  }
}

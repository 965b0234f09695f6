// POST /v1/chat/completions and POST /v1/completions: validate, tokenize, check the context, submit
// to the Generator, and answer — as one JSON object, or as an SSE stream of chunks in OpenAI's
// format (`data: {...}` per event, a usage chunk when stream_options.include_usage, `data: [DONE]`).
// A client that disconnects cancels its generation at once (its KV cache is freed by the scheduler).
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ModelBackend, TokenInfo } from "../backend/backend.ts";
import { ApiError, invalidRequest, modelNotFound, sendError, toApiError, unavailable } from "./errors.ts";
import type { GenerationEvent, GenerationHandle, GenerationRequest, Generator } from "./generator.ts";
import { noteGeneration } from "./logging.ts";
import type { ChatCompletion, ChatCompletionChunk, ChatTokenLogprob, Completion, CompletionLogprobs, FinishReason, Usage } from "./openai-types.ts";
import { SseStream } from "./sse.ts";
import { parseChatRequest, parseCompletionRequest, type CommonParams } from "./validate.ts";

export interface LoadedModel {
  backend: ModelBackend;
  generator: Generator;
}

export interface RouteContext {
  /** The model once loaded; undefined while loading (→ 503). */
  model(): LoadedModel | undefined;
  /** Why the model is not available, when loading failed. */
  loadError(): string | undefined;
  /** Per-request deadline, ms (0 = none). */
  requestTimeoutMs: number;
}

export const SYSTEM_FINGERPRINT = "fp_llmesh";
/** Legacy completions' default max_tokens (as OpenAI's). */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

function requireModel(ctx: RouteContext): LoadedModel {
  const m = ctx.model();
  if (m) return m;
  const err = ctx.loadError();
  throw unavailable(err ? `The model failed to load: ${err}` : "The model is still loading; retry shortly (GET /ready tells when it is ready).", err ? "model_load_failed" : "model_loading");
}

function checkModelName(backend: ModelBackend, name: string | undefined): string {
  const info = backend.info;
  if (name === undefined || name === "" || name === info.id || info.aliases.includes(name)) return info.id;
  throw modelNotFound(name);
}

function checkLogitBias(backend: ModelBackend, bias: Map<number, number>): void {
  for (const id of bias.keys()) {
    if (id >= backend.info.vocabSize) throw invalidRequest(`Invalid 'logit_bias': token id ${id} is outside the model's vocabulary (0 to ${backend.info.vocabSize - 1}).`, "logit_bias", "invalid_value");
  }
}

/** Resolves max_tokens against the context; throws 400 with the numbers when the prompt does not fit. */
function resolveMaxTokens(backend: ModelBackend, promptTokens: number, requested: number | undefined, dflt: number | undefined, what: "messages" | "prompt"): number {
  const ctx = backend.info.contextLength;
  const param = what === "messages" ? "messages" : "prompt";
  if (requested !== undefined && promptTokens + requested > ctx) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${ctx} tokens. However, you requested ${promptTokens + requested} tokens (${promptTokens} in the ${what}, ${requested} in the completion). Please reduce the length of the ${what} or completion.`,
      { param, code: "context_length_exceeded" },
    );
  }
  if (promptTokens >= ctx) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${ctx} tokens. However, your ${what} resulted in ${promptTokens} tokens, which leaves no room for a completion. Please reduce the length of the ${what}.`,
      { param, code: "context_length_exceeded" },
    );
  }
  if (requested !== undefined) return requested;
  return Math.min(dflt ?? ctx - promptTokens, ctx - promptTokens);
}

function samplingOf(p: CommonParams): GenerationRequest["sampling"] {
  return {
    temperature: p.temperature,
    topP: p.topP,
    topK: p.topK,
    minP: p.minP,
    presencePenalty: p.presencePenalty,
    frequencyPenalty: p.frequencyPenalty,
    repetitionPenalty: p.repetitionPenalty,
    logitBias: p.logitBias,
    ...(p.seed !== undefined ? { seed: p.seed } : {}),
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

function tokenString(backend: ModelBackend, id: number): { token: string; bytes: number[] } {
  const b = backend.tokenBytes(id);
  return { token: utf8.decode(b), bytes: Array.from(b) };
}

function chatLogprobs(backend: ModelBackend, tokens: TokenInfo[]): ChatTokenLogprob[] {
  return tokens.map((t) => ({
    ...tokenString(backend, t.id),
    logprob: t.logprob,
    top_logprobs: t.top.map((x) => ({ ...tokenString(backend, x.id), logprob: x.logprob })),
  }));
}

/** Legacy logprobs for tokens whose text starts at `offset` in the choice's text. */
function completionLogprobs(backend: ModelBackend, tokens: TokenInfo[], offset: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let off = offset;
  for (const t of tokens) {
    const s = tokenString(backend, t.id).token;
    out.tokens.push(s);
    out.token_logprobs.push(t.logprob);
    const top: Record<string, number> = {};
    for (const x of t.top) {
      const k = tokenString(backend, x.id).token;
      if (!(k in top)) top[k] = x.logprob;
    }
    out.top_logprobs.push(top);
    out.text_offset.push(off);
    off += s.length;
  }
  return out;
}

function usageOf(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/**
 * Submits the request and wires its events to `sink`; cancels the generation when the client goes
 * away. Returns once the request is finished (or errored / cancelled).
 */
function runGeneration(
  request: FastifyRequest,
  reply: FastifyReply,
  generator: Generator,
  req: Omit<GenerationRequest, "onEvent">,
  sink: (ev: GenerationEvent) => void,
): { handle: GenerationHandle; finished: Promise<void> } {
  const arrival = performance.now();
  let settled = false;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  const reasons: string[] = [];
  const handle = generator.submit({
    ...req,
    onEvent: (ev) => {
      if (ev.type === "admitted") noteGeneration(request, { queueMs: Math.round(ev.queueMs * 100) / 100 });
      else if (ev.type === "delta" && reasons.length === 0) noteGeneration(request, { ttftMs: Math.round((performance.now() - arrival) * 100) / 100 });
      else if (ev.type === "finish") {
        reasons[ev.choice] = ev.reason;
        noteGeneration(request, { finishReasons: reasons.slice() });
      } else if (ev.type === "done") noteGeneration(request, { promptTokens: ev.promptTokens, completionTokens: ev.completionTokens });
      else if (ev.type === "error") noteGeneration(request, { error: ev.error.message });
      sink(ev);
      if (ev.type === "done" || ev.type === "error") {
        settled = true;
        resolveFinished();
      }
    },
  });
  reply.raw.once("close", () => {
    if (!settled) {
      settled = true;
      handle.cancel();
      resolveFinished();
    }
  });
  void handle.done.then(() => {
    settled = true;
    resolveFinished();
  });
  return { handle, finished };
}

// ---------------------------------------------------------------------------------------------

async function chatCompletions(ctx: RouteContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const params = parseChatRequest(request.body);
  const { backend, generator } = requireModel(ctx);
  const model = checkModelName(backend, params.model);
  checkLogitBias(backend, params.logitBias);
  const prompt = Int32Array.from(backend.encode(backend.renderChat(params.messages), true));
  const maxTokens = resolveMaxTokens(backend, prompt.length, params.maxTokens, undefined, "messages");
  noteGeneration(request, { model, stream: params.stream, n: params.n, promptTokens: prompt.length, ...(params.user ? { user: params.user } : {}) });
  const genReq: Omit<GenerationRequest, "onEvent"> = {
    id: request.id,
    prompts: [prompt],
    n: params.n,
    maxTokens,
    sampling: samplingOf(params),
    stop: params.stop,
    ignoreEos: params.ignoreEos,
    logprobs: params.logprobs,
    timeoutMs: ctx.requestTimeoutMs,
  };
  const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
  const created = Math.floor(Date.now() / 1000);
  const wantLogprobs = params.logprobs !== null;

  if (params.stream) {
    const ref: { sse?: SseStream } = {};
    const chunk = (choices: ChatCompletionChunk["choices"], usage?: Usage | null): ChatCompletionChunk => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices,
      ...(params.includeUsage ? { usage: usage ?? null } : {}),
    });
    const pendingEvents: GenerationEvent[] = [];
    const onEvent = (ev: GenerationEvent): void => {
      const sse = ref.sse;
      if (!sse) {
        pendingEvents.push(ev);
        return;
      }
      switch (ev.type) {
        case "delta":
          sse.send(chunk([{ index: ev.choice, delta: { content: ev.text }, logprobs: wantLogprobs ? { content: chatLogprobs(backend, ev.tokens), refusal: null } : null, finish_reason: null }]));
          break;
        case "finish":
          sse.send(chunk([{ index: ev.choice, delta: {}, logprobs: null, finish_reason: ev.reason }]));
          break;
        case "done":
          if (params.includeUsage) sse.send(chunk([], usageOf(ev.promptTokens, ev.completionTokens)));
          sse.done();
          break;
        case "error":
          sse.send(ev.error.toJSON());
          sse.done();
          break;
      }
    };
    // submit() throws (429, 400, 503) before anything is sent: those become plain HTTP errors.
    runGeneration(request, reply, generator, genReq, onEvent);
    const sse = (ref.sse = new SseStream(reply));
    for (let i = 0; i < params.n; i++) sse.send(chunk([{ index: i, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]));
    for (const ev of pendingEvents.splice(0)) onEvent(ev);
    return reply;
  }

  const texts: string[] = Array.from({ length: params.n }, () => "");
  const lps: ChatTokenLogprob[][] = Array.from({ length: params.n }, () => []);
  const reasons: FinishReason[] = Array.from({ length: params.n }, () => "stop");
  let result: ChatCompletion | ApiError | undefined;
  const { finished } = runGeneration(request, reply, generator, genReq, (ev) => {
    if (ev.type === "delta") {
      texts[ev.choice] += ev.text;
      if (wantLogprobs) lps[ev.choice].push(...chatLogprobs(backend, ev.tokens));
    } else if (ev.type === "finish") reasons[ev.choice] = ev.reason;
    else if (ev.type === "error") result = ev.error;
    else if (ev.type === "done") {
      result = {
        id,
        object: "chat.completion",
        created,
        model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: texts.map((content, index) => ({
          index,
          message: { role: "assistant", content, refusal: null },
          logprobs: wantLogprobs ? { content: lps[index], refusal: null } : null,
          finish_reason: reasons[index],
        })),
        usage: usageOf(ev.promptTokens, ev.completionTokens),
      };
    }
  });
  await finished;
  return finish(reply, result);
}

function finish(reply: FastifyReply, result: object | ApiError | undefined): FastifyReply {
  if (reply.raw.destroyed || reply.sent) return reply; // client gone
  if (result instanceof ApiError) return sendError(reply, result);
  if (result === undefined) return sendError(reply, toApiError(new Error("generation ended without a result")));
  return reply.code(200).send(result);
}

async function completions(ctx: RouteContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const params = parseCompletionRequest(request.body);
  const { backend, generator } = requireModel(ctx);
  const model = checkModelName(backend, params.model);
  checkLogitBias(backend, params.logitBias);
  const prompts: Int32Array[] = [];
  const echoTexts: string[] = [];
  for (const p of params.prompts) {
    let ids: Int32Array;
    if (typeof p === "string") ids = Int32Array.from(backend.encode(p, true));
    else {
      for (const t of p) if (t >= backend.info.vocabSize) throw invalidRequest(`Invalid 'prompt': token id ${t} is outside the model's vocabulary (0 to ${backend.info.vocabSize - 1}).`, "prompt", "invalid_value");
      ids = Int32Array.from(p);
    }
    if (ids.length === 0) throw invalidRequest("Invalid 'prompt': the prompt is empty (it encodes to no tokens).", "prompt", "invalid_value");
    prompts.push(ids);
    if (params.echo) {
      if (typeof p === "string") echoTexts.push(p);
      else {
        const d = backend.createDecoder();
        let s = "";
        for (const t of p) if (!backend.isEog(t)) s += d.push(t);
        echoTexts.push(s + d.flush());
      }
    }
  }
  let maxTokens = Infinity;
  for (const p of prompts) maxTokens = Math.min(maxTokens, resolveMaxTokens(backend, p.length, params.maxTokens, COMPLETIONS_DEFAULT_MAX_TOKENS, "prompt"));
  const nChoices = prompts.length * params.n;
  noteGeneration(request, { model, stream: params.stream, n: nChoices, promptTokens: prompts.reduce((a, p) => a + p.length, 0), ...(params.user ? { user: params.user } : {}) });
  const genReq: Omit<GenerationRequest, "onEvent"> = {
    id: request.id,
    prompts,
    n: params.n,
    maxTokens,
    sampling: samplingOf(params),
    stop: params.stop,
    ignoreEos: params.ignoreEos,
    logprobs: params.logprobs,
    timeoutMs: ctx.requestTimeoutMs,
  };
  const id = `cmpl-${randomUUID().replaceAll("-", "")}`;
  const created = Math.floor(Date.now() / 1000);
  const wantLogprobs = params.logprobs !== null;
  const echoOf = (choice: number) => (params.echo ? echoTexts[Math.floor(choice / params.n)] : "");
  const offsets: number[] = Array.from({ length: nChoices }, (_, i) => echoOf(i).length);

  if (params.stream) {
    const ref: { sse?: SseStream } = {};
    const chunk = (choices: Completion["choices"], usage?: Usage | null): Completion => ({
      id,
      object: "text_completion",
      created,
      model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices,
      ...(params.includeUsage ? { usage: usage ?? null } : {}),
    });
    const pendingEvents: GenerationEvent[] = [];
    const onEvent = (ev: GenerationEvent): void => {
      const sse = ref.sse;
      if (!sse) {
        pendingEvents.push(ev);
        return;
      }
      switch (ev.type) {
        case "delta": {
          const lp = wantLogprobs ? completionLogprobs(backend, ev.tokens, offsets[ev.choice]) : null;
          offsets[ev.choice] += ev.text.length;
          sse.send(chunk([{ index: ev.choice, text: ev.text, logprobs: lp, finish_reason: null }]));
          break;
        }
        case "finish":
          sse.send(chunk([{ index: ev.choice, text: "", logprobs: null, finish_reason: ev.reason }]));
          break;
        case "done":
          if (params.includeUsage) sse.send(chunk([], usageOf(ev.promptTokens, ev.completionTokens)));
          sse.done();
          break;
        case "error":
          sse.send(ev.error.toJSON());
          sse.done();
          break;
      }
    };
    runGeneration(request, reply, generator, genReq, onEvent);
    const sse = (ref.sse = new SseStream(reply));
    if (params.echo) for (let i = 0; i < nChoices; i++) sse.send(chunk([{ index: i, text: echoOf(i), logprobs: null, finish_reason: null }]));
    for (const ev of pendingEvents.splice(0)) onEvent(ev);
    return reply;
  }

  const texts: string[] = Array.from({ length: nChoices }, (_, i) => echoOf(i));
  const lps: CompletionLogprobs[] = Array.from({ length: nChoices }, () => ({ tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] }));
  const reasons: FinishReason[] = Array.from({ length: nChoices }, () => "stop");
  let result: Completion | ApiError | undefined;
  const { finished } = runGeneration(request, reply, generator, genReq, (ev) => {
    if (ev.type === "delta") {
      if (wantLogprobs) {
        const lp = completionLogprobs(backend, ev.tokens, texts[ev.choice].length);
        const acc = lps[ev.choice];
        acc.tokens.push(...lp.tokens);
        acc.token_logprobs.push(...lp.token_logprobs);
        acc.top_logprobs.push(...lp.top_logprobs);
        acc.text_offset.push(...lp.text_offset);
      }
      texts[ev.choice] += ev.text;
    } else if (ev.type === "finish") reasons[ev.choice] = ev.reason;
    else if (ev.type === "error") result = ev.error;
    else if (ev.type === "done") {
      result = {
        id,
        object: "text_completion",
        created,
        model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: texts.map((text, index) => ({ index, text, logprobs: wantLogprobs ? lps[index] : null, finish_reason: reasons[index] })),
        usage: usageOf(ev.promptTokens, ev.completionTokens),
      };
    }
  });
  await finished;
  return finish(reply, result);
}

export function registerCompletionRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.post("/v1/chat/completions", (request, reply) => chatCompletions(ctx, request, reply));
  app.post("/v1/completions", (request, reply) => completions(ctx, request, reply));
}

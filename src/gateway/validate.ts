// Request validation for /v1/chat/completions and /v1/completions. Hand-written rather than JSON
// schema so that every error is a 400 in OpenAI's shape naming the offending parameter, with
// OpenAI's wording ("Invalid type for 'temperature': expected a decimal, but got a string
// instead."), and so no value is coerced behind the client's back. Unknown fields are ignored (as
// vLLM does); features this server does not have (tools, JSON mode, images…) are refused by name.
import type { SamplingKnobs } from "../backend/backend.ts";
import { ApiError } from "./errors.ts";
import type { ChatMessage, ChatRole } from "./openai-types.ts";

export interface CommonParams extends SamplingKnobs {
  /** As given; undefined = the loaded model. */
  model: string | undefined;
  stream: boolean;
  includeUsage: boolean;
  /** undefined = as many as fit in the context (chat) / 16 (legacy completions). */
  maxTokens: number | undefined;
  seed: number | undefined;
  stop: string[];
  n: number;
  /** token id (unchecked against the vocabulary yet) → bias. */
  logitBias: Map<number, number>;
  /** null: no logprobs; k: the chosen token's and the top k. */
  logprobs: number | null;
  ignoreEos: boolean;
  user: string | undefined;
}

export interface ChatParams extends CommonParams {
  messages: ChatMessage[];
}

export interface CompletionParams extends CommonParams {
  /** One or more prompts, each text or token ids. */
  prompts: Array<string | number[]>;
  echo: boolean;
}

type Json = unknown;

function describe(v: Json): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "string":
      return "a string";
    case "boolean":
      return "a boolean";
    case "number":
      return Number.isInteger(v) ? "an integer" : "a decimal";
    case "object":
      return "an object";
    default:
      return typeof v;
  }
}

function typeError(param: string, expected: string, got: Json): ApiError {
  return new ApiError(400, `Invalid type for '${param}': expected ${expected}, but got ${describe(got)} instead.`, { param, code: "invalid_type" });
}

function valueError(param: string, message: string, code = "invalid_value"): ApiError {
  return new ApiError(400, `Invalid '${param}': ${message}`, { param, code });
}

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads body[key]; undefined and null both mean "not given" (OpenAI accepts null for optional parameters). */
function get(body: Record<string, Json>, key: string): Json {
  return Object.hasOwn(body, key) ? body[key] : undefined;
}

function optNumber(body: Record<string, Json>, key: string, min: number, max: number, dflt: number): number {
  const v = get(body, key);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw typeError(key, "a decimal", v);
  if (v < min) throw valueError(key, `decimal below minimum value. Expected a value >= ${min}, but got ${v} instead.`, "decimal_below_min_value");
  if (v > max) throw valueError(key, `decimal above maximum value. Expected a value <= ${max}, but got ${v} instead.`, "decimal_above_max_value");
  return v;
}

function optInt(body: Record<string, Json>, key: string, min: number, max: number): number | undefined {
  const v = get(body, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) throw typeError(key, "an integer", v);
  if (v < min) throw valueError(key, `integer below minimum value. Expected a value >= ${min}, but got ${v} instead.`, "integer_below_min_value");
  if (v > max) throw valueError(key, `integer above maximum value. Expected a value <= ${max}, but got ${v} instead.`, "integer_above_max_value");
  return v;
}

function optBool(body: Record<string, Json>, key: string): boolean | undefined {
  const v = get(body, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw typeError(key, "a boolean", v);
  return v;
}

function optString(body: Record<string, Json>, key: string): string | undefined {
  const v = get(body, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw typeError(key, "a string", v);
  return v;
}

const MAX_STOP = 16;
const MAX_STOP_LENGTH = 256;

function parseStop(body: Record<string, Json>): string[] {
  const v = get(body, "stop");
  if (v === undefined || v === null) return [];
  const list = typeof v === "string" ? [v] : Array.isArray(v) ? v : null;
  if (list === null) throw typeError("stop", "a string or an array of strings", v);
  if (list.length > MAX_STOP) throw valueError("stop", `at most ${MAX_STOP} stop sequences are allowed, but got ${list.length}.`, "array_above_max_length");
  return list.map((s, i) => {
    if (typeof s !== "string") throw typeError(`stop[${i}]`, "a string", s);
    if (s.length > MAX_STOP_LENGTH) throw valueError(`stop[${i}]`, `a stop sequence may be at most ${MAX_STOP_LENGTH} characters long.`, "string_above_max_length");
    return s;
  }).filter((s) => s.length > 0);
}

function parseLogitBias(body: Record<string, Json>): Map<number, number> {
  const v = get(body, "logit_bias");
  const out = new Map<number, number>();
  if (v === undefined || v === null) return out;
  if (!isObject(v)) throw typeError("logit_bias", "an object", v);
  for (const [k, b] of Object.entries(v)) {
    if (!/^\d{1,9}$/.test(k)) throw valueError("logit_bias", `keys must be token ids (non-negative integers as strings), but got ${JSON.stringify(k.slice(0, 40))}.`);
    if (typeof b !== "number" || !Number.isFinite(b)) throw typeError(`logit_bias.${k}`, "a decimal", b);
    if (b < -100 || b > 100) throw valueError(`logit_bias.${k}`, `bias must be between -100 and 100, but got ${b}.`);
    out.set(Number(k), b);
  }
  return out;
}

function refuse(body: Record<string, Json>, key: string, isSet: (v: Json) => boolean, what: string): void {
  const v = get(body, key);
  if (v !== undefined && v !== null && isSet(v)) throw new ApiError(400, `${what} is not supported by this server.`, { param: key, code: "unsupported_parameter" });
}

function parseCommon(body: Record<string, Json>): Omit<CommonParams, "logprobs"> {
  const model = get(body, "model");
  if (model !== undefined && model !== null && typeof model !== "string") throw typeError("model", "a string", model);
  const stream = optBool(body, "stream") ?? false;
  const so = get(body, "stream_options");
  let includeUsage = false;
  if (so !== undefined && so !== null) {
    if (!isObject(so)) throw typeError("stream_options", "an object", so);
    if (!stream) throw new ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", { param: "stream_options", code: "invalid_value" });
    const iu = get(so, "include_usage");
    if (iu !== undefined && iu !== null && typeof iu !== "boolean") throw typeError("stream_options.include_usage", "a boolean", iu);
    includeUsage = iu === true;
  }
  const maxCompletion = optInt(body, "max_completion_tokens", 1, 2 ** 31 - 1);
  const maxTokens = optInt(body, "max_tokens", 1, 2 ** 31 - 1);
  const n = optInt(body, "n", 1, 128) ?? 1;
  const user = optString(body, "user");
  refuse(body, "tools", (v) => !Array.isArray(v) || v.length > 0, "Tool calling ('tools')");
  refuse(body, "functions", (v) => !Array.isArray(v) || v.length > 0, "Function calling ('functions')");
  refuse(body, "response_format", (v) => !(isObject(v) && v.type === "text"), "A response_format other than {\"type\": \"text\"}");
  return {
    model: model as string | undefined,
    stream,
    includeUsage,
    maxTokens: maxCompletion ?? maxTokens,
    temperature: optNumber(body, "temperature", 0, 2, 1),
    topP: optNumber(body, "top_p", 0, 1, 1),
    topK: optInt(body, "top_k", -1, 2 ** 31 - 1) ?? 0,
    minP: optNumber(body, "min_p", 0, 1, 0),
    presencePenalty: optNumber(body, "presence_penalty", -2, 2, 0),
    frequencyPenalty: optNumber(body, "frequency_penalty", -2, 2, 0),
    repetitionPenalty: optNumber(body, "repetition_penalty", 0.01, 10, 1),
    seed: optInt(body, "seed", -(2 ** 63), 2 ** 64),
    stop: parseStop(body),
    n,
    logitBias: parseLogitBias(body),
    ignoreEos: optBool(body, "ignore_eos") ?? false,
    user,
  };
}

function requireObject(body: Json): Record<string, Json> {
  if (!isObject(body)) throw new ApiError(400, `Invalid request body: expected a JSON object, but got ${describe(body)} instead.`, { code: "invalid_type" });
  return body;
}

const ROLES: ReadonlySet<string> = new Set(["system", "developer", "user", "assistant"]);

function parseMessages(body: Record<string, Json>): ChatMessage[] {
  const v = get(body, "messages");
  if (v === undefined || v === null) throw new ApiError(400, "Missing required parameter: 'messages'.", { param: "messages", code: "missing_required_parameter" });
  if (!Array.isArray(v)) throw typeError("messages", "an array", v);
  if (v.length === 0) throw valueError("messages", "empty array. Expected an array with minimum length 1, but got an empty array instead.", "empty_array");
  return v.map((m, i): ChatMessage => {
    const p = `messages.[${i}]`;
    if (!isObject(m)) throw typeError(p, "an object", m);
    const role = get(m, "role");
    if (role === undefined || role === null) throw new ApiError(400, `Missing required parameter: '${p}.role'.`, { param: `${p}.role`, code: "missing_required_parameter" });
    if (typeof role !== "string") throw typeError(`${p}.role`, "a string", role);
    if (!ROLES.has(role)) {
      throw valueError(`${p}.role`, `Value must be one of 'system', 'developer', 'user', 'assistant' (tool and function messages are not supported), but got ${JSON.stringify(role.slice(0, 40))}.`);
    }
    const content = get(m, "content");
    let text: string;
    if (typeof content === "string") text = content;
    else if ((content === null || content === undefined) && role === "assistant") text = "";
    else if (content === undefined || content === null) throw new ApiError(400, `Missing required parameter: '${p}.content'.`, { param: `${p}.content`, code: "missing_required_parameter" });
    else if (Array.isArray(content)) {
      text = content
        .map((part, j) => {
          const pp = `${p}.content.[${j}]`;
          if (!isObject(part)) throw typeError(pp, "an object", part);
          if (part.type !== "text") throw new ApiError(400, `Content parts of type ${JSON.stringify(String(part.type).slice(0, 40))} are not supported by this server (text only).`, { param: `${pp}.type`, code: "unsupported_content_type" });
          if (typeof part.text !== "string") throw typeError(`${pp}.text`, "a string", part.text);
          return part.text;
        })
        .join("");
    } else throw typeError(`${p}.content`, "a string or an array of content parts", content);
    const name = get(m, "name");
    if (name !== undefined && name !== null && typeof name !== "string") throw typeError(`${p}.name`, "a string", name);
    if (role === "assistant" && Array.isArray(get(m, "tool_calls")) && (get(m, "tool_calls") as Json[]).length > 0) {
      throw new ApiError(400, "Tool calls are not supported by this server.", { param: `${p}.tool_calls`, code: "unsupported_parameter" });
    }
    return { role: role as ChatRole, content: text, ...(typeof name === "string" ? { name } : {}) };
  });
}

export function parseChatRequest(raw: Json): ChatParams {
  const body = requireObject(raw);
  const messages = parseMessages(body);
  const common = parseCommon(body);
  const lp = optBool(body, "logprobs") ?? false;
  const top = optInt(body, "top_logprobs", 0, 20);
  if (top !== undefined && !lp) throw valueError("top_logprobs", "'top_logprobs' requires 'logprobs' to be true.");
  return { ...common, messages, logprobs: lp ? (top ?? 0) : null };
}

export function parseCompletionRequest(raw: Json): CompletionParams {
  const body = requireObject(raw);
  const p = get(body, "prompt");
  let prompts: Array<string | number[]>;
  const isTokens = (a: Json[]) => a.every((x) => typeof x === "number");
  if (p === undefined || p === null) throw new ApiError(400, "Missing required parameter: 'prompt'.", { param: "prompt", code: "missing_required_parameter" });
  if (typeof p === "string") prompts = [p];
  else if (Array.isArray(p)) {
    if (p.length === 0) throw valueError("prompt", "empty array. Expected a string, an array of strings, an array of tokens or an array of token arrays.", "empty_array");
    if (isTokens(p)) prompts = [p as number[]];
    else {
      prompts = p.map((x, i) => {
        if (typeof x === "string") return x;
        if (Array.isArray(x) && x.length > 0 && isTokens(x)) return x as number[];
        throw typeError(`prompt.[${i}]`, "a string or a non-empty array of token ids", x);
      });
    }
    for (const q of prompts) {
      if (Array.isArray(q)) for (const t of q) if (!Number.isInteger(t) || t < 0) throw valueError("prompt", `token ids must be non-negative integers, but got ${t}.`);
    }
  } else throw typeError("prompt", "a string or an array", p);
  const common = parseCommon(body);
  const echo = optBool(body, "echo") ?? false;
  const logprobs = optInt(body, "logprobs", 0, 20) ?? null;
  if (echo && logprobs !== null) throw new ApiError(400, "'echo' together with 'logprobs' (prompt logprobs) is not supported by this server.", { param: "echo", code: "unsupported_parameter" });
  const bestOf = optInt(body, "best_of", 1, 128);
  if (bestOf !== undefined && bestOf !== common.n) throw new ApiError(400, "'best_of' other than n is not supported by this server.", { param: "best_of", code: "unsupported_parameter" });
  refuse(body, "suffix", (v) => v !== "", "'suffix' (insertion)");
  return { ...common, prompts, echo, logprobs };
}

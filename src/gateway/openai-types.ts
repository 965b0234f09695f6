// The OpenAI wire format this gateway speaks: request bodies (as validated, see validate.ts) and the
// response objects of /v1/chat/completions, /v1/completions and /v1/models, streaming and not.
// Field names and shapes follow https://platform.openai.com/docs/api-reference (chat, completions).
// A chat message after validation (content flattened to text) is the backend's ChatMessage: the
// messages go to ModelBackend.renderChat as they are.
export type { ChatMessage, ChatRole } from "../backend/backend.ts";

export type FinishReason = "stop" | "length";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

// ---- logprobs ----

/** Chat: one entry of choices[i].logprobs.content. */
export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export interface ChatLogprobs {
  content: ChatTokenLogprob[];
  refusal: null;
}

/** Legacy completions: parallel arrays. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

// ---- chat completions ----

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{
    index: number;
    message: { role: "assistant"; content: string; refusal: null };
    logprobs: ChatLogprobs | null;
    finish_reason: FinishReason;
  }>;
  usage: Usage;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{
    index: number;
    delta: { role?: "assistant"; content?: string };
    logprobs: ChatLogprobs | null;
    finish_reason: FinishReason | null;
  }>;
  usage?: Usage | null;
}

// ---- legacy completions ----

export interface Completion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{
    index: number;
    text: string;
    logprobs: CompletionLogprobs | null;
    finish_reason: FinishReason | null;
  }>;
  usage?: Usage | null;
}

// ---- models ----

export interface ModelObject {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
  /** vLLM's extension: the context length requests are checked against. */
  max_model_len: number;
}

export interface ModelList {
  object: "list";
  data: ModelObject[];
}

// ---- errors ----

export interface ErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

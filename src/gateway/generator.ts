// Generator: what the routes call — submit a generation request, get events back. Scheduler
// (scheduler.ts) implements it over a ModelBackend (src/backend/backend.ts) with continuous batching.
import type { SamplingParams, TokenInfo } from "../backend/backend.ts";
import type { ApiError } from "./errors.ts";
import type { FinishReason } from "./openai-types.ts";

export interface GenerationRequest {
  /** The HTTP request id (for logs). */
  id: string;
  /** One or more prompts (legacy completions accept a batch); each gets n choices. */
  prompts: Int32Array[];
  n: number;
  /** Completion tokens per choice at most. */
  maxTokens: number;
  sampling: Omit<SamplingParams, "seed"> & { seed?: number };
  stop: string[];
  /** Keep generating past end-of-generation tokens. */
  ignoreEos: boolean;
  /** null: no logprobs; k >= 0: the chosen token's logprob and the top k alternatives. */
  logprobs: number | null;
  /** Whole-request deadline (queue + generation), ms; 0 = none. */
  timeoutMs: number;
  onEvent(ev: GenerationEvent): void;
}

/**
 * Events of one request, in order: admitted (left the queue), then per choice any number of
 * deltas and one finish, then done (all choices finished) — or error at any point, after which
 * nothing follows. Choice index = promptIndex * n + i.
 */
export type GenerationEvent =
  | { type: "admitted"; queueMs: number }
  | { type: "delta"; choice: number; text: string; tokens: TokenInfo[] }
  | { type: "finish"; choice: number; reason: FinishReason }
  | { type: "done"; promptTokens: number; completionTokens: number }
  | { type: "error"; error: ApiError };

export interface GenerationHandle {
  /** Stops the request now and frees its sequences (no more events are sent). */
  cancel(): void;
  /** Settles after the last event. */
  readonly done: Promise<void>;
}

export interface SchedulerStats {
  queued: number;
  activeRequests: number;
  activeSequences: number;
  /** Positions held in KV caches right now. */
  kvUsedTokens: number;
  /** Positions reserved by admitted requests (prompt + max completion). */
  kvReservedTokens: number;
  kvCapacityTokens: number;
  kvBytesPerToken: number;
}

export interface Generator {
  /** Queues a request; throws an ApiError (429 queue full, 400 can never fit, 503 shutting down). */
  submit(req: GenerationRequest): GenerationHandle;
  stats(): SchedulerStats;
}

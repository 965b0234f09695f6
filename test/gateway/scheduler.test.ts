// Scheduler unit tests on the fake backend: batching, chunked prefill, admission, KV accounting,
// cancellation, timeouts and failures. (The acceptance tests in serve-*.test.ts run the real engine.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { BackendError, invalidRequestError, unavailableError } from "../../src/backend/backend-error.ts";
import { ApiError, knownApiError, toApiError } from "../../src/gateway/errors.ts";
import type { GenerationEvent, GenerationRequest } from "../../src/gateway/generator.ts";
import { Scheduler } from "../../src/gateway/scheduler.ts";
import { FakeBackend, fakeGreedy } from "./fake-backend.ts";

interface Result {
  events: GenerationEvent[];
  texts: string[];
  reasons: string[];
  error?: ApiError;
  done?: { promptTokens: number; completionTokens: number };
}

function request(prompt: number[], over: Partial<GenerationRequest> = {}): { req: GenerationRequest; result: Promise<Result> } {
  const r: Result = { events: [], texts: [], reasons: [] };
  let resolve!: (r: Result) => void;
  const result = new Promise<Result>((res) => (resolve = res));
  const req: GenerationRequest = {
    id: "t",
    prompts: [Int32Array.from(prompt)],
    n: 1,
    maxTokens: 10,
    sampling: { temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, logitBias: new Map() },
    stop: [],
    ignoreEos: false,
    logprobs: null,
    timeoutMs: 0,
    ...over,
    onEvent: (ev) => {
      r.events.push(ev);
      if (ev.type === "delta") r.texts[ev.choice] = (r.texts[ev.choice] ?? "") + ev.text;
      if (ev.type === "finish") r.reasons[ev.choice] = ev.reason;
      if (ev.type === "done") {
        r.done = { promptTokens: ev.promptTokens, completionTokens: ev.completionTokens };
        resolve(r);
      }
      if (ev.type === "error") {
        r.error = ev.error;
        resolve(r);
      }
    },
  };
  return { req, result };
}

const P = [1, 2, 3, 4]; // BOS a b c

test("one request: greedy text, finish_reason length, usage counts", async () => {
  const b = new FakeBackend();
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  const { req, result } = request(P, { maxTokens: 12 });
  s.submit(req);
  const r = await result;
  assert.equal(r.texts[0], fakeGreedy(P, 12));
  assert.deepEqual(r.reasons, ["length"]);
  assert.deepEqual(r.done, { promptTokens: 4, completionTokens: 12 });
  assert.equal(r.events[0].type, "admitted");
  assert.equal(b.seqs.size, 0, "sequence freed");
  assert.deepEqual({ ...s.stats(), kvCapacityTokens: 0 }, { queued: 0, activeRequests: 0, activeSequences: 0, kvUsedTokens: 0, kvReservedTokens: 0, kvCapacityTokens: 0, kvBytesPerToken: 100 });
});

test("EOS ends a choice with finish_reason stop and counts the EOS token", async () => {
  const b = new FakeBackend({ eosAt: 8 });
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  const { req, result } = request(P, { maxTokens: 50 });
  s.submit(req);
  const r = await result;
  assert.deepEqual(r.reasons, ["stop"]);
  assert.equal(r.done?.completionTokens, 5); // 4 tokens until 8 positions are held, then EOS
  assert.equal(r.texts[0], fakeGreedy(P, 4));
});

test("concurrent requests run in one batch per step and give the same text as alone", async () => {
  const b = new FakeBackend();
  const s = new Scheduler(b, { maxBatch: 8, maxQueue: 8 });
  const prompts = Array.from({ length: 6 }, (_, i) => [1, 2 + i, 3 + i, 4]);
  const rs = prompts.map((p) => request(p, { maxTokens: 20 }));
  for (const r of rs) s.submit(r.req);
  const results = await Promise.all(rs.map((r) => r.result));
  results.forEach((r, i) => assert.equal(r.texts[0], fakeGreedy(prompts[i], 20)));
  // All six were prefilled together in the first step and decoded together after.
  assert.equal(b.batches[0].length, 6);
  assert.ok(b.batches.slice(1, 10).every((bt) => bt.length === 6), "every decode step carries all sequences");
  assert.equal(b.batches.length, 20, "one forward per step: 1 prefill step + 19 decode steps");
});

test("a long prompt is prefilled in chunks while a running stream keeps decoding", async () => {
  const b = new FakeBackend({ contextLength: 1024 });
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4, prefillChunk: 16 });
  const a = request(P, { maxTokens: 40 });
  s.submit(a.req);
  await new Promise((r) => setImmediate(r));
  const long = Array.from({ length: 100 }, (_, i) => 2 + (i % 26));
  long[0] = 1;
  const c = request(long, { maxTokens: 5 });
  s.submit(c.req);
  const [ra, rc] = await Promise.all([a.result, c.result]);
  assert.equal(ra.texts[0], fakeGreedy(P, 40));
  assert.equal(rc.texts[0], fakeGreedy(long, 5));
  const seqA = b.batches[0][0][0];
  const withPrefill = b.batches.filter((bt) => bt.some(([seq, n]) => seq !== seqA && n > 1));
  assert.ok(withPrefill.length >= 6, `100 tokens in chunks of at most 16: ${withPrefill.length} steps`);
  for (const bt of withPrefill) {
    assert.ok(bt.some(([seq, n]) => seq === seqA && n === 1), "the running stream decodes in every prefill step");
    for (const [seq, n, logits] of bt) if (seq !== seqA) assert.ok(n <= 16 && (logits === "none" || logits === "last"));
  }
  assert.equal(withPrefill.filter((bt) => bt.some(([seq, , l]) => seq !== seqA && l === "none")).length, withPrefill.length - 1, "only the last chunk asks for logits");
});

test("n > 1: independent choices, prompt counted once per choice in usage", async () => {
  const b = new FakeBackend();
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  const { req, result } = request(P, { n: 3, maxTokens: 6, sampling: { temperature: 1.5, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, logitBias: new Map(), seed: 7 } });
  s.submit(req);
  const r = await result;
  assert.equal(r.texts.length, 3);
  assert.deepEqual(r.done, { promptTokens: 12, completionTokens: 18 });
  // Same seed → same texts.
  const again = request(P, { ...req, onEvent: undefined as never });
  s.submit({ ...req, onEvent: again.req.onEvent });
  assert.deepEqual((await again.result).texts, r.texts);
});

test("queue full → 429 with Retry-After; never-fits → 400; too many sequences → 400", async () => {
  const b = new FakeBackend({ asyncMs: 5 });
  const s = new Scheduler(b, { maxBatch: 1, maxQueue: 1, kvCapacityTokens: 200, retryAfterSeconds: 3 });
  const first = request(P, { maxTokens: 30 });
  s.submit(first.req);
  const second = request(P, { maxTokens: 30 });
  s.submit(second.req);
  assert.equal(s.stats().queued, 1);
  const third = request(P, { maxTokens: 30 });
  assert.throws(() => s.submit(third.req), (e: ApiError) => e.status === 429 && e.headers["retry-after"] === "3");
  assert.throws(() => s.submit(request(P, { maxTokens: 300 }).req), (e: ApiError) => e.status === 400 && /KV/.test(e.message));
  assert.throws(() => s.submit(request(P, { n: 2 }).req), (e: ApiError) => e.status === 400 && e.param === "n");
  const [r1, r2] = await Promise.all([first.result, second.result]);
  assert.equal(r1.texts[0], r2.texts[0]);
});

test("KV budget: a request that does not fit now waits, then runs", async () => {
  const b = new FakeBackend();
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4, kvCapacityTokens: 30 });
  const a = request(P, { maxTokens: 20 }); // 24 positions
  const c = request(P, { maxTokens: 20 });
  s.submit(a.req);
  s.submit(c.req);
  assert.deepEqual([s.stats().activeRequests, s.stats().queued, s.stats().kvReservedTokens], [1, 1, 24]);
  const [ra, rc] = await Promise.all([a.result, c.result]);
  assert.equal(ra.texts[0], rc.texts[0]);
  assert.equal(b.batches.every((bt) => bt.length === 1), true, "never both at once");
});

test("cancel frees the sequence and its KV at once; the others continue", async () => {
  const b = new FakeBackend({ stepMs: 1 });
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  const a = request(P, { maxTokens: 200 });
  const c = request(P, { maxTokens: 60 });
  const ha = s.submit(a.req);
  s.submit(c.req);
  while (s.stats().kvUsedTokens <= 40) await new Promise((r) => setImmediate(r));
  const before = s.stats();
  assert.equal(before.activeSequences, 2);
  ha.cancel();
  const after = s.stats();
  assert.equal(after.activeSequences, 1);
  assert.ok(after.kvUsedTokens < before.kvUsedTokens);
  assert.equal(after.kvReservedTokens, 64);
  assert.equal(b.seqs.size, 1);
  await ha.done;
  const rc = await c.result;
  assert.equal(rc.texts[0], fakeGreedy(P, 60));
  assert.equal((await Promise.race([a.result, Promise.resolve("pending")])), "pending", "no done/error after cancel");
});

test("cancel during an async step is applied when the step returns", async () => {
  const b = new FakeBackend({ asyncMs: 20 });
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  const a = request(P, { maxTokens: 100 });
  const h = s.submit(a.req);
  await new Promise((r) => setTimeout(r, 30));
  h.cancel();
  await h.done;
  assert.equal(b.seqs.size, 0);
  assert.equal(s.stats().kvUsedTokens, 0);
  assert.equal(s.stats().kvReservedTokens, 0);
});

test("timeout → 504 error event and the sequence is freed", async () => {
  const b = new FakeBackend({ asyncMs: 5 });
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  const a = request(P, { maxTokens: 200, timeoutMs: 40 });
  s.submit(a.req);
  const r = await a.result;
  assert.equal(r.error?.status, 504);
  await s.whenIdle();
  assert.equal(b.seqs.size, 0);
});

test("a backend failure fails the requests in that step; the scheduler keeps serving", async () => {
  const b = new FakeBackend({ failOnToken: 27 });
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  const bad = request([1, 27], { maxTokens: 5 });
  s.submit(bad.req);
  const r = await bad.result;
  assert.equal(r.error?.status, 500);
  assert.equal(b.seqs.size, 0);
  const ok = request(P, { maxTokens: 5 });
  s.submit(ok.req);
  assert.equal((await ok.result).texts[0], fakeGreedy(P, 5));
});

test("stop strings cut the text; a character split over two tokens arrives whole", async () => {
  const b = new FakeBackend();
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  let prompt = P;
  for (let x = 2; x < 28 && !/é..../.test(fakeGreedy(prompt, 40)); x++) prompt = [1, x, 3];
  const full = fakeGreedy(prompt, 40);
  assert.match(full, /é..../);
  const stopAt = full.indexOf("é") + 2;
  const stop = full.slice(stopAt, stopAt + 3);
  const a = request(prompt, { maxTokens: 40, stop: [stop], logprobs: 2 });
  s.submit(a.req);
  const r = await a.result;
  assert.equal(r.texts[0], full.slice(0, full.indexOf(stop)));
  assert.deepEqual(r.reasons, ["stop"]);
  for (const ev of r.events) if (ev.type === "delta") assert.ok(!ev.text.includes("\ufffd"));
  const toks = r.events.flatMap((ev) => (ev.type === "delta" ? ev.tokens : []));
  assert.ok(toks.every((t) => t.top.length === 2 && t.logprob <= 0 && t.top[0].logprob >= t.top[1].logprob));
});

test("a BackendError from a step keeps what clients see: unavailable → 503 with its message and code", async () => {
  const b = new FakeBackend();
  const forward = b.forward.bind(b);
  let fail = true;
  b.forward = (batch) => {
    if (fail) throw unavailableError("The mesh lost a stage; try again later.", "mesh_unavailable");
    return forward(batch);
  };
  const s = new Scheduler(b, { maxBatch: 4, maxQueue: 4 });
  const bad = request(P, { maxTokens: 5 });
  s.submit(bad.req);
  const r = await bad.result;
  assert.ok(r.error instanceof ApiError);
  assert.deepEqual([r.error.status, r.error.toJSON()], [503, { error: { message: "The mesh lost a stage; try again later.", type: "service_unavailable_error", param: null, code: "mesh_unavailable" } }]);
  fail = false;
  const ok = request(P, { maxTokens: 5 });
  s.submit(ok.req);
  assert.equal((await ok.result).texts[0], fakeGreedy(P, 5));
});

test("BackendError → ApiError: invalid_request is a 400 with its param and code, other errors stay 500", () => {
  const e = toApiError(invalidRequestError("The model's chat template failed for these messages: boom", "messages", "chat_template_error"));
  assert.deepEqual([e.status, e.toJSON()], [400, { error: { message: "The model's chat template failed for these messages: boom", type: "invalid_request_error", param: "messages", code: "chat_template_error" } }]);
  assert.equal(knownApiError(new BackendError("unavailable", "x"))?.status, 503);
  assert.equal(knownApiError(new Error("x")), undefined);
  assert.equal(toApiError(new Error("x")).status, 500);
});

// Acceptance: raw-HTTP error cases in OpenAI's shape, request ids, auth, 413, 429 + Retry-After,
// probes, metrics — on the real engine.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { errorOf, parseSse, postJson, rawRequest, startServer, streamRequest, type TestServer } from "./helpers.ts";

let server: TestServer;

before(async () => {
  server = await startServer({ ctx: 128, bodyLimit: 64 * 1024 });
});
after(() => server.close());

const CHAT = "/v1/chat/completions";
const msgs = [{ role: "user", content: "hi" }];

test("malformed JSON → 400 invalid_request_error", async () => {
  for (const body of ['{"messages": [', "not json", '{"a":1}}', "\u0000\u0001"]) {
    const r = await rawRequest(server.url, { path: CHAT, body, headers: { "content-type": "application/json" } });
    assert.equal(r.status, 400, body);
    const e = errorOf(r);
    assert.equal(e.type, "invalid_request_error");
    assert.match(e.message, /parse the JSON body/);
  }
  // Whatever the content type (curl -d sends form-encoded), the body is read as JSON.
  const r = await rawRequest(server.url, { path: CHAT, body: JSON.stringify({ messages: msgs, max_tokens: 2 }), headers: { "content-type": "application/x-www-form-urlencoded" } });
  assert.equal(r.status, 200);
  const empty = await rawRequest(server.url, { path: CHAT, body: "", headers: { "content-type": "application/json" } });
  assert.equal(empty.status, 400);
  errorOf(empty);
});

test("wrong types → 400 naming the parameter", async () => {
  const cases: Array<[Record<string, unknown>, string, RegExp?]> = [
    [{ messages: "hi" }, "messages", /expected an array, but got a string/],
    [{}, "messages", /Missing required parameter/],
    [{ messages: [] }, "messages"],
    [{ messages: [{ role: "robot", content: "x" }] }, "messages.[0].role"],
    [{ messages: [{ role: "user", content: 5 }] }, "messages.[0].content"],
    [{ messages: [{ role: "user" }] }, "messages.[0].content", /Missing/],
    [{ messages: msgs, temperature: "hot" }, "temperature", /expected a decimal, but got a string instead/],
    [{ messages: msgs, temperature: 2.5 }, "temperature", /maximum/],
    [{ messages: msgs, top_p: -1 }, "top_p"],
    [{ messages: msgs, max_tokens: 1.5 }, "max_tokens", /expected an integer/],
    [{ messages: msgs, max_tokens: 0 }, "max_tokens"],
    [{ messages: msgs, max_completion_tokens: "3" }, "max_completion_tokens"],
    [{ messages: msgs, n: 0 }, "n"],
    [{ messages: msgs, stop: 3 }, "stop"],
    [{ messages: msgs, stop: ["a", 1] }, "stop[1]"],
    [{ messages: msgs, seed: "x" }, "seed"],
    [{ messages: msgs, stream: "yes" }, "stream"],
    [{ messages: msgs, stream_options: { include_usage: true } }, "stream_options"],
    [{ messages: msgs, presence_penalty: 3 }, "presence_penalty"],
    [{ messages: msgs, frequency_penalty: [] }, "frequency_penalty"],
    [{ messages: msgs, logit_bias: { abc: 1 } }, "logit_bias"],
    [{ messages: msgs, logit_bias: { "99999": 1 } }, "logit_bias", /vocabulary/],
    [{ messages: msgs, logit_bias: { "5": 200 } }, "logit_bias.5"],
    [{ messages: msgs, logprobs: 1 }, "logprobs"],
    [{ messages: msgs, top_logprobs: 2 }, "top_logprobs"],
    [{ messages: msgs, top_logprobs: 30, logprobs: true }, "top_logprobs"],
    [{ messages: msgs, user: 7 }, "user"],
    [{ messages: msgs, model: 7 }, "model"],
    [{ messages: msgs, tools: [{ type: "function" }] }, "tools", /not supported/],
    [{ messages: msgs, response_format: { type: "json_object" } }, "response_format"],
  ];
  for (const [body, param, re] of cases) {
    const r = await postJson(server.url, CHAT, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.body}`);
    const e = errorOf(r);
    assert.equal(e.param, param, JSON.stringify(body));
    assert.equal(e.type, "invalid_request_error");
    if (re) assert.match(e.message, re);
  }
  const top = await postJson(server.url, CHAT, [1, 2]);
  assert.equal(top.status, 400);
  assert.match(errorOf(top).message, /expected a JSON object/);
  const c = await postJson(server.url, "/v1/completions", { prompt: 5 });
  assert.equal(errorOf(c).param, "prompt");
  const c2 = await postJson(server.url, "/v1/completions", { prompt: [1, 99999] });
  assert.equal(c2.status, 400);
  assert.match(errorOf(c2).message, /vocabulary/);
});

test("unknown model → 404 model_not_found; unknown URL → 404", async () => {
  const r = await postJson(server.url, CHAT, { model: "gpt-4", messages: msgs });
  assert.equal(r.status, 404);
  assert.deepEqual(errorOf(r), { message: "The model `gpt-4` does not exist or you do not have access to it.", type: "invalid_request_error", param: "model", code: "model_not_found" });
  const m = await rawRequest(server.url, { path: "/v1/models/gpt-4" });
  assert.equal(m.status, 404);
  assert.equal(errorOf(m).code, "model_not_found");
  const u = await rawRequest(server.url, { path: "/v1/nothing" });
  assert.equal(u.status, 404);
  assert.match(errorOf(u).message, /GET \/v1\/nothing/);
  const alias = await postJson(server.url, CHAT, { model: "llama", messages: msgs, max_tokens: 1 });
  assert.equal(alias.status, 200, "general.name is accepted as an alias");
});

test("prompt longer than the context → 400 with the numbers", async () => {
  const long = "Once upon a time there was a little girl. ".repeat(20);
  const n = server.backend.encode(long, true).length;
  assert.ok(n > 128);
  const r = await postJson(server.url, "/v1/completions", { prompt: long });
  assert.equal(r.status, 400);
  const e = errorOf(r);
  assert.equal(e.code, "context_length_exceeded");
  assert.match(e.message, new RegExp(`maximum context length is 128 tokens.*${n} tokens`));
  const p = server.backend.encode("Once upon a time", true).length;
  const r2 = await postJson(server.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 129 - p });
  assert.equal(r2.status, 400);
  assert.ok(errorOf(r2).message.includes(`requested 129 tokens (${p} in the prompt, ${129 - p} in the completion)`), r2.body);
  const ok = await postJson(server.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 128 - p, temperature: 0 });
  assert.equal(ok.status, 200);
  // Chat without max_tokens: as many as fit.
  const chat = await postJson(server.url, CHAT, { messages: msgs, temperature: 0, ignore_eos: true });
  assert.equal(chat.status, 200);
  const u = (JSON.parse(chat.body) as { usage: { total_tokens: number }; choices: Array<{ finish_reason: string }> });
  assert.equal(u.usage.total_tokens, 128);
  assert.equal(u.choices[0].finish_reason, "length");
});

test("body too large → 413", async () => {
  const r = await rawRequest(server.url, { path: CHAT, body: JSON.stringify({ messages: [{ role: "user", content: "x".repeat(100_000) }] }), headers: { "content-type": "application/json" } });
  assert.equal(r.status, 413);
  assert.equal(errorOf(r).type, "invalid_request_error");
});

test("x-request-id is honoured or generated, and echoed", async () => {
  const a = await postJson(server.url, CHAT, { messages: msgs, max_tokens: 2 }, { "x-request-id": "my-id-123" });
  assert.equal(a.headers["x-request-id"], "my-id-123");
  const b = await postJson(server.url, CHAT, { messages: msgs, max_tokens: 2 });
  assert.match(String(b.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
  const bad = await postJson(server.url, CHAT, { model: "x", messages: msgs }, { "x-request-id": "has space" });
  assert.notEqual(bad.headers["x-request-id"], "has space");
  assert.equal(bad.status, 404);
  assert.ok(bad.headers["x-request-id"]);
  const s = await streamRequest(server.url, CHAT, { messages: msgs, max_tokens: 3, stream: true });
  assert.ok(s.headers["x-request-id"]);
  assert.match(String(s.headers["content-type"]), /^text\/event-stream/);
});

test("probes and metrics", async () => {
  assert.deepEqual(JSON.parse((await rawRequest(server.url, { path: "/health" })).body), { status: "ok" });
  const ready = await rawRequest(server.url, { path: "/ready" });
  assert.equal(ready.status, 200);
  const m = await rawRequest(server.url, { path: "/metrics" });
  assert.match(String(m.headers["content-type"]), /^text\/plain/);
  for (const name of [
    "llmesh_time_to_first_token_seconds_bucket",
    "llmesh_inter_token_latency_seconds_bucket",
    "llmesh_e2e_request_latency_seconds_bucket",
    "llmesh_prompt_tokens_total",
    "llmesh_generation_tokens_total",
    "llmesh_queue_depth",
    "llmesh_active_sequences",
    "llmesh_kv_cache_used_bytes",
    "llmesh_kv_cache_used_tokens",
    "llmesh_requests_total",
  ]) {
    assert.ok(m.body.includes(name), name);
  }
  assert.match(m.body, /llmesh_requests_total\{endpoint="\/v1\/chat\/completions",status="200"\} \d+/);
  assert.match(m.body, /llmesh_generation_tokens_total [1-9]/);
});

test("queue full → 429 with Retry-After; the queued request still completes", async () => {
  const s = await startServer({ maxBatch: 1, maxQueue: 1, retryAfterSeconds: 2 });
  try {
    const long = streamRequest(s.url, "/v1/completions", { prompt: "Once", max_tokens: 300, temperature: 0, stream: true });
    while (s.gateway.scheduler!.stats().activeRequests === 0) await new Promise((r) => setTimeout(r, 2));
    const queued = postJson(s.url, "/v1/completions", { prompt: "Once", max_tokens: 4, temperature: 0 });
    while (s.gateway.scheduler!.stats().queued === 0) await new Promise((r) => setTimeout(r, 2));
    const refused = await postJson(s.url, "/v1/completions", { prompt: "Once", max_tokens: 4 });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers["retry-after"], "2");
    assert.equal(errorOf(refused).type, "rate_limit_error");
    const rs = await streamRequest(s.url, CHAT, { messages: msgs, stream: true });
    assert.equal(rs.status, 429, "streams are refused before any event");
    assert.equal((await queued).status, 200);
    assert.equal((await long).events.at(-1), "[DONE]");
  } finally {
    await s.close();
  }
});

test("KV budget: a request that could never fit → 400", async () => {
  const s = await startServer({ kvCapacityTokens: 100 });
  try {
    const r = await postJson(s.url, "/v1/completions", { prompt: "Once", max_tokens: 200 });
    assert.equal(r.status, 400);
    assert.equal(errorOf(r).code, "kv_budget_exceeded");
    const ok = await postJson(s.url, "/v1/completions", { prompt: "Once", max_tokens: 50, n: 1 });
    assert.equal(ok.status, 200);
  } finally {
    await s.close();
  }
});

test("API key: 401 without it, 200 with it; probes stay open", async () => {
  const s = await startServer({ apiKey: "sekret" });
  try {
    const no = await postJson(s.url, CHAT, { messages: msgs, max_tokens: 1 });
    assert.equal(no.status, 401);
    assert.equal(errorOf(no).code, "invalid_api_key");
    const wrong = await postJson(s.url, CHAT, { messages: msgs, max_tokens: 1 }, { authorization: "Bearer nope" });
    assert.equal(wrong.status, 401);
    const yes = await postJson(s.url, CHAT, { messages: msgs, max_tokens: 1 }, { authorization: "Bearer sekret" });
    assert.equal(yes.status, 200);
    assert.equal((await rawRequest(s.url, { path: "/health" })).status, 200);
  } finally {
    await s.close();
  }
});

test("streaming body is exactly OpenAI's SSE framing", async () => {
  const r = await rawRequest(server.url, { path: "/v1/completions", body: JSON.stringify({ prompt: "Once", max_tokens: 3, stream: true, temperature: 0 }), headers: { "content-type": "application/json" } });
  assert.match(r.body, /^data: \{.*\}\n\n(data: \{.*\}\n\n)+data: \[DONE\]\n\n$/s);
  const ev = parseSse(r.body);
  assert.equal(ev.at(-1), "[DONE]");
  const last = ev.at(-2) as { choices: Array<{ finish_reason: string }> };
  assert.equal(last.choices[0].finish_reason, "length");
});

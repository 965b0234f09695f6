// Acceptance: the official `openai` client drives `llmesh serve` (real engine, stories260K).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { startServer, type TestServer } from "./helpers.ts";

let server: TestServer;
let client: OpenAI;

before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(() => server.close());

/** Token count of a chat prompt as the server renders it. */
function chatPromptTokens(messages: Array<{ role: "system" | "user" | "assistant"; content: string }>): number {
  const b = server.backend;
  return b.encode(b.renderChat(messages), true).length;
}

test("models.list names the bundled model", async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ["stories260K"]);
  const m = await client.models.retrieve("stories260K");
  assert.equal(m.id, "stories260K");
});

test("completions: the greedy story, usage counts, finish_reason length", async () => {
  const r = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 20, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.match(r.choices[0].text, /^, there was a little girl named Lily/);
  assert.equal(r.choices[0].finish_reason, "length");
  const promptTokens = server.backend.encode("Once upon a time", true).length;
  assert.deepEqual(r.usage, { prompt_tokens: promptTokens, completion_tokens: 20, total_tokens: promptTokens + 20 });
});

test("completions: streaming gives the same text, then usage and [DONE]", async () => {
  const body = { model: "stories260K", prompt: "Once upon a time", max_tokens: 24, temperature: 0 } as const;
  const whole = await client.completions.create(body);
  const stream = await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    for (const ch of c.choices) {
      text += ch.text;
      finish = ch.finish_reason ?? finish;
    }
    if (c.usage) usage = c.usage;
  }
  assert.ok(chunks > 5, "streamed in several chunks");
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, "length");
  assert.deepEqual(usage, whole.usage);
});

test("chat: non-streaming and streaming agree; role chunk; usage", async () => {
  const messages = [
    { role: "system" as const, content: "You tell stories." },
    { role: "user" as const, content: "Tell me about Lily." },
  ];
  const r = await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 30, temperature: 0, user: "tester" });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.ok(r.choices[0].message.content!.length > 0);
  const p = chatPromptTokens(messages);
  assert.deepEqual(r.usage, { prompt_tokens: p, completion_tokens: r.usage!.completion_tokens, total_tokens: p + r.usage!.completion_tokens });
  assert.ok(r.usage!.completion_tokens <= 30);
  if (r.choices[0].finish_reason === "length") assert.equal(r.usage!.completion_tokens, 30);

  const stream = await client.chat.completions.create({ model: "stories260K", messages, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let role: string | undefined;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const c of stream) {
    for (const ch of c.choices) {
      role ??= ch.delta.role;
      text += ch.delta.content ?? "";
      finish = ch.finish_reason ?? finish;
    }
    if (c.usage) usage = c.usage;
  }
  assert.equal(role, "assistant");
  assert.equal(text, r.choices[0].message.content);
  assert.equal(finish, r.choices[0].finish_reason);
  assert.deepEqual(usage, r.usage);
});

test("stop strings: text ends before the stop string, finish_reason stop, streamed identically", async () => {
  const base = { model: "stories260K", prompt: "Once upon a time", max_tokens: 60, temperature: 0 } as const;
  const full = (await client.completions.create(base)).choices[0].text;
  const i = full.indexOf("Lily");
  assert.ok(i > 0, full);
  const r = await client.completions.create({ ...base, stop: ["Lily", "zzz"] });
  assert.equal(r.choices[0].text, full.slice(0, i));
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.ok(r.usage!.completion_tokens < 60);
  // A multi-token stop string is never split wrongly across streamed chunks.
  const stop = full.slice(i, i + 9); // "Lily. She"
  const s = await client.completions.create({ ...base, stop, stream: true });
  let text = "";
  for await (const c of s) text += c.choices[0]?.text ?? "";
  assert.equal(text, full.slice(0, i));
  const chat = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "hi" }], max_tokens: 40, temperature: 0, stop: "." });
  assert.ok(!chat.choices[0].message.content!.includes("."));
});

test("n > 1 with a seed: n choices, reproducible, usage counts every choice", async () => {
  const body = { model: "stories260K", prompt: "Once upon a time", max_tokens: 16, temperature: 1, seed: 42, n: 3 } as const;
  const a = await client.completions.create(body);
  const b = await client.completions.create(body);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));
  assert.ok(new Set(a.choices.map((c) => c.text)).size > 1, "choices differ");
  const p = server.backend.encode("Once upon a time", true).length;
  assert.deepEqual(a.usage, { prompt_tokens: 3 * p, completion_tokens: 48, total_tokens: 3 * p + 48 });
  const chat = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "hi" }], max_tokens: 8, n: 2, temperature: 0 });
  assert.equal(chat.choices.length, 2);
  assert.equal(chat.choices[0].message.content, chat.choices[1].message.content, "greedy choices agree");
});

test("logprobs: chat top_logprobs and legacy logprobs", async () => {
  const r = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "hi" }], max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs!.content!;
  assert.equal(lp.map((t) => t.token).join(""), r.choices[0].message.content);
  for (const t of lp) {
    assert.equal(t.top_logprobs.length, 3);
    assert.ok(t.logprob <= 0);
    // Greedy: the chosen token is the most likely one.
    assert.equal(t.top_logprobs[0].token, t.token);
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-9);
    assert.deepEqual(t.bytes, Array.from(Buffer.from(t.token, "utf8")));
  }
  const c = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 6, temperature: 0, logprobs: 2 });
  const l = c.choices[0].logprobs!;
  assert.equal(l.tokens!.join(""), c.choices[0].text);
  assert.equal(l.token_logprobs!.length, 6);
  assert.equal(l.text_offset![0], 0);
  assert.ok(l.top_logprobs!.every((o) => Object.keys(o).length === 2));
  // Streamed chat logprobs cover the streamed text.
  const s = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "hi" }], max_tokens: 8, temperature: 0, logprobs: true, stream: true });
  let text = "";
  let toks = "";
  for await (const ch of s) {
    text += ch.choices[0]?.delta.content ?? "";
    toks += (ch.choices[0]?.logprobs?.content ?? []).map((t) => t.token).join("");
  }
  assert.equal(toks, text);
});

test("penalties, logit_bias and top_p are accepted and take effect", async () => {
  const base = { model: "stories260K", prompt: "Once upon a time", max_tokens: 12, temperature: 0 } as const;
  const plain = (await client.completions.create(base)).choices[0].text;
  const banned = server.backend.encode(" there", false);
  const biased = await client.completions.create({ ...base, logit_bias: Object.fromEntries(banned.map((t) => [String(t), -100])) });
  assert.notEqual(biased.choices[0].text, plain);
  assert.ok(!biased.choices[0].text.includes(" there"));
  const pen = await client.completions.create({ ...base, max_tokens: 40, frequency_penalty: 2, presence_penalty: 2 });
  assert.equal(pen.usage!.completion_tokens > 0, true);
  const topP = await client.completions.create({ ...base, temperature: 1, top_p: 0.000001, seed: 1 });
  assert.equal(topP.choices[0].text, plain, "top_p → 0 is greedy");
});

test("errors reach the client as APIError with OpenAI's fields", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "hi" }] }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 404 && e.code === "model_not_found" && e.param === "model",
  );
  await assert.rejects(
    client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "hi" }], temperature: 5 }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.param === "temperature" && e.type === "invalid_request_error",
  );
});

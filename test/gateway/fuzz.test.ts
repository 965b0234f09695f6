// Fuzz: random and mutated request bodies against the real server. Every request gets a
// well-formed answer (a completion, a complete SSE stream, or an OpenAI-shaped error with a 4xx/5xx
// status that fits the case); the server stays up and frees everything afterwards.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { errorOf, parseSse, postJson, rawRequest, startServer, type RawResponse, type TestServer } from "./helpers.ts";

let server: TestServer;

before(async () => {
  // A short context and deadline keep the valid requests among the random ones cheap.
  server = await startServer({ ctx: 96, requestTimeoutMs: 4000, maxBatch: 8, maxQueue: 256, bodyLimit: 256 * 1024 });
});
after(() => server.close());

let seed = 0x2545f491;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const pick = <T>(a: readonly T[]): T => a[rnd(a.length)];

const STRINGS = ["", "a", "Once upon a time", "\u0000", "\ud800", "😀", "<s>", "</s>", "<|im_start|>", "x".repeat(3000), "null", "{}", "stories260K", "user", "system", "assistant", "tool"];
const NUMBERS = [0, 1, -1, 2, 0.5, 1e308, -1e308, 2 ** 53, 3.7, 16, 100, 511, 512, 4096, Number.MAX_SAFE_INTEGER, 1e-300];

function randomValue(depth = 0): unknown {
  switch (rnd(depth > 2 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return rnd(2) === 0;
    case 2:
      return pick(NUMBERS);
    case 3:
      return pick(STRINGS);
    case 4:
      return rnd(1000) - 500;
    case 5:
      return Array.from({ length: rnd(4) }, () => randomValue(depth + 1));
    case 6:
      return Object.fromEntries(Array.from({ length: rnd(4) }, () => [pick(KEYS), randomValue(depth + 1)]));
    default:
      return { role: pick(["user", "system", "assistant", "robot"]), content: randomValue(depth + 1) };
  }
}

const KEYS = ["model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop", "n", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "stream", "stream_options", "echo", "best_of", "suffix", "tools", "response_format", "role", "content", "type", "text", "include_usage", "__proto__", "constructor"];

const VALID: Array<[string, Record<string, unknown>]> = [
  ["/v1/chat/completions", { model: "stories260K", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Once upon a time" }], max_tokens: 8 }],
  ["/v1/chat/completions", { messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }], max_tokens: 5, stream: true, stream_options: { include_usage: true }, logprobs: true, top_logprobs: 2 }],
  ["/v1/completions", { model: "stories260K", prompt: "Once upon a time", max_tokens: 8, stop: ["."], n: 2, seed: 3 }],
  ["/v1/completions", { prompt: ["The cat", "A dog"], max_tokens: 6, stream: true, logprobs: 1, temperature: 0.7 }],
  ["/v1/completions", { prompt: [1, 400, 300], max_tokens: 6, echo: true, logit_bias: { "13": -50 } }],
];

function mutate(body: Record<string, unknown>): Record<string, unknown> | unknown {
  const b: Record<string, unknown> = structuredClone(body);
  const nOps = 1 + rnd(3);
  for (let i = 0; i < nOps; i++) {
    const keys = Object.keys(b);
    switch (rnd(6)) {
      case 0:
        if (keys.length) delete b[pick(keys)];
        break;
      case 1:
        b[pick(keys.length ? keys : KEYS)] = randomValue();
        break;
      case 2:
        b[pick(KEYS)] = randomValue();
        break;
      case 3: {
        // Mutate inside messages / prompt.
        const m = b.messages;
        if (Array.isArray(m) && m.length) {
          const j = rnd(m.length);
          m[j] = rnd(2) ? randomValue() : { ...(m[j] as object), [pick(["role", "content", "name"])]: randomValue() };
        } else b.prompt = randomValue();
        break;
      }
      case 4:
        return randomValue();
      default:
        b.max_tokens = pick([1, 2, 5, 20, 90, 200, -3, 0]);
    }
  }
  return b;
}

/** A raw body: valid JSON, truncated JSON, or bytes. */
function corrupt(text: string): string | Buffer {
  switch (rnd(4)) {
    case 0:
      return text.slice(0, rnd(text.length + 1));
    case 1: {
      const i = rnd(text.length + 1);
      return text.slice(0, i) + pick(["{", "}", '"', ",", "\\", "\u0000", "]", "💥", "\\u12"]) + text.slice(i);
    }
    case 2:
      return Buffer.from(Array.from({ length: rnd(64) }, () => rnd(256)));
    default:
      return text;
  }
}

function checkResponse(r: RawResponse, what: string): void {
  assert.ok([200, 400, 404, 413, 415, 429, 503, 504].includes(r.status), `${what} → ${r.status} ${r.body.slice(0, 300)}`);
  if (r.status !== 200) {
    errorOf(r);
    return;
  }
  if (String(r.headers["content-type"]).startsWith("text/event-stream")) {
    const ev = parseSse(r.body);
    assert.equal(ev.at(-1), "[DONE]", `${what}: stream ends with [DONE]`);
    for (const e of ev.slice(0, -1)) {
      const o = e as { object?: string; error?: unknown };
      assert.ok(o.error !== undefined || o.object === "chat.completion.chunk" || o.object === "text_completion", `${what}: chunk ${JSON.stringify(e).slice(0, 200)}`);
    }
    return;
  }
  const o = JSON.parse(r.body) as { object: string; choices: unknown[]; usage: { total_tokens: number } };
  assert.ok(o.object === "chat.completion" || o.object === "text_completion", what);
  assert.ok(Array.isArray(o.choices) && o.choices.length > 0, what);
  assert.ok(Number.isInteger(o.usage.total_tokens), what);
}

test("fuzz: 400 random/mutated bodies all get well-formed answers; the server stays healthy", async () => {
  const N = 400;
  const CONCURRENCY = 8;
  let next = 0;
  const statuses = new Map<number, number>();
  async function worker(): Promise<void> {
    while (next < N) {
      const i = next++;
      const [path, valid] = pick(VALID);
      const body = rnd(10) === 0 ? valid : mutate(valid);
      const text = JSON.stringify(body) ?? "null";
      const raw = rnd(5) === 0 ? corrupt(text) : text;
      const headers: Record<string, string> = { "content-type": pick(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"]) };
      const r = await rawRequest(server.url, { path: rnd(20) === 0 ? pick(["/v1/models", "/v1/chat", "/v1/completions/x"]) : path, body: raw, headers });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      checkResponse(r, `#${i} ${typeof raw === "string" ? raw.slice(0, 200) : "<bytes>"}`);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  assert.ok((statuses.get(200) ?? 0) > 20, `some requests succeed: ${JSON.stringify([...statuses])}`);
  assert.ok((statuses.get(400) ?? 0) > 50, `many are refused: ${JSON.stringify([...statuses])}`);
  // Still healthy, and nothing leaked.
  assert.equal((await rawRequest(server.url, { path: "/health" })).status, 200);
  const ok = await postJson(server.url, "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
  assert.equal(ok.status, 200);
  await server.gateway.scheduler!.whenIdle();
  const s = server.gateway.scheduler!.stats();
  assert.deepEqual([s.activeSequences, s.kvUsedTokens, s.kvReservedTokens, s.queued], [0, 0, 0, 0]);
  assert.deepEqual(server.backend.engine.sequenceIds, []);
});

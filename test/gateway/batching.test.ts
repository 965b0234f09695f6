// Acceptance: continuous batching on the real engine — concurrent streams give exactly the text
// they give alone; a slow or disconnecting consumer does not hold the others back; a disconnect
// frees the sequence's KV cache at once (visible in /metrics).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { metric, postJson, startServer, streamRequest, type TestServer } from "./helpers.ts";

let server: TestServer;

before(async () => {
  server = await startServer({ maxBatch: 16, maxQueue: 64, prefillChunk: 64 });
});
after(() => server.close());

const PROMPTS = [
  "Once upon a time",
  "Tom had a red ball",
  "The cat",
  "One day, a little bird flew over the big green tree and saw a boy who was very sad because",
  "Lily and Ben went to the park",
  "There was a dog",
  "Sue liked to sing",
  "The sun was hot. The kids wanted to swim in the lake, but their mom said no, because",
];

function body(i: number, stream: boolean, maxTokens = 40) {
  return { model: "stories260K", prompt: PROMPTS[i % PROMPTS.length] + (i >= PROMPTS.length ? " and" : ""), max_tokens: maxTokens, temperature: 0, stream };
}

test("16 concurrent greedy streams each equal the same request run alone", async () => {
  const alone: string[] = [];
  for (let i = 0; i < 16; i++) {
    const r = await postJson(server.url, "/v1/completions", body(i, false));
    assert.equal(r.status, 200);
    alone.push((JSON.parse(r.body) as { choices: Array<{ text: string }> }).choices[0].text);
  }
  const steps0 = server.gateway.metrics.stepSequences;
  const before = (await steps0.get()).values.find((v) => v.metricName?.endsWith("_count"))?.value ?? 0;
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => streamRequest(server.url, "/v1/completions", body(i, true))));
  for (let i = 0; i < 16; i++) {
    assert.equal(results[i].status, 200);
    assert.equal(results[i].events.at(-1), "[DONE]");
    assert.equal(results[i].text[0], alone[i], `stream ${i} differs from its solo run`);
  }
  // They really ran batched: far fewer forward steps than 16 × 40 tokens.
  const stepsAfter = (await steps0.get()).values.find((v) => v.metricName?.endsWith("_count"))?.value ?? 0;
  const sum = (await steps0.get()).values.find((v) => v.metricName?.endsWith("_sum"))?.value ?? 0;
  assert.ok(stepsAfter - before < 16 * 40 / 4, `${stepsAfter - before} steps for 16 streams`);
  assert.ok(sum > 0);
});

test("a slow consumer and a disconnecting consumer do not hold the others back; the disconnect frees its KV", async () => {
  // Baseline: the same five streams, all read promptly.
  const baseline = await Promise.all(Array.from({ length: 5 }, (_, i) => streamRequest(server.url, "/v1/completions", body(2 + i, true, 120))));
  const baseDuration = Math.max(...baseline.map((r) => r.times.at(-1)!));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await metric(server.url, "llmesh_kv_cache_used_tokens"), 0);

  let kvAtDisconnect = 0;
  let seqsAtDisconnect = 0;
  // The disconnecting consumer asks for a long completion and leaves after 5 events.
  const leaver = streamRequest(server.url, "/v1/completions", body(1, true, 1500), {
    onEvent: (_d, i) => {
      if (i === 5) {
        const s = server.gateway.scheduler!.stats();
        kvAtDisconnect = s.kvUsedTokens;
        seqsAtDisconnect = s.activeSequences;
        return false;
      }
    },
  });
  // The slow consumer stops reading for 4 s after its first event.
  const PAUSE = 4000;
  const slow = streamRequest(server.url, "/v1/completions", body(2, true, 120), { pauseMs: PAUSE });
  const fast = Array.from({ length: 4 }, (_, i) => streamRequest(server.url, "/v1/completions", body(3 + i, true, 120)));
  await leaver;
  // The leaver's sequence is gone within a few steps.
  const t0 = performance.now();
  while (server.gateway.scheduler!.stats().activeSequences >= seqsAtDisconnect && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
  const freedAfter = performance.now() - t0;
  assert.ok(freedAfter < 500, `sequence freed ${freedAfter.toFixed(0)} ms after the disconnect`);
  const kvNow = await metric(server.url, "llmesh_kv_cache_used_tokens");
  assert.ok(kvNow < kvAtDisconnect + 6 * 6, `KV used ${kvNow} vs ${kvAtDisconnect} at the disconnect`);
  const reserved = await metric(server.url, "llmesh_kv_cache_reserved_tokens");
  assert.ok(reserved < 1500, `the leaver's reservation (1500+) is released: ${reserved}`);

  const fastResults = await Promise.all(fast);
  const slowResult = await slow;
  for (const r of fastResults) {
    assert.equal(r.events.at(-1), "[DONE]");
    const duration = r.times.at(-1)!;
    // As fast as without the slow reader (same batch composition), and done long before it reads again.
    assert.ok(duration < baseDuration * 2.5 + 500, `fast stream took ${duration.toFixed(0)} ms (baseline ${baseDuration.toFixed(0)} ms)`);
    assert.ok(duration < PAUSE, "finished while the slow consumer was not reading");
    let maxGap = 0;
    for (let i = 2; i < r.times.length; i++) maxGap = Math.max(maxGap, r.times[i] - r.times[i - 1]);
    assert.ok(maxGap < 1000, `inter-token gap ${maxGap.toFixed(0)} ms`);
  }
  // The slow consumer still gets its complete, correct text.
  assert.equal(slowResult.events.at(-1), "[DONE]");
  const slowAlone = await postJson(server.url, "/v1/completions", body(2, false, 120));
  assert.equal(slowResult.text[0], (JSON.parse(slowAlone.body) as { choices: Array<{ text: string }> }).choices[0].text);
  assert.ok(slowResult.times.at(-1)! >= PAUSE);
  await server.gateway.scheduler!.whenIdle();
  assert.equal(await metric(server.url, "llmesh_kv_cache_used_tokens"), 0);
  assert.equal(await metric(server.url, "llmesh_active_sequences"), 0);
  assert.deepEqual(server.backend.engine.sequenceIds, [], "every engine sequence freed");
});

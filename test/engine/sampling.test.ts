// Sampler behaviour on hand-made logits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { argmax, computeLogprobs, Sampler, Xoshiro128, type SamplerOptions } from "../../src/engine/sampling.ts";

/** Logits whose softmax is exactly the given probabilities (up to float rounding). */
const fromProbs = (p: number[]): Float32Array => Float32Array.from(p, Math.log);

/** The set of tokens drawn in n samples (and their counts). */
function draws(opts: SamplerOptions, logits: Float32Array, n = 3000, history: number[] = []): Map<number, number> {
  const s = new Sampler({ seed: 1234, ...opts });
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const t = s.sample(logits, history);
    seen.set(t, (seen.get(t) ?? 0) + 1);
  }
  return seen;
}
const support = (m: Map<number, number>): number[] => [...m.keys()].sort((a, b) => a - b);

test("the PRNG is reproducible for a seed and differs across seeds", () => {
  const a = new Xoshiro128(42);
  const b = new Xoshiro128(42);
  const c = new Xoshiro128(43);
  const xs = Array.from({ length: 8 }, () => a.nextU32());
  assert.deepEqual(Array.from({ length: 8 }, () => b.nextU32()), xs);
  assert.notDeepEqual(Array.from({ length: 8 }, () => c.nextU32()), xs);
  for (let i = 0; i < 1000; i++) {
    const u = a.next();
    assert.ok(u >= 0 && u < 1);
  }
});

test("sampling with a seed is reproducible; another seed gives another sequence", () => {
  const logits = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * 2);
  const run = (seed: number) => {
    const s = new Sampler({ seed, temperature: 1.5, topK: 40, topP: 0.95, minP: 0.01 });
    return Array.from({ length: 50 }, () => s.sample(logits));
  };
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7), run(8));
  assert.equal(new Sampler({ seed: 7 }).seed, 7);
});

test("greedy: temperature 0 and top-k = 1 both pick the argmax", () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.cos(i * 1.7) * 3);
  const best = argmax(logits);
  assert.deepEqual(support(draws({ temperature: 0 }, logits, 50)), [best]);
  assert.deepEqual(support(draws({ topK: 1, temperature: 1.3 }, logits, 200)), [best]);
  assert.equal(argmax(Float32Array.of(1, 3, 3, 2)), 1, "ties go to the lowest id");
});

test("top-k keeps the k best tokens", () => {
  const logits = fromProbs([0.05, 0.4, 0.1, 0.3, 0.15]);
  assert.deepEqual(support(draws({ topK: 3 }, logits)), [1, 3, 4]);
});

test("top-p keeps the smallest most-likely set reaching p", () => {
  const logits = fromProbs([0.15, 0.5, 0.05, 0.3]);
  assert.deepEqual(support(draws({ topP: 0.75 }, logits)), [1, 3]); // 0.5 + 0.3 >= 0.75
  assert.deepEqual(support(draws({ topP: 0.5 }, logits)), [1]);
  assert.deepEqual(support(draws({ topP: 0.81 }, logits)), [0, 1, 3]);
  // The survivors keep their relative odds: 0.5 : 0.3.
  const c = draws({ topP: 0.75 }, logits, 20000);
  assert.ok(Math.abs(c.get(1)! / 20000 - 0.625) < 0.02);
});

test("top-p over a large vocabulary (partial sort path) matches a full sort", () => {
  const n = 8000;
  const logits = Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 100);
  const probs = Array.from(logits, (l) => Math.exp(l));
  const z = probs.reduce((a, b) => a + b, 0);
  const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a] || a - b);
  let cum = 0;
  const expected = new Set<number>();
  for (const i of order) {
    expected.add(i);
    cum += probs[i] / z;
    if (cum >= 0.2) break;
  }
  const got = support(draws({ topP: 0.2 }, logits, 1500));
  for (const t of got) assert.ok(expected.has(t), `token ${t} outside the nucleus`);
  assert.ok(got.length > expected.size * 0.6, `drew ${got.length} distinct tokens of ${expected.size}`);
});

test("min-p keeps tokens with probability >= minP * max", () => {
  const logits = fromProbs([0.5, 0.2, 0.15, 0.1, 0.05]);
  assert.deepEqual(support(draws({ minP: 0.25 }, logits)), [0, 1, 2]); // threshold 0.125
  assert.deepEqual(support(draws({ minP: 0.05 }, logits)), [0, 1, 2, 3, 4]);
});

test("repetition penalty (llama.cpp): divides positive logits, multiplies negative ones", () => {
  // token 0 (logit 2) and token 2 (logit -1) were seen: 2/2 = 1 < 1.5 (token 1); -1*2 = -2 < -1.5 (token 3)
  const logits = Float32Array.of(2, 1.5, -1, -1.5);
  assert.equal(new Sampler({ temperature: 0, repeatPenalty: 2 }).sample(logits, [0]), 1);
  const onlyNeg = Float32Array.of(-1, -1.5);
  assert.equal(new Sampler({ temperature: 0, repeatPenalty: 2 }).sample(onlyNeg, [0]), 1);
  assert.equal(new Sampler({ temperature: 0 }).sample(logits, [0]), 0, "no penalty by default");
  assert.deepEqual(Array.from(logits), [2, 1.5, -1, -1.5], "the caller's logits are not modified");
});

test("frequency and presence penalties (OpenAI): count * frequency + presence", () => {
  const logits = Float32Array.of(5, 4.75);
  // 3 occurrences * 0.1 = 0.3 > 0.25 gap
  assert.equal(new Sampler({ temperature: 0, frequencyPenalty: 0.1 }).sample(logits, [0, 0, 0]), 1);
  assert.equal(new Sampler({ temperature: 0, frequencyPenalty: 0.1 }).sample(logits, [0, 0]), 0);
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 0.3 }).sample(logits, [0]), 1);
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 0.2 }).sample(logits, [0, 0, 0, 0]), 0, "presence counts once");
  // Only the last penaltyLastN tokens count.
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 1, penaltyLastN: 2 }).sample(logits, [0, 1, 1]), 0);
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 1, penaltyLastN: -1 }).sample(Float32Array.of(5, 4.5), [0, 1, 1]), 0);
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 1, penaltyLastN: 0 }).sample(logits, [0]), 0, "0 disables");
});

test("logit bias: -100 bans a token, other values shift it", () => {
  const logits = Float32Array.of(10, 0, 0);
  assert.ok(!draws({ logitBias: { 0: -100 } }, logits).has(0));
  assert.equal(new Sampler({ temperature: 0, logitBias: new Map([[0, -100]]) }).sample(logits), 1);
  assert.equal(new Sampler({ temperature: 0, logitBias: { 2: 11 } }).sample(logits), 2);
});

test("log-probabilities: log-softmax of the raw logits with the top alternatives", () => {
  const logits = fromProbs([0.1, 0.6, 0.3]);
  const r = computeLogprobs(logits, 2, 2);
  assert.ok(Math.abs(r.logprob - Math.log(0.3)) < 1e-6);
  assert.deepEqual(r.top.map((t) => t.token), [1, 2]);
  assert.ok(Math.abs(r.top[0].logprob - Math.log(0.6)) < 1e-6);
});

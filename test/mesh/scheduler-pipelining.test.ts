// The scheduler with several micro-batches in flight (a mesh of N stages keeps N steps in the ring),
// and with a backend that samples itself (step()): on the fake backend of the gateway tests.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { BatchEntry, SamplingParams, TokenInfo } from "../../src/backend/backend.ts";
import type { GenerationEvent, GenerationRequest } from "../../src/gateway/generator.ts";
import { Scheduler } from "../../src/gateway/scheduler.ts";
import { FakeBackend, fakeGreedy } from "../gateway/fake-backend.ts";

/** Async forward (like a pipeline), counting how many steps are in flight at once. */
class RingBackend extends FakeBackend {
  inFlight = 0;
  maxInFlight = 0;
  override forward(batch: readonly BatchEntry[]): Promise<Float32Array[]> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const out = super.forward(batch) as Float32Array[];
    return new Promise((r) =>
      setTimeout(() => {
        this.inFlight--;
        r(out);
      }, 3),
    );
  }
}

/** Samples where the logits are: step() = forward + greedy pick, with logprobs when asked. */
class SamplingRingBackend extends RingBackend {
  readonly configured = new Map<number, number | null>();
  setSampling(seq: number, _p: SamplingParams, logprobs: number | null): void {
    this.configured.set(seq, logprobs);
  }
  async step(batch: readonly BatchEntry[]): Promise<Array<TokenInfo | null>> {
    const outs = await this.forward(batch);
    return batch.map((e, i) => {
      if (e.logits === "none") return null;
      if (!this.configured.has(e.seq)) throw new Error(`sequence ${e.seq} was never configured`);
      let best = 0;
      for (let t = 1; t < outs[i].length; t++) if (outs[i][t] > outs[i][best]) best = t;
      return { id: best, logprob: this.configured.get(e.seq) === null ? 0 : -0.5, top: [] };
    });
  }
  override freeSequence(seq: number): void {
    this.configured.delete(seq);
    super.freeSequence(seq);
  }
}

function request(prompt: number[], over: Partial<GenerationRequest> = {}): { req: GenerationRequest; text: Promise<string>; events: GenerationEvent[] } {
  const events: GenerationEvent[] = [];
  let text = "";
  let resolve!: (t: string) => void;
  const p = new Promise<string>((r) => (resolve = r));
  const req: GenerationRequest = {
    id: "t", prompts: [Int32Array.from(prompt)], n: 1, maxTokens: 12,
    sampling: { temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, logitBias: new Map() },
    stop: [], ignoreEos: false, logprobs: null, timeoutMs: 0, ...over,
    onEvent: (ev) => {
      events.push(ev);
      if (ev.type === "delta") text += ev.text;
      if (ev.type === "done" || ev.type === "error") resolve(text);
    },
  };
  return { req, text: p, events };
}

const prompts = Array.from({ length: 8 }, (_, i) => [1, 2 + i, 3 + i, 4]);

test("pipelineDepth 3: up to 3 steps in flight, every stream's text as alone, all sequences freed", async () => {
  const b = new RingBackend();
  const s = new Scheduler(b, { maxBatch: 8, maxQueue: 8, pipelineDepth: 3 });
  const rs = prompts.map((p) => request(p));
  for (const r of rs) s.submit(r.req);
  const texts = await Promise.all(rs.map((r) => r.text));
  assert.deepEqual(texts, prompts.map((p) => fakeGreedy(p, 12)));
  assert.equal(b.maxInFlight, 3);
  await s.whenIdle();
  assert.equal(b.seqs.size, 0);
  assert.equal(s.stats().kvReservedTokens, 0);
  // Depth 1 never overlaps steps.
  const b1 = new RingBackend();
  const s1 = new Scheduler(b1, { maxBatch: 8, maxQueue: 8 });
  const r1 = prompts.map((p) => request(p));
  for (const r of r1) s1.submit(r.req);
  assert.deepEqual(await Promise.all(r1.map((r) => r.text)), texts);
  assert.equal(b1.maxInFlight, 1);
});

test("pipelineDepth 3: cancelling a stream while its step is in flight frees it when the step returns", async () => {
  const b = new RingBackend();
  const s = new Scheduler(b, { maxBatch: 8, maxQueue: 8, pipelineDepth: 3 });
  const rs = prompts.slice(0, 4).map((p) => request(p, { maxTokens: 40, ignoreEos: true }));
  const hs = rs.map((r) => s.submit(r.req));
  await new Promise((r) => setTimeout(r, 20));
  hs[1].cancel();
  hs[2].cancel();
  const texts = await Promise.all([rs[0].text, rs[3].text]);
  assert.deepEqual(texts, [fakeGreedy(prompts[0], 40), fakeGreedy(prompts[3], 40)]);
  await s.whenIdle();
  assert.equal(b.seqs.size, 0);
});

test("a backend that samples (step()): sequences are configured once, tokens come back, text as with logits", async () => {
  const b = new SamplingRingBackend();
  const s = new Scheduler(b, { maxBatch: 8, maxQueue: 8, pipelineDepth: 2 });
  const rs = prompts.map((p, i) => request(p, { logprobs: i === 0 ? 2 : null }));
  for (const r of rs) s.submit(r.req);
  assert.deepEqual(await Promise.all(rs.map((r) => r.text)), prompts.map((p) => fakeGreedy(p, 12)));
  const lp = rs[0].events.flatMap((e) => (e.type === "delta" ? e.tokens : []));
  assert.ok(lp.length > 0 && lp.every((t) => t.logprob === -0.5));
  await s.whenIdle();
  assert.equal(b.configured.size, 0);
  assert.equal(b.seqs.size, 0);
});

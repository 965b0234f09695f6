// An engine whose weights pass one kernel memory's budget (a wasm32 memory holds 4 GiB) runs its
// layers as parts, each in its own memory: the same logits bit for bit as one memory, tied embeddings
// held once, and the plan of parts is table-driven here with small budgets standing for 3 GiB.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine } from "../../src/engine/engine.ts";
import { layerKernelBytes, planParts } from "../../src/engine/memory-parts.ts";
import { readModelConfig } from "../../src/engine/model-config.ts";
import { argmax } from "../../src/engine/sampling.ts";
import { openGGUF, type GGUFFile } from "../../src/gguf/reader.ts";
import { GGMLType } from "../../src/gguf/types.ts";
import { packedBytes } from "../../src/kernels/index.ts";
import { bitEqual, STORIES, synthGGUF } from "./helpers.ts";

function bytesOf(g: GGUFFile, name: string): number {
  const t = g.tensors.get(name)!;
  return packedBytes(t.type, t.dims[0], t.nElements / t.dims[0]);
}

test("planParts: as few parts as fit the budget, embeddings with the first, output with the last", () => {
  const g = openGGUF(STORIES); // 5 layers, untied output
  const c = readModelConfig((k) => g.getValue(k), g.tensors);
  const L = layerKernelBytes(g, 0);
  const emb = bytesOf(g, "token_embd.weight");
  const out = bytesOf(g, "output.weight");
  assert.ok(L > 0 && emb > 0 && out > 0);
  const r = (start: number, end: number) => ({ start, end });
  const cases: Array<[string, { start: number; end: number }, number, Array<[number, number]>]> = [
    ["everything fits", r(0, 5), 1e9, [[0, 5]]],
    ["two layers a part (embeddings take the first part's room)", r(0, 5), emb + 2 * L, [[0, 2], [2, 4], [4, 5]]],
    ["the output matrix goes with the last layer", r(1, 5), 2 * L, [[1, 3], [3, 4], [4, 5]]],
    ["a middle range: layers only", r(1, 4), 2 * L, [[1, 3], [3, 4]]],
    ["one layer a part", r(1, 4), L, [[1, 2], [2, 3], [3, 4]]],
  ];
  for (const [what, range, budget, want] of cases) {
    assert.deepEqual(planParts(g, c, range, budget).map((p) => [p.start, p.end]), want, what);
  }
  assert.throws(() => planParts(g, c, r(1, 3), L - 1), /layer 1 needs .* GiB of kernel memory/);
  assert.throws(() => planParts(g, c, r(3, 5), L + out - 1), /layer 4 needs/);
  g.close();
});

/** Prompt then greedy decode, two sequences batched, with a truncate in between; every step's logits. */
function run(e: Engine): Float32Array[] {
  const a = e.createSequence();
  const b = e.createSequence();
  const out: Float32Array[] = [];
  let [la, lb] = e.forward([{ seq: a, tokens: [1, 403, 407, 261] }, { seq: b, tokens: [1, 378, 432] }]);
  out.push(la, lb);
  for (let i = 0; i < 6; i++) {
    if (i === 3) {
      e.truncate(a, e.sequenceLength(a) - 2);
      assert.equal(e.sequenceLength(a), 5);
    }
    [la, lb] = e.forward([{ seq: a, tokens: [argmax(la)] }, { seq: b, tokens: [argmax(lb)] }]);
    out.push(la, lb);
  }
  assert.equal(e.sequenceLength(b), 9);
  e.freeSequence(a);
  e.freeSequence(b);
  return out;
}

for (const [name, open] of [
  ["stories260K (F32, untied)", () => openGGUF(STORIES)],
  ["tiny-llama3 Q8_0 (tied embeddings)", () => synthGGUF("tiny-llama3", GGMLType.Q8_0)],
  ["tiny-qwen2 Q4_K (tied, biases)", () => synthGGUF("tiny-qwen2", GGMLType.Q4_K)],
] as const) {
  test(`${name}: layers in several kernel memories give the logits of one, bit for bit`, () => {
    const one = Engine.load(open(), { threads: 1 });
    assert.equal(one.partRanges.length, 1);
    const expected = run(one);
    const g = open();
    const c = readModelConfig((k) => g.getValue(k), g.tensors);
    const budget = layerKernelBytes(g, 0) + (g.tensors.has("output.weight") ? Math.max(bytesOf(g, "token_embd.weight"), bytesOf(g, "output.weight")) : bytesOf(g, "token_embd.weight"));
    const parts = Engine.load(g, { threads: 1, partWeightBytes: budget });
    assert.ok(parts.partRanges.length >= c.nLayer - 1, `${JSON.stringify(parts.partRanges)}`);
    assert.deepEqual(parts.partRanges[0].start, 0);
    assert.deepEqual(parts.partRanges.at(-1)!.end, c.nLayer);
    const got = run(parts);
    got.forEach((l, i) => assert.ok(bitEqual(l, expected[i]), `step ${i >> 1}, sequence ${i & 1}: logits differ`));
    if (!g.tensors.has("output.weight")) {
      // Tied: token_embd is held once, by the last part; the first part's lookups use that tensor.
      const fresh = Engine.load(open(), { threads: 1, partWeightBytes: budget });
      const used = fresh.partUsedBytes; // before any forward: weights only
      fresh.dispose();
      const layer0 = layerKernelBytes(g, 0);
      assert.ok(used[0] < 65536 + layer0 + 64 * 16, `first part: ${used[0]} bytes for a ${layer0}-byte layer (token_embd: ${bytesOf(g, "token_embd.weight")})`);
      assert.ok(used.at(-1)! > bytesOf(g, "token_embd.weight"), "the last part holds token_embd");
    }
    one.dispose();
    parts.dispose();
  });
}

test("a middle stage split over memories passes hidden states like one memory", () => {
  const open = () => synthGGUF("tiny-llama", GGMLType.Q5_K);
  const range = { start: 1, end: 3 }; // of 4 layers: hidden states in and out
  const one = Engine.load(open(), { threads: 1, range });
  const g = open();
  const parts = Engine.load(g, { threads: 1, range, partWeightBytes: layerKernelBytes(g, 1) });
  assert.deepEqual(parts.partRanges, [{ start: 1, end: 2 }, { start: 2, end: 3 }]);
  const hidden = new Float32Array(3 * one.config.nEmbd).map((_, i) => Math.sin(i) * 0.5);
  const s1 = one.createSequence();
  const s2 = parts.createSequence();
  for (let step = 0; step < 3; step++) {
    const h = step === 0 ? hidden : hidden.subarray(0, one.config.nEmbd);
    const [a] = one.forward([{ seq: s1, hidden: h }]);
    const [b] = parts.forward([{ seq: s2, hidden: h }]);
    assert.ok(bitEqual(a, b), `step ${step}`);
  }
  one.dispose();
  parts.dispose();
});

test("dispose() gives the kernel memory back: the next engine reuses it, dirty, with the same results", () => {
  const open = () => synthGGUF("tiny-qwen3", GGMLType.Q5_0);
  const a = Engine.load(open(), { threads: 1 });
  const expected = run(a);
  a.dispose();
  assert.throws(() => a.createSequence(), /used after dispose/);
  const b = Engine.load(openGGUF(STORIES), { threads: 1 }); // takes a's memory, writes its own weights
  run(b);
  b.dispose();
  const c = Engine.load(open(), { threads: 1 }); // the same memory again, holding b's bytes
  run(c).forEach((l, i) => assert.ok(bitEqual(l, expected[i]), `step ${i >> 1}, sequence ${i & 1}`));
  c.dispose();
});

test("loadAsync: the progress counts every matrix loaded, ending at its total, over several memories", async () => {
  for (const [open, budgetFor] of [
    [() => synthGGUF("tiny-llama3", GGMLType.Q8_0), (g: GGUFFile) => layerKernelBytes(g, 0) + bytesOf(g, "token_embd.weight")], // tied: borrowed
    [() => openGGUF(STORIES), () => 1e9], // untied, one memory
  ] as const) {
    const g = open();
    const seen: Array<[number, number]> = [];
    const e = await Engine.loadAsync(g, { threads: 1, partWeightBytes: budgetFor(g) }, (b, t) => seen.push([b, t]));
    assert.equal(e.partRanges.length > 1, !g.tensors.has("output.weight"), "the tied model is split, the other not");
    let matrices = 0;
    for (const t of g.tensors.values()) if (t.dims.length >= 2) matrices += t.nBytes;
    const [last, total] = seen.at(-1)!;
    assert.equal(total, matrices, "the total is the matrices' bytes (token_embd once)");
    assert.equal(last, total, "the bar ends full");
    assert.ok(seen.every(([b], i) => i === 0 || b > seen[i - 1][0]), "it only moves forward");
    e.dispose();
  }
});

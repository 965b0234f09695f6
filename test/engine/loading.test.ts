// A stage reads only its own tensors from disk, and the model config is read with clear errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openGGUF } from "../../src/gguf/reader.ts";
import { Engine } from "../../src/engine/engine.ts";
import { readModelConfig } from "../../src/engine/model-config.ts";
import type { GGUFValue } from "../../src/gguf/types.ts";
import { STORIES } from "./helpers.ts";

function bytesOf(names: (name: string) => boolean): number {
  const g = openGGUF(STORIES);
  let n = 0;
  for (const t of g.tensors.values()) if (names(t.name)) n += t.nBytes;
  g.close();
  return n;
}

const layerOf = (name: string): number => (name.startsWith("blk.") ? Number(name.split(".")[1]) : -1);

test("a middle slice [2, 4) reads exactly the bytes of layers 2 and 3", () => {
  const g = openGGUF(STORIES);
  const e = Engine.load(g, { range: { start: 2, end: 4 } });
  assert.equal(g.bytesRead, bytesOf((n) => layerOf(n) === 2 || layerOf(n) === 3));
  assert.ok(!e.isFirst && !e.isLast);
  g.close();
});

test("the first and last stages add token_embd, resp. output_norm + output", () => {
  const g1 = openGGUF(STORIES);
  Engine.load(g1, { range: { start: 0, end: 2 } });
  assert.equal(g1.bytesRead, bytesOf((n) => n === "token_embd.weight" || (layerOf(n) >= 0 && layerOf(n) < 2)));
  const g2 = openGGUF(STORIES);
  Engine.load(g2, { range: { start: 3, end: 5 } });
  assert.equal(g2.bytesRead, bytesOf((n) => n === "output_norm.weight" || n === "output.weight" || layerOf(n) >= 3));
  g1.close();
  g2.close();
});

test("invalid ranges are rejected", () => {
  const g = openGGUF(STORIES);
  for (const range of [{ start: 0, end: 6 }, { start: 3, end: 3 }, { start: -1, end: 2 }, { start: 1.5, end: 3 }]) {
    assert.throws(() => Engine.load(g, { range }), /invalid layer range/);
  }
  g.close();
});

function getter(entries: Record<string, GGUFValue>): (k: string) => GGUFValue | undefined {
  return (k) => entries[k];
}

test("model config: stories260K hyper-parameters", () => {
  const g = openGGUF(STORIES);
  const c = readModelConfig((k) => g.getValue(k), g.tensors);
  g.close();
  assert.deepEqual(
    { arch: c.arch, nLayer: c.nLayer, nEmbd: c.nEmbd, nFF: c.nFF, nHead: c.nHead, nHeadKv: c.nHeadKv, headDim: c.headDim, nRot: c.nRot, rope: c.ropeType, base: c.ropeFreqBase, vocab: c.nVocab, bos: c.bosTokenId, eos: c.eosTokenId },
    { arch: "llama", nLayer: 5, nEmbd: 64, nFF: 172, nHead: 8, nHeadKv: 4, headDim: 8, nRot: 8, rope: "normal", base: 10000, vocab: 512, bos: 1, eos: 2 },
  );
});

test("model config: clear errors for unsupported or incomplete models", () => {
  const base = {
    "general.architecture": "qwen2", "qwen2.block_count": 2, "qwen2.embedding_length": 64, "qwen2.feed_forward_length": 128,
    "qwen2.attention.head_count": 4, "qwen2.attention.layer_norm_rms_epsilon": 1e-6, "qwen2.vocab_size": 100,
  } as Record<string, GGUFValue>;
  const c = readModelConfig(getter(base));
  assert.equal(c.ropeType, "neox");
  assert.equal(c.nHeadKv, 4);
  assert.equal(c.headDim, 16);
  assert.throws(() => readModelConfig(getter({ ...base, "general.architecture": "gpt2" })), /unsupported architecture "gpt2"/);
  assert.throws(() => readModelConfig(getter({})), /general.architecture" is missing/);
  const { ["qwen2.attention.head_count"]: _drop, ...noHeads } = base;
  assert.throws(() => readModelConfig(getter(noHeads)), /"qwen2.attention.head_count" is missing/);
  assert.throws(() => readModelConfig(getter({ ...base, "qwen2.attention.head_count_kv": 3 })), /not a multiple/);
  assert.throws(() => readModelConfig(getter({ ...base, "qwen2.rope.scaling.type": "yarn", "qwen2.rope.scaling.factor": 4 })), /yarn" is not supported/);
  assert.equal(readModelConfig(getter({ ...base, "qwen2.rope.scaling.type": "linear", "qwen2.rope.scaling.factor": 4 })).ropeFreqScale, 0.25);
});

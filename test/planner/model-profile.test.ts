import { test } from "node:test";
import assert from "node:assert/strict";
import { openGGUF } from "../../src/gguf/reader.ts";
import { rowBytes } from "../../src/gguf/formats/index.ts";
import { GGMLType, GGUFValueType, type GGUFMetadataEntry, type TensorInfo } from "../../src/gguf/types.ts";
import { SHAPES, getShape } from "../../src/engine/synth/shapes.ts";
import { synthModel } from "../../src/engine/synth/synth.ts";
import {
  activationBytesPerToken, profileFromGGUF, profileFromShape, stageWeightBytes, totalWeightBytes, type GGUFIndex,
} from "../../src/planner/index.ts";

/** The tensor index `llmesh synth` would write for a shape (sizes only; no tensor data is made). */
function synthIndex(shapeName: string, type: number): GGUFIndex {
  const shape = getShape(shapeName);
  const vocab = new Map<string, GGUFMetadataEntry>([
    ["tokenizer.ggml.tokens", { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING, value: new Array<string>(shape.nVocab).fill("x") }],
  ]);
  const { metadata, tensors } = synthModel({ shape, type, vocab });
  const meta = new Map(metadata);
  const index = new Map<string, TensorInfo>();
  for (const t of tensors) {
    const nElements = t.dims.reduce((a, b) => a * b, 1);
    index.set(t.name, { name: t.name, dims: t.dims, type: t.type as TensorInfo["type"], fileOffset: 0, nElements, nBytes: (nElements / t.dims[0]) * rowBytes(t.type, t.dims[0]) });
  }
  return { tensors: index, getValue: (k) => meta.get(k)?.value };
}

test("a named shape's profile equals the tensor index synth writes for it, for every shape and several types", () => {
  const types = [GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.Q4_0];
  for (const name of SHAPES.keys()) {
    for (const type of types) {
      const a = profileFromShape(name, type);
      const b = profileFromGGUF(synthIndex(name, type), name);
      assert.deepEqual({ ...a, weightType: "" }, { ...b, weightType: "" }, `${name} ${type}`);
    }
  }
});

test("Qwen2.5-7B from its shape: 28 layers of n_embd 3584, 7.6 B parameters, KV of 4 heads × 128", () => {
  const m = profileFromShape("qwen2.5-7b");
  assert.equal(m.nLayer, 28);
  assert.equal(m.nEmbd, 3584);
  assert.equal(m.weightType, "F16");
  const params = m.layerParams.reduce((a, b) => a + b, 0) + 2 * m.headParams + 3584; // + token_embd + output_norm
  assert.ok(Math.abs(params - 7.615e9) < 0.01e9, `params ${params}`);
  // attn q/k/v/o + ffn gate/up/down in F16, biases and norms in F32
  const mat = 3584 * 3584 * 2 + 3584 * 512 * 2 + 3 * 3584 * 18944;
  assert.equal(m.layerBytes[0], 2 * mat + 4 * (3584 + 512 * 2) + 4 * 2 * 3584);
  assert.equal(m.kvElementsPerTokenPerLayer, 2 * 4 * 128);
  assert.equal(m.sharedBytes, 0, "Qwen2.5-7B has its own output matrix");
  assert.equal(totalWeightBytes(m), stageWeightBytes(m, 0, 14) + stageWeightBytes(m, 14, 28));
  const q4 = profileFromShape("qwen2.5-7b", "Q4_K");
  assert.equal(q4.weightType, "Q4_K");
  assert.ok(q4.layerBytes[0] < m.layerBytes[0] / 3.5);
});

test("a tied model holds token_embd once on one stage, twice when split", () => {
  const m = profileFromShape("llama-3.2-1b");
  assert.equal(m.sharedBytes, m.embdBytes);
  const one = totalWeightBytes(m);
  const two = stageWeightBytes(m, 0, 8) + stageWeightBytes(m, 8, 16);
  assert.equal(two - one, m.embdBytes + m.globalBytes, "token_embd and rope_freqs are on both stages");
});

test("profile of real GGUF files: layer bytes add up to the file's tensor bytes", () => {
  for (const path of ["models/stories260K.gguf", "test/fixtures/models/llama-2-tiny-random.gguf"]) {
    const f = openGGUF(path);
    try {
      const m = profileFromGGUF(f);
      const total = [...f.tensors.values()].reduce((a, t) => a + t.nBytes, 0);
      assert.equal(totalWeightBytes(m), total, path);
      assert.equal(m.nLayer, f.getValue("llama.block_count"));
      assert.equal(m.nEmbd, f.getValue("llama.embedding_length"));
    } finally {
      f.close();
    }
  }
});

test("activation bytes per token per codec", () => {
  assert.equal(activationBytesPerToken(3584, "f32"), 14336);
  assert.equal(activationBytesPerToken(3584, "f16"), 7168);
  assert.equal(activationBytesPerToken(3584, "bf16"), 7168);
  assert.equal(activationBytesPerToken(3584, "int8"), 3588);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGUFError, openGGUF, parseGGUF } from "../../src/gguf/reader.ts";
import { serializeGGUF, writeGGUF, type GGUFToWrite } from "../../src/gguf/writer.ts";
import { GGMLType, GGUFValueType, type GGUFMetadataEntry } from "../../src/gguf/types.ts";

const STORIES = "models/stories260K.gguf";

test("reads the bundled stories260K header, metadata and tensor index", () => {
  const f = openGGUF(STORIES);
  try {
    assert.equal(f.version, 3);
    assert.equal(f.getValue("general.architecture"), "llama");
    assert.equal(f.getValue("llama.block_count"), 5);
    assert.equal(f.getValue("llama.embedding_length"), 64);
    const tokens = f.getValue("tokenizer.ggml.tokens") as string[];
    assert.equal(tokens.length, 512);
    assert.equal(tokens[1], "<s>");
    assert.ok(f.getValue("tokenizer.ggml.scores") instanceof Float32Array);
    const q = f.tensors.get("blk.0.attn_q.weight");
    assert.deepEqual(q?.dims, [64, 64]);
    assert.equal(q?.type, GGMLType.F32);
    assert.equal(f.tensors.size, 3 + 5 * 9);
    // Every tensor lies inside the file, aligned, and the last one ends at EOF.
    let end = 0;
    for (const t of f.tensors.values()) {
      assert.equal((t.fileOffset - f.dataOffset) % f.alignment, 0);
      end = Math.max(end, t.fileOffset + t.nBytes);
    }
    assert.equal(end, f.fileSize);
    assert.equal(f.bytesRead, 0, "opening reads no tensor data");
  } finally {
    f.close();
  }
});

test("tensors are read lazily: a layer slice reads only its own bytes", () => {
  const f = openGGUF(STORIES);
  try {
    const names = [...f.tensors.keys()].filter((n) => n.startsWith("blk.2.") || n.startsWith("blk.3."));
    let expected = 0;
    for (const n of names) {
      const bytes = f.readTensor(n);
      expected += f.tensors.get(n)!.nBytes;
      assert.equal(bytes.length, f.tensors.get(n)!.nBytes);
    }
    assert.equal(f.bytesRead, expected);
    assert.ok(f.bytesRead < f.fileSize / 2);
    // readRows returns exactly the rows asked for.
    const all = f.readTensor("token_embd.weight");
    const rows = f.readRows("token_embd.weight", 10, 3);
    assert.deepEqual(rows, all.subarray(10 * 64 * 4, 13 * 64 * 4));
    assert.throws(() => f.readRows("token_embd.weight", 511, 2), /out of range/);
    assert.throws(() => f.readTensor("blk.9.attn_q.weight"), /no tensor named "blk.9.attn_q.weight"/);
  } finally {
    f.close();
  }
});

function sample(): GGUFToWrite {
  const meta: Array<[string, GGUFMetadataEntry]> = [
    ["general.architecture", { type: GGUFValueType.STRING, value: "llama" }],
    ["u8", { type: GGUFValueType.UINT8, value: 250 }],
    ["i8", { type: GGUFValueType.INT8, value: -5 }],
    ["u16", { type: GGUFValueType.UINT16, value: 65000 }],
    ["i16", { type: GGUFValueType.INT16, value: -32000 }],
    ["u32", { type: GGUFValueType.UINT32, value: 4000000000 }],
    ["i32", { type: GGUFValueType.INT32, value: -2000000000 }],
    ["f32", { type: GGUFValueType.FLOAT32, value: Math.fround(1.5e-5) }],
    ["bool", { type: GGUFValueType.BOOL, value: true }],
    ["u64", { type: GGUFValueType.UINT64, value: 2n ** 63n + 7n }],
    ["i64", { type: GGUFValueType.INT64, value: -(2n ** 62n) }],
    ["f64", { type: GGUFValueType.FLOAT64, value: Math.PI }],
    ["unicode", { type: GGUFValueType.STRING, value: "héllo 🦙 世界" }],
    ["strs", { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING, value: ["a", "", "🦙"] }],
    ["f32s", { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.FLOAT32, value: new Float32Array([1, -2.5, 3]) }],
    ["i32s", { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.INT32, value: new Int32Array([1, -2, 3]) }],
    ["bools", { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.BOOL, value: [true, false] }],
    ["nested", { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.ARRAY, value: [new Int32Array([1, 2]), ["x", "y", "z"]] }],
  ];
  return {
    metadata: meta,
    tensors: [
      { name: "a", dims: [4, 2], type: GGMLType.F32, data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer) },
      { name: "b", dims: [3], type: GGMLType.F16, data: new Uint8Array(6).fill(1) },
      { name: "c", dims: [32, 1], type: GGMLType.Q8_0, data: () => new Uint8Array(34).fill(7) },
    ],
  };
}

test("writer and reader round-trip every metadata value type, nested arrays and tensors", () => {
  const g = sample();
  const bytes = serializeGGUF(g);
  const f = parseGGUF(bytes);
  for (const [k, e] of g.metadata) {
    const got = f.metadata.get(k)!;
    assert.equal(got.type, e.type, k);
    assert.deepEqual(got.value, e.value, k);
  }
  assert.deepEqual(new Float32Array(f.readTensor("a").slice().buffer), new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.deepEqual(f.readTensor("b"), new Uint8Array(6).fill(1));
  assert.deepEqual(f.readTensor("c"), new Uint8Array(34).fill(7));
  for (const t of f.tensors.values()) assert.equal(t.fileOffset % 32, 0);

  // The file writer produces the same bytes as the in-memory serializer, with a custom alignment too.
  const dir = mkdtempSync(join(tmpdir(), "llmesh-gguf-"));
  try {
    writeGGUF(join(dir, "x.gguf"), g);
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, "x.gguf"))), bytes);
    writeGGUF(join(dir, "y.gguf"), { ...g, alignment: 64 });
    const y = openGGUF(join(dir, "y.gguf"));
    assert.equal(y.alignment, 64);
    for (const t of y.tensors.values()) assert.equal(t.fileOffset % 64, 0);
    assert.deepEqual(y.readTensor("c"), new Uint8Array(34).fill(7));
    y.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("re-serializing the stories260K header reproduces the file byte for byte", () => {
  const original = new Uint8Array(readFileSync(STORIES));
  const f = openGGUF(STORIES);
  const copy = serializeGGUF({
    metadata: f.metadata,
    tensors: [...f.tensors.values()].map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: f.readTensor(t.name) })),
    alignment: f.alignment,
  });
  f.close();
  assert.equal(copy.length, original.length);
  assert.ok(Buffer.from(copy).equals(Buffer.from(original)));
});

/** A hand-built header, so we can forge fields the writer would never produce. */
function forge(parts: Array<["u32", number] | ["u64", bigint] | ["str", string]>): Uint8Array {
  const out: number[] = [];
  const dv = new DataView(new ArrayBuffer(8));
  for (const [kind, v] of parts) {
    if (kind === "u32") {
      dv.setUint32(0, v, true);
      for (let i = 0; i < 4; i++) out.push(dv.getUint8(i));
    } else if (kind === "u64") {
      dv.setBigUint64(0, v, true);
      for (let i = 0; i < 8; i++) out.push(dv.getUint8(i));
    } else {
      const b = new TextEncoder().encode(v);
      dv.setBigUint64(0, BigInt(b.length), true);
      for (let i = 0; i < 8; i++) out.push(dv.getUint8(i));
      out.push(...b);
    }
  }
  return new Uint8Array([...out, ...new Uint8Array(64)]); // slack so count checks don't fire first
}

test("hostile headers fail fast with a message naming the problem", () => {
  const M = 0x46554747;
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["empty", new Uint8Array(0), /too short/],
    ["bad magic", new TextEncoder().encode("GGML\x03\0\0\0"), /bad magic/],
    ["version 1", forge([["u32", M], ["u32", 1], ["u64", 0n], ["u64", 0n]]), /version 1 is not supported/],
    ["version 99", forge([["u32", M], ["u32", 99], ["u64", 0n], ["u64", 0n]]), /unsupported GGUF version 99/],
    ["absurd tensor count", forge([["u32", M], ["u32", 3], ["u64", 2n ** 60n], ["u64", 0n]]), /tensor count .* absurdly large|cannot fit/],
    ["absurd kv count", forge([["u32", M], ["u32", 3], ["u64", 0n], ["u64", 10n ** 9n]]), /metadata count 1000000000 cannot fit/],
    ["string longer than file", forge([["u32", M], ["u32", 3], ["u64", 0n], ["u64", 1n], ["u64", 10n ** 12n]]), /truncated file: metadata key #0 needs 1000000000000 bytes/],
    ["unknown value type", forge([["u32", M], ["u32", 3], ["u64", 0n], ["u64", 1n], ["str", "k"], ["u32", 77], ["u32", 0]]), /unknown metadata value type 77/],
    ["huge array", forge([["u32", M], ["u32", 3], ["u64", 0n], ["u64", 1n], ["str", "k"], ["u32", 9], ["u32", 6], ["u64", 10n ** 10n]]), /cannot fit/],
    ["unknown ggml type", forge([["u32", M], ["u32", 3], ["u64", 1n], ["u64", 0n], ["str", "t"], ["u32", 1], ["u64", 32n], ["u32", 1234], ["u64", 0n]]), /tensor "t" has unknown ggml type 1234/],
    ["too many dims", forge([["u32", M], ["u32", 3], ["u64", 1n], ["u64", 0n], ["str", "t"], ["u32", 9], ["u64", 1n]]), /9 dimensions/],
    ["offset past EOF", forge([["u32", M], ["u32", 3], ["u64", 1n], ["u64", 0n], ["str", "t"], ["u32", 1], ["u64", 32n], ["u32", 0], ["u64", 1024n]]), /past the end of the file/],
    ["misaligned offset", forge([["u32", M], ["u32", 3], ["u64", 1n], ["u64", 0n], ["str", "t"], ["u32", 1], ["u64", 1n], ["u32", 0], ["u64", 3n]]), /not aligned/],
    ["bad block multiple", forge([["u32", M], ["u32", 3], ["u64", 1n], ["u64", 0n], ["str", "t"], ["u32", 1], ["u64", 33n], ["u32", 8], ["u64", 0n]]), /not a multiple of the Q8_0 block size 32/],
  ];
  for (const [name, bytes, re] of cases) {
    assert.throws(() => parseGGUF(bytes, name), (e: unknown) => e instanceof GGUFError && re.test(e.message) && e.message.startsWith(name), name);
  }
});

test("every truncation and random corruption of a real file errors cleanly or parses, never crashes", () => {
  const original = new Uint8Array(readFileSync(STORIES)).subarray(0, 20000); // header region and first tensors
  const full = new Uint8Array(readFileSync(STORIES));
  const header = openGGUF(STORIES);
  const headerEnd = header.dataOffset;
  header.close();
  // Truncation anywhere inside the header is an error naming truncation or a tensor past EOF.
  for (let cut = 0; cut < headerEnd; cut += 37) {
    assert.throws(() => parseGGUF(full.subarray(0, cut)), GGUFError);
  }
  assert.throws(() => parseGGUF(full.subarray(0, full.length - 1)), /past the end of the file/);
  // Random byte flips in the header: GGUFError or a successful parse, nothing else, and fast.
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const t0 = performance.now();
  for (let i = 0; i < 2000; i++) {
    const bytes = full.slice();
    const flips = 1 + Math.floor(rand() * 4);
    for (let j = 0; j < flips; j++) bytes[Math.floor(rand() * headerEnd)] = Math.floor(rand() * 256);
    try {
      parseGGUF(bytes);
    } catch (e) {
      assert.ok(e instanceof GGUFError, `non-GGUFError: ${(e as Error).stack}`);
    }
  }
  assert.ok(performance.now() - t0 < 20000);
  assert.ok(original.length > 0);
});

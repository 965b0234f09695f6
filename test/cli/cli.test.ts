// The CLI as a user types it: real child processes, real files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const NODE = process.execPath;
const MODEL = "models/stories260K.gguf";
const GOLDEN = "403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385";

function llmesh(...args: string[]): string {
  return execFileSync(NODE, ["src/cli/main.ts", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function llmeshFails(...args: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(NODE, ["src/cli/main.ts", ...args], { encoding: "utf8" });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

test("llmesh run --json streams the golden greedy tokens of stories260K from BOS, then a summary", () => {
  const lines = llmesh("run", "--model", MODEL, "--prompt", "", "--max-tokens", "32", "--temperature", "0", "--json").trim().split("\n").map((l) => JSON.parse(l));
  const summary = lines.pop();
  assert.deepEqual(lines.map((l) => l.id).join(" "), GOLDEN);
  assert.deepEqual(lines[0], { id: 403, text: "Once" });
  assert.ok(lines.map((l) => l.text).join("").startsWith("Once upon a time, there was a little girl named Lily."));
  assert.equal(summary.tokens, 32);
  assert.equal(summary.prompt_tokens, 1);
  assert.ok(summary.tokens_per_second > 0);
});

test("llmesh run streams text; the same seed gives the same sampled text", () => {
  const a = llmesh("run", "-m", MODEL, "-p", "Once upon a time", "-n", "40", "--seed", "7");
  const b = llmesh("run", "-m", MODEL, "-p", "Once upon a time", "-n", "40", "--seed", "7");
  const c = llmesh("run", "-m", MODEL, "-p", "Once upon a time", "-n", "40", "--seed", "8");
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.ok(a.length > 40);
  const greedy = llmesh("run", "-m", MODEL, "-p", "Once upon a time", "-n", "12", "--temperature", "0", "--engine", "reference");
  assert.match(greedy, /^, there was a little girl named Lily/);
});

test("llmesh tokenize prints ids (BOS only with --add-special), or a JSON array", () => {
  assert.equal(llmesh("tokenize", "--model", MODEL, "--text", "Once upon a time").trim(), "403 407 261 378");
  assert.equal(llmesh("tokenize", "--model", MODEL, "--text", "Once upon a time", "--add-special").trim(), "1 403 407 261 378");
  assert.deepEqual(JSON.parse(llmesh("tokenize", "-m", MODEL, "-t", "Lily", "--json")), [317]);
});

test("llmesh inspect prints metadata, tensors and memory per layer", () => {
  const out = llmesh("inspect", MODEL);
  assert.match(out, /GGUF v3, 48 tensors/);
  assert.match(out, /llama\.block_count = 5/);
  assert.match(out, /blk\.4\.ffn_down\.weight\s+F32\s+172 × 64/);
  assert.match(out, /layer 4\s+9\s+/);
  const j = JSON.parse(llmesh("inspect", MODEL, "--json"));
  assert.equal(j.tensors.length, 48);
  assert.equal(j.layers.filter((l: { group: string }) => l.group.startsWith("layer")).length, 5);
});

test("llmesh synth writes a loadable model of a real shape that llmesh run and inspect accept", () => {
  const dir = mkdtempSync(join(tmpdir(), "llmesh-cli-"));
  try {
    const out = join(dir, "q.gguf");
    llmesh("synth", "--arch", "qwen2", "--shape", "tiny-qwen2", "--type", "Q4_K", "--vocab", MODEL, "-o", out, "--seed", "2");
    const info = llmesh("inspect", out);
    assert.match(info, /general\.architecture = "qwen2"/);
    assert.match(info, /blk\.0\.attn_q\.weight\s+Q4_K\s+256 × 256/);
    assert.match(info, /blk\.0\.attn_q\.bias\s+F32/);
    const lines = llmesh("run", "-m", out, "-n", "5", "--temperature", "0", "--json").trim().split("\n");
    assert.equal(lines.length, 6);
    // Same seed, same bytes.
    const again = join(dir, "q2.gguf");
    llmesh("synth", "--shape", "tiny-qwen2", "--type", "Q4_K", "--vocab", MODEL, "-o", again, "--seed", "2");
    assert.ok(readFileSync(out).equals(readFileSync(again)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("llmesh bench times prefill and decode per thread count, and llama.cpp's on the same file with --vs-llama", () => {
  const rows = llmesh("bench", MODEL, "--threads", "1,2", "--prompt", "32", "--decode", "16", "--runs", "1", "--json").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((r) => r.threads), [1, 2]);
  for (const r of rows) {
    assert.ok(r.llmesh.prefill > 0 && r.llmesh.decode > 0, JSON.stringify(r));
    // weight GB/s = the bytes one decode step reads × decode tok/s: at most the file, at least its layers
    const stepBytes = (r.weightGBs * 1e9) / r.llmesh.decode;
    assert.ok(stepBytes > 0.5 * statSync(MODEL).size && stepBytes <= statSync(MODEL).size, `${stepBytes} bytes per step`);
    assert.equal(r.llama, undefined);
    assert.ok(r.peakRssMiB > statSync(MODEL).size / 2 ** 20 && r.peakRssMiB < 4096, `peak RSS ${r.peakRssMiB} MiB`);
  }
  const [vs] = llmesh("bench", MODEL, "--threads", "1", "--prompt", "32", "--decode", "16", "--runs", "1", "--vs-llama", "--json").trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(vs.llama.prefill > 0 && vs.llama.decode > 0, JSON.stringify(vs));
  assert.ok(Math.abs(vs.ratio.decode - vs.llmesh.decode / vs.llama.decode) < 1e-9 * vs.ratio.decode);
  assert.ok(Math.abs(vs.ratio.prefill - vs.llmesh.prefill / vs.llama.prefill) < 1e-9 * vs.ratio.prefill);
  const text = llmesh("bench", MODEL, "--threads", "1", "--prompt", "16", "--decode", "4", "--runs", "1");
  assert.match(text, /stories260K\.gguf: 16-token prefill, 4 decoded tokens, medians of 1 run/);
  assert.match(text, /threads\s+prefill tok\/s\s+decode tok\/s\s+weights GB\/s\s+peak RSS MiB\n1\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+/);
});

test("bad input: a clear one-line error and exit status 1, never a stack trace", () => {
  const dir = mkdtempSync(join(tmpdir(), "llmesh-cli-"));
  try {
    const bad = join(dir, "bad.gguf");
    writeFileSync(bad, readFileSync(MODEL).subarray(0, 5000));
    for (const [args, re] of [
      [["run", "-m", bad, "-n", "4"], /truncated|past the end/],
      [["inspect", join(dir, "missing.gguf")], /cannot open/],
      [["run", "-m", MODEL, "-n", "abc"], /--max-tokens must be an integer/],
      [["run", "-m", MODEL, "-n", "4000"], /exceeds the context of 2048 tokens/],
      [["synth", "--shape", "nope", "--vocab", MODEL, "-o", join(dir, "x.gguf")], /unknown model shape "nope"/],
      [["tokenize", "-m", "test/fixtures/vocab/ggml-vocab-gpt-2.gguf"], /required option/],
      [["bench", join(dir, "missing.gguf"), "--runs", "1"], /cannot open/],
      [["bench", MODEL, "--threads", "0"], /--threads must be a comma-separated list of positive integers/],
      [["bench", MODEL, "--prompt", "1"], /--prompt must be at least 2/],
    ] as Array<[string[], RegExp]>) {
      const r = llmeshFails(...args);
      assert.equal(r.status, 1, `${args.join(" ")}: exit ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, re, args.join(" "));
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

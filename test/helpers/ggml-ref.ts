// Test oracle: runs llama.cpp's own conversion functions from the libggml-base.so that the
// node-llama-cpp devDependency ships, through a tiny C program (ggml-ref.c) compiled once with `cc`
// and cached under os.tmpdir() keyed by a hash of its source.
//
// Library lookup: $LLMESH_GGML_BASE_LIB, else
// node_modules/@node-llama-cpp/linux-<arch>*/bins/*/libggml-base.so (plain CPU build preferred).
// Missing library or compiler is an error (tests must fail loudly, not skip).

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, globSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const HERE = import.meta.dirname;
const REPO = resolve(HERE, "..", "..");
const C_SOURCE = join(HERE, "ggml-ref.c");

export type RefTypeName = "F16" | "BF16" | "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" | "Q8_0" | "Q4_K" | "Q5_K" | "Q6_K";

/** Geometry from ggml-common.h, written out here so the oracle does not depend on the code under test. */
const GEOMETRY: Record<RefTypeName, { block: number; bytes: number; dequant: string; quant: string }> = {
  F16: { block: 1, bytes: 2, dequant: "ggml_fp16_to_fp32_row", quant: "ggml_fp32_to_fp16_row" },
  BF16: { block: 1, bytes: 2, dequant: "ggml_bf16_to_fp32_row", quant: "ggml_fp32_to_bf16_row_ref" },
  Q4_0: { block: 32, bytes: 18, dequant: "dequantize_row_q4_0", quant: "quantize_row_q4_0_ref" },
  Q4_1: { block: 32, bytes: 20, dequant: "dequantize_row_q4_1", quant: "quantize_row_q4_1_ref" },
  Q5_0: { block: 32, bytes: 22, dequant: "dequantize_row_q5_0", quant: "quantize_row_q5_0_ref" },
  Q5_1: { block: 32, bytes: 24, dequant: "dequantize_row_q5_1", quant: "quantize_row_q5_1_ref" },
  Q8_0: { block: 32, bytes: 34, dequant: "dequantize_row_q8_0", quant: "quantize_row_q8_0_ref" },
  Q4_K: { block: 256, bytes: 144, dequant: "dequantize_row_q4_K", quant: "quantize_row_q4_K_ref" },
  Q5_K: { block: 256, bytes: 176, dequant: "dequantize_row_q5_K", quant: "quantize_row_q5_K_ref" },
  Q6_K: { block: 256, bytes: 210, dequant: "dequantize_row_q6_K", quant: "quantize_row_q6_K_ref" },
};

/** Block geometry the oracle uses (elements per block, bytes per block). */
export function refGeometry(type: RefTypeName): { block: number; bytes: number } {
  return GEOMETRY[type];
}

let cachedLib: string | undefined;
let cachedBin: string | undefined;

/** Path of llama.cpp's libggml-base.so; throws with a clear message when it cannot be found. */
export function findGgmlBaseLib(): string {
  if (cachedLib) return cachedLib;
  const env = process.env.LLMESH_GGML_BASE_LIB;
  if (env) {
    if (!existsSync(env)) throw new Error(`LLMESH_GGML_BASE_LIB=${env} does not exist`);
    return (cachedLib = env);
  }
  const pattern = `node_modules/@node-llama-cpp/linux-${process.arch}*/bins/*/libggml-base.so`;
  const found = globSync(pattern, { cwd: REPO }).sort((a, b) => a.length - b.length || a.localeCompare(b));
  if (found.length === 0) {
    throw new Error(
      `llama.cpp reference library not found: no ${pattern} under ${REPO}. ` +
        "Install devDependencies (npm ci; node-llama-cpp ships it) or set LLMESH_GGML_BASE_LIB.",
    );
  }
  return (cachedLib = join(REPO, found[0]));
}

/** Compile ggml-ref.c once per source hash; returns the executable's path. */
export function ggmlRefBinary(): string {
  if (cachedBin) return cachedBin;
  const source = readFileSync(C_SOURCE);
  const hash = createHash("sha256").update(source).update(process.arch).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), "llmesh-ggml-ref");
  const bin = join(dir, `ggml-ref-${hash}`);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    try {
      execFileSync("cc", ["-O1", "-std=gnu11", "-o", tmp, C_SOURCE, "-ldl"], { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      rmSync(tmp, { force: true });
      const err = e as { code?: string; stderr?: Buffer; message: string };
      const why = err.code === "ENOENT" ? "`cc` is not installed (a C compiler is required)" : String(err.stderr ?? err.message);
      throw new Error(`cannot compile the llama.cpp reference runner ${C_SOURCE}: ${why}`);
    }
    renameSync(tmp, bin); // atomic: concurrent test processes never see a half-written binary
  }
  return (cachedBin = bin);
}

/** Run `symbol(in, out, n)` from libggml-base.so and return its outBytes output bytes. */
export function ggmlCall(symbol: string, input: Uint8Array, n: number, outBytes: number): Uint8Array {
  const lib = findGgmlBaseLib();
  const bin = ggmlRefBinary();
  let out: Buffer;
  try {
    out = execFileSync(bin, [lib, symbol, String(n), String(outBytes)], {
      input,
      maxBuffer: outBytes + (1 << 20),
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`llama.cpp reference runner failed for ${symbol}: ${String(err.stderr ?? "") || err.message}`);
  }
  if (out.length !== outBytes) throw new Error(`${symbol}: expected ${outBytes} bytes, got ${out.length}`);
  return new Uint8Array(out); // copy into a fresh, aligned ArrayBuffer
}

/** llama.cpp's dequantize_row_* (or fp16/bf16 row decoder) applied to n elements of bytes. */
export function ggmlDequantize(type: RefTypeName, bytes: Uint8Array, n: number): Float32Array {
  const g = GEOMETRY[type];
  if (n % g.block !== 0) throw new Error(`${type}: ${n} is not a multiple of ${g.block}`);
  const need = (n / g.block) * g.bytes;
  if (bytes.length < need) throw new Error(`${type}: need ${need} bytes, got ${bytes.length}`);
  const out = ggmlCall(g.dequant, bytes.subarray(0, need), n, n * 4);
  return new Float32Array(out.buffer, out.byteOffset, n);
}

/** llama.cpp's quantize_row_*_ref (or fp32 -> fp16/bf16 row encoder) applied to floats. */
export function ggmlQuantize(type: RefTypeName, floats: Float32Array): Uint8Array {
  const g = GEOMETRY[type];
  const n = floats.length;
  if (n % g.block !== 0) throw new Error(`${type}: ${n} is not a multiple of ${g.block}`);
  const input = new Uint8Array(floats.buffer, floats.byteOffset, n * 4);
  return ggmlCall(g.quant, input, n, (n / g.block) * g.bytes);
}

// Synthetic models for the benchmarks: written once with `llmesh synth` (random weights of a real
// shape, the 32000-token llama-spm vocabulary) and cached under os.tmpdir()/llmesh-bench.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The cached file for (shape, type), written first if missing. */
export function modelFile(shape: string, type: string): string {
  const dir = join(tmpdir(), "llmesh-bench");
  mkdirSync(dir, { recursive: true });
  const f = join(dir, `${shape}-${type}.gguf`);
  if (!existsSync(f)) {
    console.error(`writing ${f} ...`);
    execFileSync(process.execPath, [join(ROOT, "src/cli/main.ts"), "synth", "--shape", shape, "--type", type,
      "--vocab", join(ROOT, "test/fixtures/vocab/ggml-vocab-llama-spm.gguf"), "-o", f], { stdio: "inherit" });
  }
  return f;
}

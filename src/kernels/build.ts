// Builds the WebAssembly kernels (assembly/*.ts, AssemblyScript; entry assembly/kernels.ts) into build/kernels.wasm.
//
//   npm run build           (also run by `npm install` through the "prepare" script)
//   node src/kernels/build.ts
//
// The engine also builds on first use (kernelsWasmBytes) when the .wasm is missing or older than
// its source, so a clean clone works even if the install step was skipped. Nothing is fetched:
// the compiler is the `assemblyscript` package from node_modules. A build takes ~2–3 s.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const KERNELS_SOURCE = join(ROOT, "assembly", "kernels.ts");
export const KERNELS_WASM = join(ROOT, "build", "kernels.wasm");

/** asc flags: SIMD, a shared imported memory (threads), no runtime (the kernels never allocate). */
const ASC_FLAGS = [
  "--runtime", "stub", "-O3", "--noAssert", "--enable", "simd", "--enable", "relaxed-simd", "--enable", "threads",
  "--importMemory", "--sharedMemory", "--initialMemory", "1", "--maximumMemory", "65536",
];

/** Compiles the kernels (synchronously) into `out`. */
export function buildKernels(out = KERNELS_WASM): void {
  const require = createRequire(import.meta.url);
  const asc = join(dirname(require.resolve("assemblyscript/package.json")), "bin", "asc.js");
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync(process.execPath, [asc, KERNELS_SOURCE, "-o", tmp, ...ASC_FLAGS], { stdio: ["ignore", "pipe", "pipe"] });
  renameSync(tmp, out); // atomic: concurrent test processes never see a half-written file
}

function upToDate(): boolean {
  if (!existsSync(KERNELS_WASM)) return false;
  const dir = dirname(KERNELS_SOURCE);
  const newest = Math.max(...readdirSync(dir).filter((f) => f.endsWith(".ts")).map((f) => statSync(join(dir, f)).mtimeMs));
  return statSync(KERNELS_WASM).mtimeMs >= newest;
}

/** The kernel module's bytes, building it first if needed. */
export function kernelsWasmBytes(): Uint8Array {
  if (!upToDate()) buildKernels();
  return readFileSync(KERNELS_WASM);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  buildKernels();
  console.log(`built ${KERNELS_WASM} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

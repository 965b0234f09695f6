// Real processes on loopback: a mesh host (`llmesh serve --mesh`) and workers (`llmesh join`).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const MAIN = join(ROOT, "src/cli/main.ts");
export const STORIES = join(ROOT, "models/stories260K.gguf");

export interface Proc {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
  /** The processes started beside it (a mesh's host and workers): their output goes into waitFor's errors. */
  group?: Proc[];
}

export function startProc(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const p: Proc = { child, out: "", exited: new Promise((res) => child.on("exit", (code) => res(code))) };
  child.stdout!.on("data", (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (p.out += d.toString()));
  return p;
}

export async function waitFor(p: Proc, re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  const t0 = Date.now();
  for (;;) {
    const m = p.out.match(re);
    if (m) return m;
    if (p.child.exitCode !== null) throw new Error(`process exited (${p.child.exitCode}) before ${re}:\n${p.out}${others(p)}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${re}:\n${p.out}${others(p)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The other processes' output, for a failure that may have been caused on their side. */
function others(p: Proc): string {
  const label = (x: Proc) => {
    const a = x.child.spawnargs;
    return a.includes("--name") ? `${a[2]} ${a[a.indexOf("--name") + 1]}` : a[2];
  };
  return (p.group ?? []).filter((x) => x !== p).map((x) => `\n--- ${label(x)} (pid ${x.child.pid}, exit ${x.child.exitCode}) ---\n${x.out}`).join("");
}

export function tempDir(prefix = "llmesh-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function synthModel(dir: string): string {
  const out = join(dir, "tiny-qwen2.gguf");
  const r = spawnSync(process.execPath, [MAIN, "synth", "--shape", "tiny-qwen2", "--type", "Q8_0", "--vocab", STORIES, "-o", out], { cwd: ROOT });
  if (r.status !== 0) throw new Error(`synth failed: ${r.stderr.toString()}`);
  return out;
}

export interface TestMesh {
  url: string;
  token: string;
  host: Proc;
  workers: Proc[];
  dir: string;
  /** Starts one more worker (`llmesh join`) and resolves once it has joined. */
  addWorker(name: string, env?: Record<string, string>, extra?: string[]): Promise<Proc>;
  close(): Promise<void>;
}

export interface MeshOptions {
  workers?: number;
  split?: string;
  ctx?: number;
  /** More host (`llmesh serve`) arguments. */
  extra?: string[];
  /** Per worker: environment and more `llmesh join` arguments. */
  workerEnv?: Array<Record<string, string>>;
  workerExtra?: string[][];
}

export async function startMesh(model: string, opts: MeshOptions = {}): Promise<TestMesh> {
  const dir = tempDir();
  const nWorkers = opts.workers ?? 2;
  const host = startProc([
    "serve", "--model", model, "--mesh", "--peers", String(nWorkers), "--port", "0", "--data-dir", join(dir, "host"),
    "--listen", "/ip4/127.0.0.1/tcp/0", "--log-format", "json", "--ctx", String(opts.ctx ?? 256),
    ...(opts.split ? ["--split", opts.split] : []), ...(opts.extra ?? []),
  ]);
  const procs = [host];
  host.group = procs;
  const close = async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGTERM");
    await Promise.all(procs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))])));
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  };
  try {
    const token = (await waitFor(host, /^invite: (\S+)$/m))[1];
    const workers: Proc[] = [];
    const addWorker = async (name: string, env: Record<string, string> = {}, extra: string[] = []): Promise<Proc> => {
      const w = startProc(["join", token, "--model", model, "--data-dir", join(dir, name), "--listen", "/ip4/127.0.0.1/tcp/0", "--name", name, ...extra], env);
      procs.push(w);
      w.group = procs;
      workers.push(w);
      await waitFor(w, /joined the mesh/);
      return w;
    };
    for (let i = 0; i < nWorkers; i++) await addWorker(`w${i + 1}`, opts.workerEnv?.[i], opts.workerExtra?.[i]);
    const url = (await waitFor(host, /ready: (http:\/\/[0-9.:]+)\/v1/))[1];
    return { url, token, host, workers, dir, addWorker, close };
  } catch (err) {
    await close();
    throw err;
  }
}

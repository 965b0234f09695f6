// Each worker process holds its share of the weights (plus its KV), not the whole model: a synthetic
// 24-layer SmolLM2-360M-shaped model in Q8_0 (~240 MiB of weights) split 6 / 14 / 4 over real processes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openGGUF } from "../../src/gguf/reader.ts";
import { MAIN, ROOT, startMesh, STORIES, tempDir, type TestMesh } from "./helpers.ts";

let mesh: TestMesh;
let weightBytes = 0;
before(async () => {
  const model = join(tempDir(), "smol360.gguf");
  const r = spawnSync(process.execPath, [MAIN, "synth", "--shape", "smollm2-360m", "--type", "Q8_0", "--vocab", STORIES, "--layers", "24", "-o", model], { cwd: ROOT });
  if (r.status !== 0) throw new Error(`synth failed: ${r.stderr.toString()}`);
  const g = openGGUF(model);
  for (const [, t] of g.tensors) weightBytes += t.nBytes;
  g.close();
  mesh = await startMesh(model, { split: "6,14,4", ctx: 128 });
});
after(async () => {
  await mesh?.close();
});

function vmRss(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : NaN;
}

test("a worker's RSS is its share of the weights plus KV, not the whole model", async (t) => {
  assert.ok(weightBytes > 100 * 2 ** 20, `the model is ${weightBytes} bytes`);
  const res = await fetch(`${mesh.url}/v1/completions`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "smol360", prompt: "Once upon a time", max_tokens: 8, temperature: 0 }),
  });
  assert.equal(res.status, 200);
  const s = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as { stages: Array<{ range: { start: number; end: number }; rssBytes: number; heapBytes: number; kernelBytes: number }> };
  assert.deepEqual(s.stages.map((x) => x.range.end - x.range.start), [6, 14, 4]);
  const [, big, small] = s.stages;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const show = (x: (typeof s.stages)[number]) => `RSS ${mib(x.rssBytes)} (JS heap ${mib(x.heapBytes)}, kernel memory ${mib(x.kernelBytes)})`;
  const msg = `weights ${mib(weightBytes)}; 14-layer worker ${show(big)}, 4-layer worker ${show(small)}`;
  t.diagnostic(msg);
  // The kernel memory holds the stage's layers (packed: Q8_0 blocks lose their 2-byte f16 scales for
  // 4-byte f32 ones, +6%) plus KV and scratch — not the model.
  for (const [x, layers] of [[big, 14], [small, 4]] as const) {
    assert.ok(x.kernelBytes > (layers / 24) * weightBytes && x.kernelBytes < (layers / 24) * weightBytes * 1.2 + 8 * 2 ** 20, `${layers}-layer worker: ${msg}`);
  }
  // Besides its kernel memory and JS heap, a worker holds a constant: Node, libp2p, a kernel thread,
  // and the allocator's leftovers from the link probes' bursts (~150–200 MiB here, ±50 MiB between
  // runs). No file buffers wait for the GC (layers are read straight into kernel memory), so that rest
  // does not grow with the layers held: buffers of the 14 layers against the other worker's 4 would add
  // 0.42 of the weights (~100 MiB), a copy of the model 240 MiB.
  const rest = (x: (typeof s.stages)[number]) => x.rssBytes - x.heapBytes - x.kernelBytes;
  const restMsg = `besides kernel memory and JS heap, ${mib(rest(big))} and ${mib(rest(small))}: ${msg}`;
  assert.ok(Math.abs(rest(big) - rest(small)) < 0.35 * weightBytes, restMsg);
  for (const x of [big, small]) assert.ok(rest(x) < 350 * 2 ** 20, restMsg);
  // What the workers report is what the kernel sees.
  for (const [i, w] of mesh.workers.entries()) {
    const rss = vmRss(w.child.pid!);
    const reported = s.stages[i + 1].rssBytes;
    assert.ok(Math.abs(rss - reported) < 0.2 * reported, `worker ${i + 1}: VmRSS ${mib(rss)}, reported ${mib(reported)}`);
  }
});

// Each worker process holds its share of the weights (plus its KV), not the whole model: a synthetic
// 30-layer SmolLM2-135M-shaped model in Q8_0 (~108 MiB of weights) split 19 / 10 / 1 over real processes.
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
  const model = join(tempDir(), "smol30.gguf");
  const r = spawnSync(process.execPath, [MAIN, "synth", "--shape", "smollm2-135m", "--type", "Q8_0", "--vocab", STORIES, "--layers", "30", "-o", model], { cwd: ROOT });
  if (r.status !== 0) throw new Error(`synth failed: ${r.stderr.toString()}`);
  const g = openGGUF(model);
  for (const [, t] of g.tensors) weightBytes += t.nBytes;
  g.close();
  mesh = await startMesh(model, { split: "19,10,1", ctx: 128 });
});
after(async () => {
  await mesh?.close();
});

function vmRss(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : NaN;
}

test("a worker's RSS is its share of the weights plus KV, not the whole model", async () => {
  assert.ok(weightBytes > 100 * 2 ** 20, `the model is ${weightBytes} bytes`);
  const res = await fetch(`${mesh.url}/v1/completions`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "smol30", prompt: "Once upon a time", max_tokens: 8, temperature: 0 }),
  });
  assert.equal(res.status, 200);
  const s = (await (await fetch(`${mesh.url}/v1/mesh`)).json()) as { stages: Array<{ range: { start: number; end: number }; rssBytes: number }> };
  assert.deepEqual(s.stages.map((x) => x.range.end - x.range.start), [19, 10, 1]);
  const [, third, one] = s.stages.map((x) => x.rssBytes);
  // The one-layer worker is the baseline (Node, libp2p, kernels, one layer); the 10-layer worker adds
  // about 9/30 of the weights (0.3; up to twice that until V8 collects the file buffers the layers were
  // packed from) — a process holding the whole model would add at least all of it.
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const msg = `weights ${mib(weightBytes)}; RSS of the 10-layer worker ${mib(third)}, of the 1-layer worker ${mib(one)}`;
  assert.ok(third < one + 0.8 * weightBytes, msg);
  assert.ok(third > one + 0.15 * weightBytes, `the 10-layer worker really holds its layers: ${msg}`);
  // What the workers report is what the kernel sees.
  for (const [i, w] of mesh.workers.entries()) {
    const rss = vmRss(w.child.pid!);
    const reported = s.stages[i + 1].rssBytes;
    assert.ok(Math.abs(rss - reported) < 0.2 * reported, `worker ${i + 1}: VmRSS ${mib(rss)}, reported ${mib(reported)}`);
  }
});

// `llmesh plan`: the published WAN figures reproduced from the model's shape alone, through the real command.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runPlan, type PlanReport } from "../../src/cli/commands/plan.ts";

const PEER = "mem=8G,tflops=20,bw=50GB/s";
const QWEN = ["--model", "qwen2.5-7b", "--stages", "4", "--tokens", "100", "--batch", "8", "--seq", "512", "--codec", "f16", "--link", "rtt=242ms,bw=20mbit", "--peer", PEER, "--peer", PEER, "--peer", PEER, "--peer", PEER];

function near(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected} ± ${tol}`);
}

function checkPublished(r: PlanReport): void {
  assert.equal(r.model.nEmbd, 3584);
  assert.equal(r.model.nLayer, 28);
  assert.equal(r.network.stages, 4);
  const row = (ms: number) => r.network.latency.find((x) => Math.abs(x.rttSec - ms / 1000) < 1e-9)!;
  // Published: T·(K−1)·RTT/2 = 36–37 s at 242 ms, ≈ 6.1 s at ≈ 41 ms, ≈ 0.77 s at ≈ 5 ms.
  assert.ok(row(242).publishedSec >= 36 && row(242).publishedSec <= 37);
  near(row(41).publishedSec, 6.1, 0.1, "41 ms");
  near(row(5).publishedSec, 0.77, 0.03, "5 ms");
  // Beside them: our ring (K one-way hops per token) and llama.cpp-RPC-style chatter (2 round trips per remote stage).
  near(row(242).ringSec, 48.4, 1e-9, "ring at 242 ms");
  near(row(242).rpcSec, 145.2, 1e-9, "RPC at 242 ms");
  // Prefill boundary: 8 × 512 tokens × 3584 × 2 bytes = 29.4 MB, ≈ 12 s per hop at 20 Mbit/s.
  const f16 = r.network.prefill.rows.find((p) => p.codec === "f16")!;
  assert.equal(f16.bytesPerBoundary, 29_360_128);
  near(f16.transferSec, 11.74, 0.01, "prefill transfer");
  // Per codec, bytes per token per hop at the link.
  assert.deepEqual(r.network.codecs.map((c) => [c.codec, c.bytesPerToken]), [["f32", 14336], ["f16", 7168], ["bf16", 7168], ["int8", 3588]]);
  near(r.network.codecs[1].transferSec, 7168 / 2.5e6, 1e-12, "f16 token transfer");
  // A placement on 4 peers, and the verdicts: 100 tokens cannot take 2 s over 242 ms links.
  assert.equal(r.plan!.stages.length, 4);
  assert.equal(r.plan!.stages[0].start, 0);
  assert.equal(r.plan!.stages[3].end, 28);
  assert.equal(r.verdict.network.interactiveGo, false);
  assert.equal(r.verdict.plan!.interactiveGo, false);
  assert.equal(r.verdict.network.batchGo, true, "121 ms + 8 × 7168 B at 20 Mbit/s = 144 ms < 200 ms");
}

test("runPlan --json reproduces the published Qwen2.5-7B WAN figures", () => {
  checkPublished(JSON.parse(runPlan([...QWEN, "--json"])) as PlanReport);
});

test("runPlan text output shows the three counts, the codecs, the prefill boundary, placement and verdicts", () => {
  const out = runPlan(QWEN);
  for (const s of ["36.3 s", "6.15 s", "48.4 s", "145 s", "29.4 MB", "11.7 s", "7.17 kB", "3.59 kB", "ring: p1 → p2 → p3 → p4 → p1", "NO-GO", "[0, "]) {
    assert.ok(out.includes(s), `missing "${s}" in:\n${out}`);
  }
});

test("the plan command as a child process (registerPlan in a fresh commander program)", () => {
  const out = execFileSync(process.execPath, ["test/planner/plan-cli-main.ts", "plan", ...QWEN, "--json"], { encoding: "utf8" });
  checkPublished(JSON.parse(out) as PlanReport);
});

test("llmesh plan through src/cli/main.ts (passes once registerPlan is wired into main.ts)", () => {
  const out = execFileSync(process.execPath, ["src/cli/main.ts", "plan", ...QWEN, "--json"], { encoding: "utf8" });
  checkPublished(JSON.parse(out) as PlanReport);
});

test("network figures alone: a model and a stage count, no peers", () => {
  const r = JSON.parse(runPlan(["--model", "qwen2.5-7b", "--stages", "4", "--json"])) as PlanReport;
  assert.equal(r.plan, null);
  assert.equal(r.error, null);
  assert.ok(r.network.latency[0].publishedSec > 36);
  assert.equal(r.network.link.bytesPerSec, 2.5e6, "the reference 20 Mbit/s when no link is given");
  assert.throws(() => runPlan(["--model", "qwen2.5-7b"]), /give peers \(--peer or --scenario\)/);
});

test("a scenario file, a GGUF model, and an impossible cluster", () => {
  const dir = mkdtempSync(join(tmpdir(), "llmesh-plan-"));
  try {
    const file = join(dir, "s.json");
    writeFileSync(file, JSON.stringify({
      model: "qwen2.5-7b", type: "Q4_K", objective: "interactive",
      peers: ["mem=16G,bw=400GB/s,tflops=30,name=fast,group=home", "mem=16G,bw=20GB/s,tflops=5,name=slow,group=home", "mem=64G,bw=50GB/s,name=far,group=cloud"],
      links: ["rtt=60ms,bw=100mbit", "home-home:rtt=1ms,bw=1gbit"],
    }));
    const r = JSON.parse(runPlan(["--scenario", file, "--json"])) as PlanReport;
    // Q4_K (4.4 GiB) fits the fast home peer alone: the best single-group pipeline is one stage at home.
    assert.deepEqual(r.plan!.stages.map((s) => [s.peer, s.start, s.end]), [["fast", 0, 28]]);
    assert.ok(r.plan!.leftOut.some((l) => l.peer === "far" && /outside group "home"/.test(l.reason)));
    assert.equal(r.verdict.plan!.interactiveGo, true, "4.8 GB at 400 GB/s: ≈ 12 ms/token, 100 tokens in ≈ 1.2 s");

    const g = JSON.parse(runPlan(["--model", "models/stories260K.gguf", "--peer", "mem=1G,bw=10GB/s", "--json"])) as PlanReport;
    assert.equal(g.model.source, "gguf");
    assert.equal(g.plan!.stages.length, 1);

    const text = runPlan(["--model", "qwen2.5-7b", "--link", "rtt=5ms,bw=1gbit", "--peer", "mem=4G,bw=50GB/s", "--peer", "mem=4G,bw=50GB/s"]);
    assert.match(text, /Placement: cannot place: needs 14\.\d GiB .*cluster has 7\.2 GiB/);
    assert.match(text, /NO-GO: cannot place/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad input fails with one clear line", () => {
  const r = spawnSync(process.execPath, ["test/planner/plan-cli-main.ts", "plan", "--model", "qwen2.5-7b", "--peer", "mem=16,bw=50GB/s"], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^llmesh: peer 1: mem: size "16" needs a unit/);
  assert.throws(() => runPlan(["--model", "no-such-model", "--stages", "2"]), /unknown model shape "no-such-model"/);
});

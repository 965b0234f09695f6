// Acceptance: graceful shutdown of a real `llmesh serve` child process. SIGTERM → it stops
// accepting, lets the running stream finish (or, past --shutdown-timeout, ends it cleanly with an
// error event and [DONE]), and exits 0.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { postJson, rawRequest, streamRequest } from "./helpers.ts";

const ENTRY = fileURLToPath(new URL("./serve-main.ts", import.meta.url));

interface Child {
  proc: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
  exit: Promise<number | null>;
}

async function startChild(args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [ENTRY, "serve", "--port", "0", "--log-format", "json", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = once(proc, "exit").then(([code]) => code as number | null);
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    let url = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const o = JSON.parse(line) as Record<string, unknown>;
        logs.push(o);
        if (typeof o.url === "string") url = o.url;
        if (typeof o.msg === "string" && o.msg.startsWith("ready:")) resolve(url);
      }
    });
    void exit.then((code) => reject(new Error(`server exited (${code}) before it was ready: ${stderr}`)));
  });
  return { proc, url, logs, exit };
}

test("SIGTERM: the in-flight stream completes, new requests are refused, exit 0", async () => {
  const c = await startChild(["--shutdown-timeout", "20"]);
  let signalled = false;
  const stream = streamRequest(c.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 200, temperature: 0, stream: true, ignore_eos: true }, {
    onEvent: (_d, i) => {
      if (i === 3 && !signalled) {
        signalled = true;
        c.proc.kill("SIGTERM");
      }
    },
  });
  const r = await stream;
  assert.ok(signalled);
  assert.equal(r.status, 200);
  assert.equal(r.events.at(-1), "[DONE]");
  const finish = r.events.at(-2) as { choices: Array<{ finish_reason: string }> };
  assert.equal(finish.choices[0].finish_reason, "length", "the stream ran to its end");
  assert.equal(await c.exit, 0);
  await assert.rejects(rawRequest(c.url, { path: "/health" }), "no longer listening");
  const lines = c.logs.filter((l) => l.msg === "request");
  assert.equal(lines.length, 1, "one log line for the one request");
  assert.equal(lines[0].completionTokens, 200);
  assert.ok(typeof lines[0].reqId === "string" && typeof lines[0].ttftMs === "number");
  assert.ok(c.logs.some((l) => l.msg === "shut down"));
});

test("SIGTERM past the deadline: running requests end cleanly (error event + [DONE], 503), exit 0", async () => {
  const c = await startChild(["--shutdown-timeout", "0.3", "--ctx", "2048"]);
  let signalled = false;
  const body = { prompt: "Once upon a time", max_tokens: 2000, temperature: 0, ignore_eos: true };
  const plain = postJson(c.url, "/v1/completions", body);
  const stream = streamRequest(c.url, "/v1/completions", { ...body, stream: true }, {
    onEvent: (_d, i) => {
      if (i === 3 && !signalled) {
        signalled = true;
        c.proc.kill("SIGTERM");
      }
    },
  });
  const t0 = performance.now();
  const r = await stream;
  assert.equal(r.events.at(-1), "[DONE]");
  const err = r.events.at(-2) as { error?: { code: string; type: string; message: string; param: null } };
  assert.equal(err.error?.code, "shutting_down");
  const p = await plain;
  assert.equal(p.status, 503);
  assert.equal((JSON.parse(p.body) as { error: { code: string } }).error.code, "shutting_down");
  assert.equal(await c.exit, 0);
  assert.ok(performance.now() - t0 < 5000, "exits soon after the deadline");
});

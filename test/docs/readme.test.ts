// README's API examples work as written: the curl commands and the openai-client script are taken
// from README.md itself and run against a real `llmesh serve` (on a free port instead of 9337, so a
// server a developer already runs does not interfere).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../gateway/helpers.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The `curl …` commands of the README's API section, continuation lines joined. */
function curlCommands(): string[] {
  const api = README.slice(README.indexOf("## The API"));
  const block = /```sh\n([\s\S]*?)```/.exec(api)![1];
  return block.replace(/\\\n\s*/g, " ").split("\n").filter((l) => l.startsWith("curl ")).map((l) => l.replace(/\s+#.*$/, ""));
}

test("README opens with the two commands a fresh machine needs", () => {
  const head = README.split("\n").slice(0, 6).join("\n");
  assert.match(head, /npm install && npm start/);
  assert.match(head, /npm install && npm test/);
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  assert.match(pkg.scripts.start, /serve/);
});

test("README's curl and openai-client examples work as written", async () => {
  const server = await startServer();
  const dir = mkdtempSync(join(ROOT, ".readme-test-"));
  try {
    const port = (s: string) => s.replaceAll("localhost:9337", `127.0.0.1:${server.port}`);
    const cmds = curlCommands();
    assert.ok(cmds.length >= 3, "the README shows curl examples");
    // Asynchronously: the server shares this process's event loop.
    const run = promisify(execFile);
    const outputs: string[] = [];
    for (const c of cmds) outputs.push((await run("bash", ["-c", port(c)], { encoding: "utf8", timeout: 60000 })).stdout);
    const completion = JSON.parse(outputs[0]);
    assert.match(completion.choices[0].text, /^, there was a little girl named Lily/);
    assert.match(outputs[1], /^data: \{.*"chat\.completion\.chunk"/);
    assert.match(outputs[1], /data: \[DONE\]/);
    assert.match(outputs[2], /llmesh_time_to_first_token_seconds|llmesh_queue_depth/);

    // The script runs from a folder inside the repository so that `import "openai"` resolves to the
    // devDependency, as it would after `npm install openai`.
    const script = port(/```js\n([\s\S]*?)```/.exec(README)![1]);
    const file = join(dir, "story.mjs");
    writeFileSync(file, script);
    const text = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [file], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d));
      child.stderr.on("data", (d: Buffer) => (err += d));
      child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`story.mjs exited ${code}: ${err}`))));
    });
    assert.ok(text.trim().length > 20, `the script printed a story: ${JSON.stringify(text)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server.close();
  }
});

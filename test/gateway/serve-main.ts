// `llmesh serve` as its own entry point, for tests that run the server as a child process.
import { Command } from "commander";
import { registerServe } from "../../src/cli/commands/serve.ts";

const program = new Command().name("llmesh");
registerServe(program);
program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`llmesh: ${(e as Error).message}\n`);
  process.exitCode = 1;
});

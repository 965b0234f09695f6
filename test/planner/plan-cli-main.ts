// A stand-alone `llmesh`-like entry with only the plan command, for tests that run it as a child process.
import { Command } from "commander";
import { registerPlan } from "../../src/cli/commands/plan.ts";

const program = new Command().name("llmesh");
registerPlan(program);
program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`llmesh: ${(e as Error).message}\n`);
  process.exitCode = 1;
});

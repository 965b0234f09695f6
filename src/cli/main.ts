// `llmesh` command line: one file per subcommand under commands/, wired here with commander.
import { Command } from "commander";
import { registerBench } from "./commands/bench.ts";
import { registerInspect } from "./commands/inspect.ts";
import { registerJoin } from "./commands/join.ts";
import { registerStatus } from "./commands/status.ts";
import { registerPlan } from "./commands/plan.ts";
import { registerRun } from "./commands/run.ts";
import { registerServe } from "./commands/serve.ts";
import { registerSynth } from "./commands/synth.ts";
import { registerTokenize } from "./commands/tokenize.ts";

const program = new Command();
program
  .name("llmesh")
  .description("Pool ordinary machines into one LLM inference service.")
  .showHelpAfterError()
  .configureOutput({ outputError: (s, write) => write(s) });

registerBench(program);
registerInspect(program);
registerPlan(program);
registerRun(program);
registerServe(program);
registerJoin(program);
registerStatus(program);
registerSynth(program);
registerTokenize(program);

/** The message, or for errors without one (some network errors), their name, causes and inner errors. */
function describeError(err: Error): string {
  const parts = [err.message || err.name || String(err)];
  const inner = (err as { errors?: unknown[] }).errors;
  if (Array.isArray(inner)) for (const x of inner.slice(0, 3)) parts.push((x as Error)?.message ?? String(x));
  if (err.cause instanceof Error) parts.push(`cause: ${err.cause.message || err.cause.name}`);
  return parts.filter(Boolean).join("; ");
}

program.parseAsync(process.argv).catch((e: unknown) => {
  // Expected failures (bad file, bad flag) print one clear line; LLMESH_DEBUG=1 shows the stack.
  const err = e as Error;
  process.stderr.write(`llmesh: ${process.env.LLMESH_DEBUG ? err.stack : describeError(err)}\n`);
  process.exitCode = 1;
});

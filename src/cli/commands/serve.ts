// `llmesh serve`: an OpenAI-compatible HTTP server (chat/completions, completions, models, health,
// ready, metrics) over a local GGUF model, with continuous batching. See src/gateway/.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, Option, type Command } from "commander";
import { LocalBackend } from "../../gateway/local-backend.ts";
import type { ModelBackend } from "../../gateway/backend.ts";
import { unavailable } from "../../gateway/errors.ts";
import { createLogger, type LogFormat } from "../../gateway/logging.ts";
import { createGateway, type Gateway } from "../../gateway/server.ts";

/** The bundled model, relative to the package root. */
export const DEFAULT_MODEL = fileURLToPath(new URL("../../../models/stories260K.gguf", import.meta.url));

export interface ServeOptions {
  model: string;
  modelId?: string;
  host: string;
  port: number;
  maxQueue: number;
  maxBatch: number;
  ctx?: number;
  prefillChunk: number;
  kvBudget?: number;
  requestTimeout: number;
  shutdownTimeout: number;
  bodyLimit: number;
  logFormat?: LogFormat;
  logLevel: string;
  apiKey?: string;
  engine: "fast" | "reference";
}

function int(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

function num(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`expected a number >= ${min}`);
    return n;
  };
}

/**
 * Starts the server; resolves once it listens and the model is loaded, with the gateway and its
 * URL. SIGINT/SIGTERM shut it down gracefully (exit 0).
 */
export async function serve(opts: ServeOptions): Promise<{ gateway: Gateway; url: string }> {
  const format: LogFormat = opts.logFormat ?? (process.stdout.isTTY ? "pretty" : "json");
  const logger = createLogger({ format, level: opts.logLevel });
  if (!existsSync(opts.model)) throw new Error(`model file not found: ${opts.model}`);

  let resolveBackend!: (b: ModelBackend) => void;
  let rejectBackend!: (e: unknown) => void;
  const backend = new Promise<ModelBackend>((res, rej) => {
    resolveBackend = res;
    rejectBackend = rej;
  });
  const gateway = await createGateway({
    backend,
    maxBatch: opts.maxBatch,
    maxQueue: opts.maxQueue,
    prefillChunk: opts.prefillChunk,
    ...(opts.kvBudget !== undefined ? { kvCapacityTokens: opts.kvBudget } : {}),
    requestTimeoutMs: opts.requestTimeout * 1000,
    bodyLimit: opts.bodyLimit,
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    logger,
  });

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal: sig }, "signal received: shutting down (again to cancel running requests now)");
      gateway
        .shutdown({ graceMs: opts.shutdownTimeout * 1000 })
        .then(() => process.exit(0))
        .catch((err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        });
    } else {
      logger.warn({ signal: sig }, "second signal: cancelling running requests");
      gateway.scheduler?.abortAll(unavailable("The server is shutting down.", "shutting_down"));
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const addr = await gateway.listen({ host: opts.host, port: opts.port });
  logger.info({ url: addr.url, model: opts.model }, `listening on ${addr.url}; loading the model`);
  // Load after listening so /health answers (and /ready says "loading") meanwhile.
  setImmediate(() => {
    try {
      resolveBackend(LocalBackend.load({ path: opts.model, enginePath: opts.engine, ...(opts.ctx !== undefined ? { maxContext: opts.ctx } : {}), ...(opts.modelId ? { id: opts.modelId } : {}) }));
    } catch (err) {
      rejectBackend(err);
    }
  });
  await gateway.loaded;
  const r = gateway.readiness();
  if (!r.ready && r.status === "failed") {
    await gateway.shutdown({ graceMs: 0 });
    throw new Error(`cannot load ${opts.model}: ${r.reason}`);
  }
  const s = gateway.scheduler?.stats();
  logger.info(
    { model: gateway.backend?.info.id, contextLength: gateway.backend?.info.contextLength, maxBatch: opts.maxBatch, maxQueue: opts.maxQueue, kvBudgetTokens: s?.kvCapacityTokens },
    `ready: ${addr.url}/v1 (model "${gateway.backend?.info.id}")`,
  );
  return { gateway, url: addr.url };
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("serve a GGUF model over an OpenAI-compatible HTTP API (continuous batching)")
    .option("-m, --model <file>", "GGUF model file", DEFAULT_MODEL)
    .option("--model-id <name>", "model id clients use in `model` (default: the file name without .gguf)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("-p, --port <port>", "port to listen on (0 = any free port)", int(0), 9337)
    .option("--max-queue <n>", "requests that may wait for a slot; more get 429", int(1), 64)
    .option("--max-batch <n>", "sequences generated together at most", int(1), 16)
    .option("--ctx <n>", "context length per sequence (default: the model's)", int(1))
    .option("--prefill-chunk <n>", "prompt tokens prefilled per step (long prompts are split)", int(1), 128)
    .option("--kv-budget <tokens>", "KV-cache budget in positions over all sequences (default: max-batch × ctx, at most 40% of RAM)", int(1))
    .option("--request-timeout <s>", "per-request deadline in seconds (0 = none)", num(0), 600)
    .option("--shutdown-timeout <s>", "on SIGINT/SIGTERM, how long running requests may finish", num(0), 10)
    .option("--body-limit <bytes>", "largest request body", int(1), 8 * 1024 * 1024)
    .addOption(new Option("--log-format <format>", "log format (default: pretty on a terminal, else json)").choices(["pretty", "json"]))
    .option("--log-level <level>", "pino log level", "info")
    .option("--api-key <key>", "require `Authorization: Bearer <key>` on /v1/* (default: $LLMESH_API_KEY, else none)")
    .addOption(new Option("--engine <path>", "forward implementation").choices(["fast", "reference"]).default("fast"))
    .action(async (opts: ServeOptions) => {
      await serve({ ...opts, ...(opts.apiKey === undefined && process.env.LLMESH_API_KEY ? { apiKey: process.env.LLMESH_API_KEY } : {}) });
    });
}

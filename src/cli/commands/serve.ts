// `llmesh serve`: an OpenAI-compatible HTTP server (chat/completions, completions, models, health,
// ready, metrics) over a local GGUF model, with continuous batching. See src/gateway/.
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, Option, type Command } from "commander";
import { LocalBackend } from "../../backend/local-backend.ts";
import type { ModelBackend } from "../../backend/backend.ts";
import { unavailable } from "../../gateway/errors.ts";
import { createLogger, type LogFormat } from "../../gateway/logging.ts";
import { createGateway, type Gateway } from "../../gateway/server.ts";
import type { FastifyInstance } from "fastify";
import { loadProgress } from "../load-progress.ts";
import { parseCodec } from "../../mesh/codecs.ts";
import { MeshHost } from "../../mesh/host.ts";
import { DEFAULT_LIVENESS } from "../../mesh/liveness.ts";
import { MeshMetrics } from "../../mesh/mesh-metrics.ts";
import { GatewayMetrics } from "../../gateway/metrics.ts";
import { defaultDataDir, loadOrCreateKey, loadOrCreateSecret, modelFingerprint, writeInviteFile } from "../../mesh/identity.ts";
import { Libp2pTransport } from "../../mesh/libp2p-transport.ts";

async function startMesh(opts: ServeOptions, log: (m: string) => void, metrics: MeshMetrics): Promise<MeshHost> {
  const dataDir = opts.dataDir ?? defaultDataDir();
  const transport = await Libp2pTransport.create({
    privateKey: await loadOrCreateKey(dataDir),
    listen: opts.listen?.length ? opts.listen : ["/ip4/0.0.0.0/tcp/0"],
    ...(opts.announce?.length ? { announce: opts.announce } : {}),
    mdns: opts.mdns ?? false,
  });
  const host = await MeshHost.start({
    transport,
    secret: loadOrCreateSecret(dataDir),
    modelPath: opts.model,
    fingerprint: modelFingerprint(opts.model),
    peers: opts.peers ?? 0,
    ...(opts.codec ? { codec: parseCodec(opts.codec) } : {}),
    ...(opts.split ? { split: opts.split.split(",").map(Number) } : {}),
    batch: opts.maxBatch,
    ...(opts.planObjective ? { objective: opts.planObjective } : {}),
    ...(opts.autoStages ? { autoStages: true } : {}),
    ...(opts.probeInterval !== undefined ? { probeIntervalMs: opts.probeInterval * 1000 } : {}),
    ...(opts.ctx !== undefined ? { maxContext: opts.ctx } : {}),
    ...(opts.modelId ? { modelId: opts.modelId } : {}),
    enginePath: opts.engine,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    ...(opts.memory !== undefined ? { memoryBytes: opts.memory } : {}),
    ...(opts.linkBandwidth !== undefined ? { linkBytesPerSec: opts.linkBandwidth / 8 } : {}),
    ...(opts.recoveryTimeout !== undefined ? { recoveryTimeoutMs: opts.recoveryTimeout * 1000 } : {}),
    liveness: { beatMs: opts.heartbeat ?? DEFAULT_LIVENESS.beatMs, missBeats: opts.missBeats ?? DEFAULT_LIVENESS.missBeats },
    log,
    onEvent: (e) => {
      metrics.onEvent(e);
      if (e.type === "replay") log(`mesh event: replay of ${e.reason} (${e.tokens} tokens) on epoch ${e.epoch}`);
      else log(`mesh event: ${e.type}${e.peer ? ` ${e.peer}` : ""}${e.ms !== undefined ? ` after ${e.ms.toFixed(0)} ms` : ""}${e.reason ? `: ${e.reason}` : ""}`);
    },
  });
  metrics.setSource(() => host.gauges());
  const file = writeInviteFile(dataDir, host.invite);
  // On a line of its own, for people and scripts alike.
  process.stdout.write(`invite: ${host.invite}\n`);
  log(`mesh: peer ${transport.peerId}; invite written to ${file}; waiting for ${opts.peers ?? 0} worker(s): llmesh join <invite> --model <file>`);
  return host;
}

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
  /** Start a mesh: this process is stage 0; workers join with the printed invite. */
  mesh?: boolean;
  /** Workers to wait for before placing layers (mesh). */
  peers?: number;
  dataDir?: string;
  /** libp2p listen multiaddrs (mesh). */
  listen?: string[];
  announce?: string[];
  codec?: string;
  /** Layers per stage, host first (mesh), e.g. "2,2,1". */
  split?: string;
  mdns?: boolean;
  /** Compute threads of the engine (default: the number of cores). */
  threads?: number;
  /** Mesh placement objective. */
  planObjective?: "interactive" | "batch";
  /** Micro-batches in flight at once (mesh; default the number of stages; 1 = one step at a time). */
  pipelineDepth?: number;
  /** Memory this peer offers for weights and KV (bytes). */
  memory?: number;
  /** Mesh: seconds between re-measurements of every link (0 = never). */
  probeInterval?: number;
  /** Mesh: the planner chooses the number of stages. */
  autoStages?: boolean;
  /** Mesh: link bandwidth for the planner (bits/s), instead of the probe's measurement. */
  linkBandwidth?: number;
  /** Mesh: seconds steps wait for a new placement after a stage is lost, then 503. */
  recoveryTimeout?: number;
  /** Mesh: heartbeat interval (ms). */
  heartbeat?: number;
  /** Mesh: beats a peer may miss before it is declared dead. */
  missBeats?: number;
}

/** "100mbit", "1gbit", "20Mbit/s", "5e7" → bits per second. */
export function parseRate(v: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmg]?)(bit|bps|bit\/s)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`expected a rate like 100mbit or 1gbit, got ${v}`);
  return Number(m[1]) * { "": 1, k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
}

/** "16G", "512M", "1.5GiB", "1000000" → bytes. */
export function parseBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`expected a size like 512M or 16G, got ${v}`);
  const mult = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Math.round(Number(m[1]) * mult);
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

  const metrics = new GatewayMetrics();
  const mesh = opts.mesh ? await startMesh(opts, (m) => logger.info(m), new MeshMetrics(metrics.registry)) : undefined;
  let resolveBackend!: (b: ModelBackend) => void;
  let rejectBackend!: (e: unknown) => void;
  const backend = new Promise<ModelBackend>((res, rej) => {
    resolveBackend = res;
    rejectBackend = rej;
  });
  const gateway = await createGateway({
    backend,
    metrics,
    maxBatch: opts.maxBatch,
    maxQueue: opts.maxQueue,
    prefillChunk: opts.prefillChunk,
    ...(opts.kvBudget !== undefined ? { kvCapacityTokens: opts.kvBudget } : {}),
    requestTimeoutMs: opts.requestTimeout * 1000,
    bodyLimit: opts.bodyLimit,
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    ...(opts.pipelineDepth !== undefined ? { pipelineDepth: opts.pipelineDepth } : {}),
    logger,
    ...(mesh ? { routes: (app: FastifyInstance) => app.get("/v1/mesh", async () => mesh.status()) } : {}),
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
  if (mesh) mesh.backend.then(resolveBackend, rejectBackend);
  else {
    const bar = loadProgress(`loading ${basename(opts.model)}`);
    LocalBackend.loadAsync({ path: opts.model, enginePath: opts.engine, ...(opts.threads !== undefined ? { threads: opts.threads } : {}), ...(opts.ctx !== undefined ? { maxContext: opts.ctx } : {}), ...(opts.modelId ? { id: opts.modelId } : {}) }, bar.update)
      .finally(() => bar.stop())
      .then(resolveBackend, rejectBackend);
  }
  await gateway.loaded;
  const r = gateway.readiness();
  if (!r.ready && r.status === "failed") {
    await gateway.shutdown({ graceMs: 0 });
    await mesh?.close();
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
    .option("--mesh", "start a mesh: print an invite workers join with (`llmesh join`)")
    .option("--peers <n>", "mesh: workers to wait for before placing layers", int(0), 0)
    .option("--data-dir <dir>", "mesh: peer key, mesh secret and invite (default ~/.llmesh or $LLMESH_DATA_DIR)")
    .option("--listen <multiaddr...>", "mesh: libp2p listen addresses (default /ip4/0.0.0.0/tcp/0)")
    .option("--announce <multiaddr...>", "mesh: addresses to advertise instead (e.g. behind a proxy)")
    .addOption(new Option("--codec <codec>", "mesh: activation codec between stages").choices(["f32", "f16", "bf16", "int8"]).default("f32"))
    .option("--split <layers>", "mesh: layers per stage, host first (default: placed by the planner)")
    .option("--probe-interval <s>", "mesh: re-measure every link (RTT, bandwidth) this often, and re-plan if it pays (0 = never)", num(0), 300)
    .option("--auto-stages", "mesh: let the planner choose how many peers hold layers (a peer that cannot help waits as a spare); default: every peer is a stage")
    .addOption(new Option("--plan-objective <objective>", "mesh: what the planner optimises: one stream's latency, or throughput with --max-batch streams").choices(["interactive", "batch"]).default("interactive"))
    .option("--mdns", "mesh: LAN discovery (mDNS)")
    .option("--threads <n>", "compute threads of the engine (default: the number of cores)", int(1))
    .option("--pipeline-depth <n>", "mesh: micro-batches in flight at once (default: the number of stages; 1 = one step at a time)", int(1))
    .option("--memory <bytes>", "mesh: memory this peer offers the planner for weights and KV, e.g. 8G (default: the free memory)", parseBytes)
    .option("--link-bandwidth <rate>", "mesh: link bandwidth for the planner, e.g. 100mbit or 1gbit (default: measured by a probe on every link)", parseRate)
    .option("--recovery-timeout <s>", "mesh: after a stage is lost, how long requests wait for a new placement before failing with 503", num(0), 30)
    .option("--heartbeat <ms>", "mesh: heartbeat interval for failure detection", int(10), DEFAULT_LIVENESS.beatMs)
    .option("--miss-beats <n>", "mesh: beats a peer may miss (plus its expected compute time) before it is declared dead", int(1), DEFAULT_LIVENESS.missBeats)
    .addOption(new Option("--engine <path>", "forward implementation").choices(["fast", "reference"]).default("fast"))
    .action(async (opts: ServeOptions) => {
      await serve({ ...opts, ...(opts.apiKey === undefined && process.env.LLMESH_API_KEY ? { apiKey: process.env.LLMESH_API_KEY } : {}) });
    });
}

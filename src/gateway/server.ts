// The HTTP core: builds the fastify app around a ModelBackend. Each concern lives in its own file
// (request-id, auth, errors, logging, metrics, validation, SSE, routes); this file wires them up,
// loads the model in the background (/ready says when it is there), and shuts down gracefully:
// stop accepting, let running generations finish until a deadline, then cancel the rest cleanly.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import { registerAuth } from "./auth.ts";
import type { ModelBackend } from "../backend/backend.ts";
import { registerCompletionRoutes, type LoadedModel } from "./completions.ts";
import { ApiError, registerErrorHandlers, unavailable } from "./errors.ts";
import { registerHealthRoutes, type Readiness } from "./health.ts";
import { registerRequestLogging } from "./logging.ts";
import { GatewayMetrics } from "./metrics.ts";
import { registerModelRoutes } from "./models.ts";
import { genReqId, registerRequestId } from "./request-id.ts";
import { Scheduler } from "./scheduler.ts";

export interface GatewayOptions {
  /** The model: a backend, a promise of one, or a function that loads one (called once, in the background). */
  backend: ModelBackend | Promise<ModelBackend> | (() => ModelBackend | Promise<ModelBackend>);
  /** Sequences generated together at most (default 16). */
  maxBatch?: number;
  /** Requests waiting for a slot at most; more get 429 (default 64). */
  maxQueue?: number;
  /** Prompt tokens prefilled per step (default 128). */
  prefillChunk?: number;
  /** KV budget in positions (default maxBatch × context, at most 40% of RAM). */
  kvCapacityTokens?: number;
  /** Whole-request deadline in ms (default 10 min; 0 = none). */
  requestTimeoutMs?: number;
  /** Largest request body in bytes (default 8 MiB). */
  bodyLimit?: number;
  /** When set, /v1/* requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Default: silent. */
  logger?: Logger;
  metrics?: GatewayMetrics;
  retryAfterSeconds?: number;
  /** Micro-batches stepping at once (default: the backend's pipelineDepth, 1 for a local model). */
  pipelineDepth?: number;
  /** Extra routes (e.g. GET /v1/mesh), registered with the others. */
  routes?: (app: FastifyInstance) => void;
}

export interface ListenOptions {
  host?: string;
  port?: number;
}

export class Gateway {
  readonly app: FastifyInstance;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Settles when the model is loaded or failed to load (never rejects). */
  readonly loaded: Promise<void>;
  private loadedModel: LoadedModel | undefined;
  private loadFailure: string | undefined;
  private shuttingDown = false;
  private shutdownPromise: Promise<void> | undefined;

  constructor(opts: GatewayOptions) {
    const logger = opts.logger ?? pino({ level: "silent" });
    const metrics = opts.metrics ?? new GatewayMetrics();
    this.logger = logger;
    this.metrics = metrics;
    const app = Fastify({
      loggerInstance: logger as FastifyBaseLogger,
      // Our own one line per request (logging.ts) replaces fastify's two.
      logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "reqId" }),
      genReqId,
      bodyLimit: opts.bodyLimit ?? 8 * 1024 * 1024,
      return503OnClosing: true,
      forceCloseConnections: "idle",
    }) as unknown as FastifyInstance;
    this.app = app;
    // Any content type is read as JSON (curl -d sends form-encoded by default).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => {
      const text = body as string;
      if (text.trim() === "") return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch {
        const err = new Error("invalid JSON") as Error & { code: string; statusCode: number };
        err.code = "FST_ERR_CTP_INVALID_JSON_BODY";
        err.statusCode = 400;
        done(err, undefined);
      }
    });
    registerErrorHandlers(app);
    registerRequestId(app);
    registerRequestLogging(app, this.metrics);
    registerAuth(app, opts.apiKey);
    registerHealthRoutes(app, () => this.readiness());
    app.get("/metrics", async (_request, reply) => {
      const m = await this.metrics.render();
      return reply.type(m.contentType).send(m.body);
    });
    registerModelRoutes(app, () => this.loadedModel?.backend);
    opts.routes?.(app);
    registerCompletionRoutes(app, {
      model: () => (this.shuttingDown ? undefined : this.loadedModel),
      loadError: () => (this.shuttingDown ? "the server is shutting down" : this.loadFailure),
      requestTimeoutMs: opts.requestTimeoutMs ?? 10 * 60 * 1000,
    });

    this.loaded = (async () => {
      try {
        const b = typeof opts.backend === "function" ? await opts.backend() : await opts.backend;
        const scheduler = new Scheduler(b, {
          maxBatch: opts.maxBatch ?? 16,
          maxQueue: opts.maxQueue ?? 64,
          prefillChunk: opts.prefillChunk ?? 128,
          ...(opts.kvCapacityTokens !== undefined ? { kvCapacityTokens: opts.kvCapacityTokens } : {}),
          retryAfterSeconds: opts.retryAfterSeconds ?? 1,
          ...(opts.pipelineDepth !== undefined ? { pipelineDepth: opts.pipelineDepth } : {}),
          observer: metrics,
        });
        this.loadedModel = { backend: b, generator: scheduler };
        metrics.setStatsSource(() => scheduler.stats());
        logger.info({ model: b.info.id, contextLength: b.info.contextLength, kvBytesPerToken: b.info.kvBytesPerToken, chatTemplate: b.info.chatTemplate }, "model ready");
      } catch (err) {
        this.loadFailure = (err as Error).message;
        logger.error({ err }, "model failed to load");
      }
    })();
  }

  get scheduler(): Scheduler | undefined {
    return this.loadedModel?.generator as Scheduler | undefined;
  }

  get backend(): ModelBackend | undefined {
    return this.loadedModel?.backend;
  }

  readiness(): Readiness {
    if (this.shuttingDown) return { ready: false, status: "shutting_down" };
    if (this.loadFailure !== undefined) return { ready: false, status: "failed", reason: this.loadFailure };
    if (!this.loadedModel) return { ready: false, status: "loading" };
    return { ready: true, status: "ready" };
  }

  /** Starts listening; resolves with the bound address (port 0 → an ephemeral port). */
  async listen(opts: ListenOptions = {}): Promise<{ host: string; port: number; url: string }> {
    await this.app.listen({ host: opts.host ?? "127.0.0.1", port: opts.port ?? 9337 });
    const addr = this.app.server.address();
    if (addr === null || typeof addr === "string") throw new Error("server has no TCP address");
    const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    return { host: addr.address, port: addr.port, url: `http://${host}:${addr.port}` };
  }

  /**
   * Graceful shutdown: refuse new work (503, /ready false), stop accepting connections, let running
   * generations finish for up to `graceMs`, then end the rest (streams get an error event and
   * [DONE], others a 503) and close. Idempotent.
   */
  shutdown(opts: { graceMs?: number } = {}): Promise<void> {
    this.shutdownPromise ??= this.doShutdown(opts.graceMs ?? 10_000);
    return this.shutdownPromise;
  }

  private async doShutdown(graceMs: number): Promise<void> {
    this.shuttingDown = true;
    const scheduler = this.scheduler;
    scheduler?.close();
    const stats = scheduler?.stats();
    this.logger.info({ graceMs, activeRequests: stats?.activeRequests ?? 0, queued: stats?.queued ?? 0 }, "shutting down");
    const deadline = setTimeout(() => {
      if (!scheduler) return;
      const s = scheduler.stats();
      if (s.activeRequests + s.queued > 0) this.logger.warn({ activeRequests: s.activeRequests, queued: s.queued }, "shutdown deadline reached: cancelling the remaining requests");
      scheduler.abortAll(unavailable("The server is shutting down.", "shutting_down"));
      // Responses end right after; anything still open a moment later is cut.
      setTimeout(() => this.app.server.closeAllConnections?.(), 1000).unref();
    }, graceMs);
    deadline.unref();
    try {
      await this.app.close();
    } finally {
      clearTimeout(deadline);
      try {
        this.loadedModel?.backend.close();
      } catch (err) {
        this.logger.warn({ err }, "backend close failed");
      }
      this.logger.info("shut down");
    }
  }
}

export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const g = new Gateway(opts);
  await g.app.ready();
  return g;
}

export { ApiError };

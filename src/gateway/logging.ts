// Logs: pino, one line per request when its response closes (finished or aborted by the client),
// with the request id, status, timings and — for generation requests — token counts, queue time,
// time to first token and finish reasons. `--log-format json` writes pino's JSON lines; `pretty`
// formats them for a terminal (pino-pretty, in-process). Probe endpoints log at debug level.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";
import type { GatewayMetrics } from "./metrics.ts";

export type LogFormat = "pretty" | "json";

export function createLogger(opts: { format?: LogFormat; level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? "info";
  const base = { level, base: { pid: process.pid } };
  if (opts.format === "pretty") {
    const dest = opts.destination ?? process.stdout;
    const colorize = (dest as { isTTY?: boolean }).isTTY === true;
    return pino(base, pretty({ destination: dest, colorize, sync: true, singleLine: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }));
  }
  return opts.destination ? pino(base, opts.destination) : pino(base);
}

/** What a generation route adds to its request's log line. */
export interface GenerationLog {
  model: string;
  stream: boolean;
  n: number;
  promptTokens: number;
  completionTokens: number;
  queueMs: number;
  ttftMs: number;
  finishReasons: string[];
  user: string;
  error: string;
}

const notes = new WeakMap<FastifyRequest, Partial<GenerationLog>>();

export function noteGeneration(request: FastifyRequest, info: Partial<GenerationLog>): void {
  const cur = notes.get(request);
  if (cur) Object.assign(cur, info);
  else notes.set(request, { ...info });
}

const PROBES = new Set(["/health", "/ready", "/metrics"]);

export function registerRequestLogging(app: FastifyInstance, metrics?: GatewayMetrics): void {
  app.addHook("onRequest", async (request, reply) => {
    const start = performance.now();
    reply.raw.once("close", () => {
      const ms = Math.round((performance.now() - start) * 100) / 100;
      const aborted = !reply.raw.writableFinished;
      const route = request.routeOptions.url ?? "unknown";
      const status = reply.statusCode;
      metrics?.requests.inc({ endpoint: route, status: String(status) });
      const line = {
        method: request.method,
        url: request.url.length > 200 ? request.url.slice(0, 200) + "…" : request.url,
        status,
        ms,
        ...(aborted ? { aborted: true } : {}),
        ...notes.get(request),
      };
      if (PROBES.has(route)) request.log.debug(line, "request");
      else request.log.info(line, "request");
    });
  });
}

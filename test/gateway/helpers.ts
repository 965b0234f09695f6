// Shared helpers for the gateway acceptance tests: a real server (LocalBackend on the bundled
// stories260K model) on 127.0.0.1 with an ephemeral port, and raw HTTP/SSE clients.
import http from "node:http";
import { fileURLToPath } from "node:url";
import { LocalBackend } from "../../src/backend/local-backend.ts";
import { createGateway, type Gateway, type GatewayOptions } from "../../src/gateway/server.ts";

export const MODEL = fileURLToPath(new URL("../../models/stories260K.gguf", import.meta.url));

export interface TestServer {
  gateway: Gateway;
  backend: LocalBackend;
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startServer(opts: Partial<GatewayOptions> & { ctx?: number } = {}): Promise<TestServer> {
  const backend = LocalBackend.load({ path: MODEL, ...(opts.ctx !== undefined ? { maxContext: opts.ctx } : {}) });
  const gateway = await createGateway({ maxBatch: 16, maxQueue: 64, ...opts, backend });
  await gateway.loaded;
  const addr = await gateway.listen({ host: "127.0.0.1", port: 0 });
  return { gateway, backend, url: addr.url, port: addr.port, close: () => gateway.shutdown({ graceMs: 0 }) };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with a raw body (string or bytes), on a fresh connection. */
export function rawRequest(url: string, opts: { method?: string; path: string; body?: string | Buffer; headers?: Record<string, string> }): Promise<RawResponse> {
  const u = new URL(opts.path, url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? (opts.body !== undefined ? "POST" : "GET"), headers: { connection: "close", ...opts.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

export function postJson(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return rawRequest(url, { path, body: JSON.stringify(body), headers: { "content-type": "application/json", ...headers } });
}

/** Parses an SSE body into its data payloads (JSON objects, or the string "[DONE]"). */
export function parseSse(body: string): unknown[] {
  const out: unknown[] = [];
  for (const block of body.split("\n\n")) {
    const data = block
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => l.slice(6))
      .join("\n");
    if (data === "") continue;
    out.push(data === "[DONE]" ? "[DONE]" : JSON.parse(data));
  }
  return out;
}

/** Streams a request and records each SSE event with its arrival time (ms since the request). */
export interface StreamOptions {
  /** Called per event; return false to stop reading and destroy the connection. */
  onEvent?: (data: unknown, index: number) => boolean | void;
  /** Pause reading after the first event for this long (a slow consumer). */
  pauseMs?: number;
}

export interface StreamResult {
  status: number;
  events: unknown[];
  times: number[];
  text: string[];
  aborted: boolean;
  headers: http.IncomingHttpHeaders;
}

export function streamRequest(url: string, path: string, body: unknown, opts: StreamOptions = {}): Promise<StreamResult> {
  const u = new URL(path, url);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const result: StreamResult = { status: 0, events: [], times: [], text: [], aborted: false, headers: {} };
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: { "content-type": "application/json", connection: "close" }, agent: false },
      (res) => {
        result.status = res.statusCode ?? 0;
        result.headers = res.headers;
        let buf = "";
        let paused = false;
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          buf += c;
          let i: number;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!block.startsWith("data: ")) continue;
            const raw = block.slice(6);
            const data: unknown = raw === "[DONE]" ? "[DONE]" : JSON.parse(raw);
            result.events.push(data);
            result.times.push(performance.now() - t0);
            const ch = (data as { choices?: Array<{ index: number; delta?: { content?: string }; text?: string }> }).choices;
            for (const c of ch ?? []) result.text[c.index] = (result.text[c.index] ?? "") + (c.delta?.content ?? c.text ?? "");
            if (opts.onEvent?.(data, result.events.length - 1) === false) {
              result.aborted = true;
              req.destroy();
              resolve(result);
              return;
            }
            if (opts.pauseMs && !paused) {
              paused = true;
              res.pause();
              setTimeout(() => res.resume(), opts.pauseMs);
            }
          }
        });
        res.on("end", () => resolve(result));
        res.on("error", (e) => (result.aborted ? resolve(result) : reject(e)));
      },
    );
    req.on("error", (e) => (result.aborted ? resolve(result) : reject(e)));
    req.end(JSON.stringify(body));
  });
}

/** Reads one metric's value from the Prometheus text at /metrics. */
export async function metric(url: string, name: string): Promise<number> {
  const r = await rawRequest(url, { path: "/metrics" });
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(r.body);
  if (!m) throw new Error(`metric ${name} not found`);
  return Number(m[1]);
}

/** Asserts the OpenAI error shape; returns the error object. */
export function errorOf(r: RawResponse): { message: string; type: string; param: string | null; code: string | null } {
  const body = JSON.parse(r.body) as { error?: { message: unknown; type: unknown; param: unknown; code: unknown } };
  const e = body.error;
  if (!e || typeof e.message !== "string" || typeof e.type !== "string" || !(e.param === null || typeof e.param === "string") || !(e.code === null || typeof e.code === "string")) {
    throw new Error(`not an OpenAI error body: ${r.body}`);
  }
  if (Object.keys(body).length !== 1 || Object.keys(e).sort().join() !== "code,message,param,type") throw new Error(`extra fields in error body: ${r.body}`);
  return e as { message: string; type: string; param: string | null; code: string | null };
}

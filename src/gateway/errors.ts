// Errors in OpenAI's shape: every failure the gateway reports is
//   HTTP <status>  {"error": {"message": "...", "type": "...", "param": "..."|null, "code": "..."|null}}
// ApiError carries one; errorHandler turns anything thrown in a route (including fastify's own body
// parser errors: malformed JSON, body too large) into one; notFoundHandler answers unknown URLs.
// A backend's BackendError (src/backend/backend-error.ts) becomes its ApiError here, in knownApiError
// (invalid_request → 400, unavailable → 503), for the routes and the scheduler alike.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { BackendError } from "../backend/backend-error.ts";
import type { ErrorBody } from "./openai-types.ts";

export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers (e.g. Retry-After on 429). */
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, opts: { type?: string; param?: string | null; code?: string | null; headers?: Record<string, string> } = {}) {
    super(message);
    this.status = status;
    this.type = opts.type ?? defaultType(status);
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }

  toJSON(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

function defaultType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return status === 503 ? "service_unavailable_error" : "server_error";
  return "invalid_request_error";
}

// ---- constructors for the common cases ----

export function invalidRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, { param, code });
}

export function modelNotFound(model: string): ApiError {
  return new ApiError(404, `The model \`${model}\` does not exist or you do not have access to it.`, { param: "model", code: "model_not_found" });
}

export function queueFull(retryAfterSeconds: number): ApiError {
  return new ApiError(429, "The server is at capacity: too many requests are waiting. Please retry after a short wait.", {
    code: "queue_full",
    headers: { "retry-after": String(retryAfterSeconds) },
  });
}

export function serverError(message = "The server had an error while processing your request."): ApiError {
  return new ApiError(500, message, { code: "internal_error" });
}

export function unavailable(message: string, code: string): ApiError {
  return new ApiError(503, message, { code });
}

/**
 * The ApiError an error stands for, when it is one the API reports as it is: an ApiError itself, or a
 * backend's BackendError (invalid_request → 400, unavailable → 503; message, param and code kept).
 * undefined for anything else (an internal failure).
 */
export function knownApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof BackendError) return new ApiError(err.kind === "unavailable" ? 503 : 400, err.message, { param: err.param, code: err.code });
  return undefined;
}

/** Converts whatever was thrown into an ApiError (unknown errors become a 500 that hides internals). */
export function toApiError(err: unknown): ApiError {
  const known = knownApiError(err);
  if (known) return known;
  const fe = err as Partial<FastifyError> & { type?: string };
  switch (fe?.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON":
      return invalidRequest(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The API expects a JSON payload, but what was sent was not valid JSON.)",
        null,
        "invalid_json",
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return invalidRequest("The request body is empty; a JSON object was expected.", null, "invalid_json");
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError(413, `The request body is too large (the limit is ${fe.message?.match(/\d+/)?.[0] ?? "set by the server"} bytes).`, { code: "request_too_large" });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError(415, "Unsupported Content-Type: send the body as application/json.", { code: "unsupported_media_type" });
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return invalidRequest("The Content-Length header does not match the body.", null, "invalid_content_length");
  }
  if (err instanceof SyntaxError) return invalidRequest(`We could not parse the JSON body of your request: ${err.message}`, null, "invalid_json");
  const status = typeof fe?.statusCode === "number" ? fe.statusCode : 500;
  if (status >= 400 && status < 500) return new ApiError(status, fe?.message ?? "Bad request.");
  return serverError();
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.code(err.status).type("application/json; charset=utf-8").send(err.toJSON());
}

/** Installs the error and not-found handlers on the app. */
export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const api = toApiError(err);
    if (api.status >= 500) request.log.error({ err }, "request failed");
    if (reply.sent || reply.raw.headersSent) {
      // A stream already started; nothing sensible can be written in its place.
      reply.raw.destroy();
      return;
    }
    return sendError(reply, api);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    return sendError(reply, new ApiError(404, `Invalid URL (${request.method} ${request.url})`, { code: "unknown_url" }));
  });
}

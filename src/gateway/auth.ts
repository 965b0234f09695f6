// Optional API key: when the server has one, /v1/* requires `Authorization: Bearer <key>` and
// answers 401 in OpenAI's shape otherwise. /health, /ready and /metrics stay open.
import { timingSafeEqual, createHash } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { ApiError, sendError } from "./errors.ts";

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export function registerAuth(app: FastifyInstance, apiKey: string | undefined): void {
  if (!apiKey) return;
  const want = digest(apiKey);
  app.addHook("onRequest", async (request, reply) => {
    if (!request.url.startsWith("/v1/")) return;
    const h = request.headers.authorization ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (m && timingSafeEqual(digest(m[1].trim()), want)) return;
    const msg = m
      ? "Incorrect API key provided. You can find your API key in the server's configuration."
      : "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
    return sendError(reply, new ApiError(401, msg, { type: "invalid_request_error", code: "invalid_api_key" }));
  });
}

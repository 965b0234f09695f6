// Request ids: a client's `x-request-id` is honoured when it is sane (1–128 visible ASCII chars),
// otherwise one is generated. Either way it names the request in the logs and is echoed back in the
// `x-request-id` response header.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { FastifyInstance } from "fastify";

export const REQUEST_ID_HEADER = "x-request-id";
const SANE = /^[\x21-\x7e]{1,128}$/;

/** For fastify's `genReqId` option. */
export function genReqId(req: IncomingMessage): string {
  const h = req.headers[REQUEST_ID_HEADER];
  const v = Array.isArray(h) ? h[0] : h;
  return v !== undefined && SANE.test(v) ? v : randomUUID();
}

export function registerRequestId(app: FastifyInstance): void {
  app.addHook("onRequest", async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });
}

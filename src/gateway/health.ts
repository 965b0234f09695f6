// Probes: GET /health — the process is up and serving HTTP (liveness); GET /ready — the model is
// loaded and the server accepts generation requests (readiness; 503 while loading, after a load
// failure and during shutdown).
import type { FastifyInstance } from "fastify";

export interface Readiness {
  ready: boolean;
  status: "loading" | "ready" | "failed" | "shutting_down";
  reason?: string;
}

export function registerHealthRoutes(app: FastifyInstance, readiness: () => Readiness): void {
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/ready", async (_request, reply) => {
    const r = readiness();
    return reply.code(r.ready ? 200 : 503).send({ status: r.status, ...(r.reason ? { reason: r.reason } : {}) });
  });
}

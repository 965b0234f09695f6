// GET /v1/models and GET /v1/models/:model — the loaded model (empty list while loading).
import type { FastifyInstance } from "fastify";
import type { ModelBackend } from "../backend/backend.ts";
import { modelNotFound } from "./errors.ts";
import type { ModelList, ModelObject } from "./openai-types.ts";

function modelObject(b: ModelBackend): ModelObject {
  return { id: b.info.id, object: "model", created: b.info.created, owned_by: "llmesh", max_model_len: b.info.contextLength };
}

export function registerModelRoutes(app: FastifyInstance, backend: () => ModelBackend | undefined): void {
  app.get("/v1/models", async (): Promise<ModelList> => {
    const b = backend();
    return { object: "list", data: b ? [modelObject(b)] : [] };
  });
  app.get<{ Params: { model: string } }>("/v1/models/*", async (request): Promise<ModelObject> => {
    const name = (request.params as Record<string, string>)["*"] ?? "";
    const b = backend();
    if (!b || !(name === b.info.id || b.info.aliases.includes(name))) throw modelNotFound(name);
    return modelObject(b);
  });
}

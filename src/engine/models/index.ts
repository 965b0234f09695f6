// Layer definition of each supported architecture.
import type { ArchitectureName } from "../model-config.ts";
import type { LayerDefinition } from "./common.ts";
import { llamaLayer } from "./llama.ts";
import { qwen2Layer } from "./qwen2.ts";
import { qwen3Layer } from "./qwen3.ts";

export const LAYER_DEFINITIONS: Readonly<Record<ArchitectureName, LayerDefinition>> = {
  llama: llamaLayer,
  qwen2: qwen2Layer,
  qwen3: qwen3Layer,
};

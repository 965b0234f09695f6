// Qwen2 block (llama.cpp src/models/qwen2.cpp): the LLaMA block with biases on the Q, K and V
// projections (attn_q.bias, attn_k.bias, attn_v.bias) and NeoX-style RoPE (pairs (i, i + d/2)).
import { attentionBlock, feedForwardBlock, type LayerDefinition } from "./common.ts";

export const qwen2Layer: LayerDefinition = {
  arch: "qwen2",
  forwardLayer(b, L, l) {
    attentionBlock(b, L, l, { qkNorm: false }); // L.bq/bk/bv are required for qwen2 (weights.ts)
    feedForwardBlock(b, L);
  },
};

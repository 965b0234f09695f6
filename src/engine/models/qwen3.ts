// Qwen3 block (llama.cpp src/models/qwen3.cpp): no projection biases; each query and key head is
// RMS-normalised (attn_q_norm / attn_k_norm, weights of size head_dim) before NeoX-style RoPE.
import { attentionBlock, feedForwardBlock, type LayerDefinition } from "./common.ts";

export const qwen3Layer: LayerDefinition = {
  arch: "qwen3",
  forwardLayer(b, L, l) {
    attentionBlock(b, L, l, { qkNorm: true });
    feedForwardBlock(b, L);
  },
};

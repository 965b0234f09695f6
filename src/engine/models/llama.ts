// LLaMA block (llama.cpp src/models/llama.cpp, llm_build_llama), also Llama 2/3, TinyLlama, SmolLM
// and Mistral without sliding window:
//   x += Wo·attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x));  x += Wdown·(silu(Wgate·n(x)) * Wup·n(x))
// RoPE "normal" (adjacent pairs; the GGUF converter permuted Wq/Wk rows for it). Optional
// projection biases (some LLaMA-arch fine-tunes have them) are applied when present.
import { attentionBlock, feedForwardBlock, type LayerDefinition } from "./common.ts";

export const llamaLayer: LayerDefinition = {
  arch: "llama",
  forwardLayer(b, L, l) {
    attentionBlock(b, L, l, { qkNorm: false });
    feedForwardBlock(b, L);
  },
};

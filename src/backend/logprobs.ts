// Log-probabilities for the `logprobs` / `top_logprobs` parameters: log-softmax of the model's raw
// logits (before temperature, penalties and biases — what vLLM reports by default), for the chosen
// token and the k most likely ones.
import type { TokenInfo } from "./backend.ts";

export function tokenLogprobs(logits: Float32Array, chosen: number, k: number): TokenInfo {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const top: Array<{ id: number; logprob: number }> = [];
  if (k > 0) {
    // Partial selection: keep the best k seen so far, sorted descending (k is at most 20).
    const ids: number[] = [];
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i];
      if (ids.length === k && v <= logits[ids[k - 1]]) continue;
      let j = ids.length === k ? k - 1 : ids.length;
      while (j > 0 && logits[ids[j - 1]] < v) {
        ids[j] = ids[j - 1];
        j--;
      }
      ids[j] = i;
    }
    for (const id of ids) top.push({ id, logprob: logits[id] - lse });
  }
  return { id: chosen, logprob: logits[chosen] - lse, top };
}

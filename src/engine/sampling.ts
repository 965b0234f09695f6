// Token sampling from logits, following llama.cpp's default sampler chain order
// (common/sampling.cpp: logit bias → penalties → top-k → top-p → min-p → temperature → draw):
//   - logit bias: logits[id] += bias (OpenAI logit_bias; a bias <= -100 bans the token)
//   - penalties over the last `penaltyLastN` tokens of the history (llama_sampler_penalties):
//       repetition (llama.cpp): logit > 0 ? logit / repeatPenalty : logit * repeatPenalty
//       frequency & presence (OpenAI): logit -= count * frequencyPenalty + (count > 0) * presencePenalty
//   - top-k: keep the k highest logits; top-p: keep the smallest highest-probability set whose mass
//     reaches p; min-p: keep tokens with probability >= minP * max probability
//   - temperature <= 0 means greedy (argmax after bias and penalties)
// Ties are broken towards the lower token id, so results depend only on logits, history and seed.
// Draws use xoshiro128** seeded through splitmix32: the same seed gives the same tokens.

export interface SamplerOptions {
  /** Softmax temperature; <= 0 selects greedily. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens; <= 0 disables. Default 0. */
  topK?: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables. Default 1. */
  topP?: number;
  /** Minimum probability relative to the most likely token, in [0, 1); 0 disables. Default 0. */
  minP?: number;
  /** llama.cpp repetition penalty (1 = off). Default 1. */
  repeatPenalty?: number;
  /** OpenAI frequency penalty: subtracted once per occurrence in the window. Default 0. */
  frequencyPenalty?: number;
  /** OpenAI presence penalty: subtracted once if the token occurs in the window. Default 0. */
  presencePenalty?: number;
  /** How many of the last history tokens the penalties look at; -1 = all, 0 = none. Default 64. */
  penaltyLastN?: number;
  /** Token id → bias added to its logit. */
  logitBias?: ReadonlyMap<number, number> | Readonly<Record<number, number>>;
  /** RNG seed (uint32). Default: a random seed. */
  seed?: number;
}

/** xoshiro128** (Blackman & Vigna, 2018) seeded with splitmix32; 32-bit outputs. */
export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const splitmix32 = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix32();
    this.b = splitmix32();
    this.c = splitmix32();
    this.d = splitmix32();
  }

  /** Next uint32. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextU32() / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Index of the largest logit (lowest id among ties); -1 for an empty array. */
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestV || best < 0) {
      best = i;
      bestV = logits[i];
    }
  }
  return best;
}

export class Sampler {
  readonly options: Readonly<Required<Omit<SamplerOptions, "logitBias" | "seed">>>;
  readonly seed: number;
  private readonly bias: Array<[number, number]>;
  private readonly rng: Xoshiro128;
  private work = new Float32Array(0); // (n_vocab) logits after bias and penalties
  private ids = new Int32Array(0); // (n_candidates) surviving token ids
  private probs = new Float64Array(0); // (n_candidates)

  constructor(opts: SamplerOptions = {}) {
    this.options = {
      temperature: opts.temperature ?? 1,
      topK: opts.topK ?? 0,
      topP: opts.topP ?? 1,
      minP: opts.minP ?? 0,
      repeatPenalty: opts.repeatPenalty ?? 1,
      frequencyPenalty: opts.frequencyPenalty ?? 0,
      presencePenalty: opts.presencePenalty ?? 0,
      penaltyLastN: opts.penaltyLastN ?? 64,
    };
    const o = this.options;
    if (!(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
    if (!(o.minP >= 0 && o.minP < 1)) throw new RangeError(`minP must be in [0, 1), got ${o.minP}`);
    if (!(o.repeatPenalty > 0)) throw new RangeError(`repeatPenalty must be > 0, got ${o.repeatPenalty}`);
    const b = opts.logitBias;
    this.bias = b instanceof Map ? [...b] : Object.entries(b ?? {}).map(([k, v]) => [Number(k), v as number]);
    this.seed = (opts.seed ?? Math.floor(Math.random() * 4294967296)) >>> 0;
    this.rng = new Xoshiro128(this.seed);
  }

  /**
   * Puts the RNG where it would be after `n` earlier sample() calls (each draws exactly one number
   * when temperature > 0, none when greedy): a sequence replayed elsewhere samples on exactly.
   */
  skip(n: number): void {
    if (this.options.temperature <= 0) return;
    for (let i = 0; i < n; i++) this.rng.next();
  }

  /** Picks the next token from logits (n_vocab), given the tokens so far. Does not modify logits. */
  sample(logits: Float32Array, history: readonly number[] = []): number {
    const n = logits.length;
    if (this.work.length !== n) {
      this.work = new Float32Array(n);
      this.ids = new Int32Array(n);
      this.probs = new Float64Array(n);
    }
    const l = this.work;
    l.set(logits);
    this.applyBias(l);
    this.applyPenalties(l, history);
    const o = this.options;
    if (o.temperature <= 0) return argmax(l);

    // Candidates: the top-k (sorted), or every token that is not banned (unsorted).
    const ids = this.ids;
    const p = this.probs;
    let m = this.candidates(l, o.topK);
    let sorted = o.topK > 0 && m === o.topK;
    softmaxInto(l, ids, m, p, 1);
    if (o.topP < 1) {
      if (!sorted) m = this.sortedPrefix(l, m, o.topP);
      sorted = true;
      let cum = 0;
      for (let i = 0; i < m; i++) {
        cum += p[i];
        if (cum >= o.topP) {
          m = i + 1;
          break;
        }
      }
    }
    if (o.minP > 0) {
      let pmax = 0;
      for (let i = 0; i < m; i++) if (p[i] > pmax) pmax = p[i];
      let k = 0;
      for (let i = 0; i < m; i++) if (p[i] >= o.minP * pmax) ids[k++] = ids[i];
      m = k;
    }
    softmaxInto(l, ids, m, p, o.temperature);
    let u = this.rng.next();
    for (let i = 0; i < m; i++) {
      u -= p[i];
      if (u < 0) return ids[i];
    }
    return ids[m - 1];
  }

  private applyBias(l: Float32Array): void {
    for (const [id, b] of this.bias) {
      if (id >= 0 && id < l.length) l[id] = b <= -100 ? -Infinity : l[id] + b;
    }
  }

  private applyPenalties(l: Float32Array, history: readonly number[]): void {
    const o = this.options;
    if (o.penaltyLastN === 0 || (o.repeatPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0)) return;
    const from = o.penaltyLastN < 0 ? 0 : Math.max(0, history.length - o.penaltyLastN);
    const counts = new Map<number, number>();
    for (let i = from; i < history.length; i++) counts.set(history[i], (counts.get(history[i]) ?? 0) + 1);
    for (const [id, count] of counts) {
      if (id < 0 || id >= l.length) continue;
      let v = l[id];
      if (o.repeatPenalty !== 1) v = v > 0 ? v / o.repeatPenalty : v * o.repeatPenalty;
      l[id] = v - count * o.frequencyPenalty - o.presencePenalty;
    }
  }

  /** Fills this.ids with the topK best ids (sorted; topK <= 0: all) that are not banned; returns the count. */
  private candidates(l: Float32Array, topK: number): number {
    const n = l.length;
    const ids = this.ids;
    let m = 0;
    for (let i = 0; i < n; i++) if (l[i] > -Infinity) ids[m++] = i;
    if (m === 0) {
      ids[0] = argmax(l); // everything banned: fall back to the raw argmax
      return 1;
    }
    if (topK > 0 && topK < m) {
      ids.set(selectTop(ids.subarray(0, m), topK, l));
      return topK;
    }
    return m;
  }

  /**
   * Reorders ids[0..m) so that a prefix sorted by descending probability holds at least `mass` of
   * the probability; returns that prefix's length, with this.probs holding its probabilities.
   * Widens a logit window below the max (1, 2, 4, … nats) until it holds enough mass, and sorts
   * only that window instead of the whole vocabulary.
   */
  private sortedPrefix(l: Float32Array, m: number, mass: number): number {
    const ids = this.ids;
    const p = this.probs; // p[i] = probability of ids[i] on entry
    let max = -Infinity;
    let pmax = 0;
    for (let i = 0; i < m; i++) {
      if (l[ids[i]] > max) max = l[ids[i]];
      if (p[i] > pmax) pmax = p[i];
    }
    for (let delta = 1; ; delta *= 2) {
      const thr = max - delta;
      let inside = 0;
      let count = 0;
      for (let i = 0; i < m; i++) {
        if (l[ids[i]] >= thr) {
          inside += p[i];
          count++;
        }
      }
      if (inside >= mass || count === m) {
        let k = 0;
        for (let i = 0; i < m; i++) if (l[ids[i]] >= thr) ids[k++] = ids[i];
        ids.subarray(0, k).sort((a, b) => l[b] - l[a] || a - b);
        // pmax = exp(0) / z, so p = exp(l - max) * pmax
        for (let i = 0; i < k; i++) p[i] = Math.exp(l[ids[i]] - max) * pmax;
        return k;
      }
    }
  }
}

/** The k best ids (descending logit, ascending id on ties) of `ids` by l[id]. */
function selectTop(ids: Int32Array, k: number, l: Float32Array): Int32Array {
  // Min-heap of size k keyed by (logit, -id): the root is the worst kept candidate.
  const heap = new Int32Array(k);
  let size = 0;
  const worse = (a: number, b: number): boolean => l[a] < l[b] || (l[a] === l[b] && a > b);
  const siftDown = (i: number): void => {
    for (;;) {
      const c1 = 2 * i + 1;
      const c2 = c1 + 1;
      let w = i;
      if (c1 < size && worse(heap[c1], heap[w])) w = c1;
      if (c2 < size && worse(heap[c2], heap[w])) w = c2;
      if (w === i) return;
      const t = heap[i];
      heap[i] = heap[w];
      heap[w] = t;
      i = w;
    }
  };
  for (let j = 0; j < ids.length; j++) {
    const id = ids[j];
    if (size < k) {
      let i = size++;
      heap[i] = id;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!worse(heap[i], heap[parent])) break;
        const t = heap[i];
        heap[i] = heap[parent];
        heap[parent] = t;
        i = parent;
      }
    } else if (worse(heap[0], id)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => l[b] - l[a] || a - b);
}

/** p[i] = softmax(l[ids[i]] / temperature) over i < m, in double precision. */
function softmaxInto(l: Float32Array, ids: Int32Array, m: number, p: Float64Array, temperature: number): void {
  let max = -Infinity;
  for (let i = 0; i < m; i++) if (l[ids[i]] > max) max = l[ids[i]];
  let sum = 0;
  for (let i = 0; i < m; i++) {
    p[i] = Math.exp((l[ids[i]] - max) / temperature);
    sum += p[i];
  }
  for (let i = 0; i < m; i++) p[i] /= sum;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

/**
 * Log-probabilities of the model's distribution (log-softmax of the raw logits, as OpenAI's
 * `logprobs`): the chosen token's and the `topN` most likely ones (descending).
 */
export function computeLogprobs(logits: Float32Array, token: number, topN = 0): { token: number; logprob: number; top: TokenLogprob[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);
  const top: TokenLogprob[] = [];
  if (topN > 0) {
    const all = new Int32Array(logits.length);
    for (let i = 0; i < all.length; i++) all[i] = i;
    for (const id of selectTop(all, Math.min(topN, logits.length), logits)) top.push({ token: id, logprob: logits[id] - logZ });
  }
  return { token, logprob: logits[token] - logZ, top };
}

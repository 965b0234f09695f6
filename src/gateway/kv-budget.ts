// KV-cache memory accounting. Each admitted request reserves, up front, the positions it may ever
// need (prompt + max completion tokens, for each of its sequences), so a running request can never
// run out of KV memory mid-stream and nothing has to be preempted. A request that does not fit now
// waits in the queue; one that could never fit (more than the whole budget) is refused with 400.
// Actual use (positions held right now) is tracked separately, for /metrics.
/**
 * The default budget in positions: every batch slot can hold a full context, but no more than
 * `memoryFraction` of this machine's memory (the engine's caches grow by doubling, so a sequence may
 * hold up to twice the positions it uses — counted here).
 */
export function defaultKvCapacity(maxBatch: number, contextLength: number, bytesPerToken: number, totalMemoryBytes: number, memoryFraction = 0.4): number {
  const byMemory = Math.floor((totalMemoryBytes * memoryFraction) / (2 * Math.max(1, bytesPerToken)));
  return Math.max(1, Math.min(maxBatch * contextLength, byMemory));
}

export class KvBudget {
  readonly capacityTokens: number;
  readonly bytesPerToken: number;
  private reserved = 0;
  private used = 0;

  constructor(capacityTokens: number, bytesPerToken: number) {
    if (!(capacityTokens > 0)) throw new RangeError(`KV capacity must be positive, got ${capacityTokens}`);
    this.capacityTokens = Math.floor(capacityTokens);
    this.bytesPerToken = bytesPerToken;
  }

  /** Budget from a byte size. */
  static fromBytes(bytes: number, bytesPerToken: number): KvBudget {
    return new KvBudget(Math.floor(bytes / Math.max(1, bytesPerToken)), bytesPerToken);
  }

  get reservedTokens(): number {
    return this.reserved;
  }
  get usedTokens(): number {
    return this.used;
  }
  get freeTokens(): number {
    return this.capacityTokens - this.reserved;
  }

  canEverFit(tokens: number): boolean {
    return tokens <= this.capacityTokens;
  }

  /** Reserves `tokens` positions if they fit now. */
  tryReserve(tokens: number): boolean {
    if (tokens > this.freeTokens) return false;
    this.reserved += tokens;
    return true;
  }

  release(tokens: number): void {
    this.reserved -= tokens;
    if (this.reserved < 0) throw new Error(`KV budget released more than it reserved (${this.reserved})`);
  }

  /** Positions written to / dropped from KV caches. */
  addUsed(tokens: number): void {
    this.used += tokens;
  }
  removeUsed(tokens: number): void {
    this.used -= tokens;
    if (this.used < 0) throw new Error(`KV usage went negative (${this.used})`);
  }
}

// A bounded FIFO of requests waiting for a batch slot. push() refuses (returns false) when the queue
// is full, which the HTTP layer answers with 429 + Retry-After. Cancelled requests leave at once.
export class RequestQueue<T> {
  readonly capacity: number;
  private items: T[] = [];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`queue capacity must be a non-negative integer, got ${capacity}`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.items.length;
  }

  get full(): boolean {
    return this.items.length >= this.capacity;
  }

  push(item: T): boolean {
    if (this.full) return false;
    this.items.push(item);
    return true;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  /** Removes the item wherever it is; true if it was queued. */
  remove(item: T): boolean {
    const i = this.items.indexOf(item);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }

  /** Removes and returns everything. */
  drain(): T[] {
    const all = this.items;
    this.items = [];
    return all;
  }
}

// In-process Transport (tests, single-machine experiments): links are pairs of FrameQueues. Runs
// the same compliance suite as the libp2p transport.
import { randomBytes } from "node:crypto";
import { FrameQueue, lengthPrefix, type StageLink, type Transport } from "./transport.ts";

const registry = new Map<string, MemoryTransport>();

class MemoryLink implements StageLink {
  readonly remotePeer: string;
  readonly queue: FrameQueue;
  other!: MemoryLink;
  private blocked = false;
  private drainWaiters: Array<() => void> = [];
  private closedFlag = false;
  bytesSent = 0;

  constructor(remotePeer: string, highWater: number) {
    this.remotePeer = remotePeer;
    // This side's queue pausing blocks the other side's sender.
    this.queue = new FrameQueue({
      highWater,
      pause: () => {
        this.other.blocked = true;
      },
      resume: () => {
        this.other.blocked = false;
        for (const w of this.other.drainWaiters.splice(0)) w();
      },
    });
  }

  get bytesReceived(): number {
    return this.queue.bytesReceived;
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.closedFlag) throw new Error("link closed");
    while (this.blocked) {
      await new Promise<void>((r) => this.drainWaiters.push(r));
      if (this.closedFlag) throw new Error("link closed");
    }
    const wire = new Uint8Array(4 + frame.length);
    wire.set(lengthPrefix(frame.length), 0);
    wire.set(frame, 4);
    this.bytesSent += wire.length;
    this.other.queue.push(wire);
  }

  next(): Promise<Uint8Array | null> {
    return this.queue.next();
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.queue.end();
    for (const w of this.drainWaiters.splice(0)) w();
    this.other.close();
  }
}

export class MemoryTransport implements Transport {
  readonly peerId: string;
  private readonly handlers = new Map<string, (link: StageLink) => void>();
  private readonly links = new Set<MemoryLink>();
  private readonly highWater: number;

  constructor(opts: { highWater?: number } = {}) {
    this.peerId = `mem-${randomBytes(6).toString("hex")}`;
    this.highWater = opts.highWater ?? 8 * 1024 * 1024;
    registry.set(this.peerId, this);
  }

  addresses(): string[] {
    return [`/memory/${this.peerId}`];
  }

  async handle(protocol: string, onLink: (link: StageLink) => void): Promise<void> {
    this.handlers.set(protocol, onLink);
  }

  async dial(addrs: readonly string[], protocol: string): Promise<StageLink> {
    for (const a of addrs) {
      const id = a.replace(/^\/memory\//, "");
      const t = registry.get(id);
      const h = t?.handlers.get(protocol);
      if (!t || !h) continue;
      const mine = new MemoryLink(t.peerId, this.highWater);
      const theirs = new MemoryLink(this.peerId, t.highWater);
      mine.other = theirs;
      theirs.other = mine;
      this.links.add(mine);
      t.links.add(theirs);
      queueMicrotask(() => h(theirs));
      return mine;
    }
    throw new Error(`cannot dial ${addrs.join(", ")} for ${protocol}`);
  }

  async stop(): Promise<void> {
    registry.delete(this.peerId);
    for (const l of this.links) l.close();
    this.links.clear();
  }
}

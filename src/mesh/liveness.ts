// Failure detection for the mesh host, in about a second rather than a minute-long heartbeat.
//
// Every control frame from a peer (PONG to the host's beat, STATS, TOKENS…) counts as a sign of life.
// A peer is declared dead when it has been silent for longer than
//
//     missBeats × beatMs  +  busyMs
//
// where busyMs is what the peer may legitimately spend computing the work in flight (a worker cannot
// answer while its event loop runs a forward step), estimated by the host from the peer's measured
// per-layer time. A brief blip shorter than missBeats beats is tolerated (no tear-down for a flap).
// The host's own event loop can stall too (stage 0's compute, a long prefill): a check that fires
// late does not count the stall against the peers.

export interface LivenessOptions {
  /** Heartbeat interval (ms). */
  beatMs: number;
  /** Beats a peer may miss before it is declared dead. */
  missBeats: number;
}

export const DEFAULT_LIVENESS: LivenessOptions = { beatMs: 250, missBeats: 4 };

export class Liveness {
  private readonly o: LivenessOptions;
  private readonly lastHeard = new Map<string, number>();
  private lastCheck: number;

  constructor(o: LivenessOptions = DEFAULT_LIVENESS, now = performance.now()) {
    if (!(o.beatMs > 0) || !(o.missBeats >= 1)) throw new RangeError(`liveness: beatMs > 0 and missBeats >= 1 expected, got ${o.beatMs}, ${o.missBeats}`);
    this.o = o;
    this.lastCheck = now;
  }

  get options(): LivenessOptions {
    return this.o;
  }

  /** Starts watching a peer (or records a sign of life). */
  heard(peer: string, now = performance.now()): void {
    this.lastHeard.set(peer, now);
  }

  forget(peer: string): void {
    this.lastHeard.delete(peer);
  }

  /** Ms since the peer was last heard from (undefined: not watched). */
  silentMs(peer: string, now = performance.now()): number | undefined {
    const t = this.lastHeard.get(peer);
    return t === undefined ? undefined : now - t;
  }

  /**
   * The peers that are dead now. busyMs(peer): the compute time it may be spending on work in flight.
   * Call it about every beat; a call that comes late (the host was stalled) first forgives the stall.
   */
  check(busyMs: (peer: string) => number, now = performance.now()): string[] {
    const late = now - this.lastCheck - this.o.beatMs;
    this.lastCheck = now;
    if (late > this.o.beatMs) {
      // We were not listening during the stall: nobody's silence in it counts.
      for (const [p, t] of this.lastHeard) this.lastHeard.set(p, Math.min(now, t + late));
    }
    const dead: string[] = [];
    const limit = this.o.missBeats * this.o.beatMs;
    for (const [p, t] of this.lastHeard) if (now - t > limit + Math.max(0, busyMs(p))) dead.push(p);
    return dead;
  }
}

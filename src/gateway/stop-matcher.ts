// Stop strings over streamed text. Text arrives in pieces (one per token); a stop string may span
// pieces. push() returns the text that is safe to emit now: everything before the earliest stop
// string to complete, holding back the longest tail that could still be the start of one. The stop string itself
// is never emitted (OpenAI semantics). flush() releases the held tail when generation ends otherwise.
export class StopMatcher {
  private readonly stops: string[];
  private held = "";
  private stoppedFlag = false;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.stoppedFlag;
  }

  /** Length of the text currently held back. */
  get heldLength(): number {
    return this.held.length;
  }

  push(text: string): { text: string; stopped: boolean } {
    if (this.stoppedFlag) return { text: "", stopped: true };
    if (this.stops.length === 0) return { text, stopped: false };
    const buf = this.held + text;
    // The stop string that completes first (smallest end; on a tie the longer one), as if the text
    // had arrived one character at a time. None can start before `held`: held is the longest
    // suffix of the text so far that is a prefix of a stop string.
    let at = -1;
    let atEnd = Infinity;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i < 0) continue;
      const end = i + s.length;
      if (end < atEnd || (end === atEnd && i < at)) {
        at = i;
        atEnd = end;
      }
    }
    if (at >= 0) {
      this.stoppedFlag = true;
      this.held = "";
      return { text: buf.slice(0, at), stopped: true };
    }
    const keep = this.partialTail(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  flush(): string {
    const t = this.held;
    this.held = "";
    return t;
  }

  /** Longest k such that buf's last k chars are a proper prefix of some stop string. */
  private partialTail(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      const max = Math.min(s.length - 1, buf.length);
      for (let k = max; k > best; k--) {
        if (buf.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}

// Per-stage timing: compute (engine), wait (idle, waiting for the next frame), transfer (encode +
// send, including backpressure), per token; bytes sent per token on the outgoing hop.
export interface StageStatsSnapshot {
  steps: number;
  tokens: number;
  computeMsPerToken: number;
  waitMsPerToken: number;
  transferMsPerToken: number;
  bytesOutPerToken: number;
  /** Per step (one frame through this stage), ms. */
  computeMsPerStep: number;
  transferMsPerStep: number;
}

export class StageStats {
  steps = 0;
  tokens = 0;
  computeMs = 0;
  waitMs = 0;
  transferMs = 0;
  bytesOut = 0;

  snapshot(): StageStatsSnapshot {
    const t = Math.max(1, this.tokens);
    const s = Math.max(1, this.steps);
    const r = (x: number) => Math.round(x * 1000) / 1000;
    return {
      steps: this.steps,
      tokens: this.tokens,
      computeMsPerToken: r(this.computeMs / t),
      waitMsPerToken: r(this.waitMs / t),
      transferMsPerToken: r(this.transferMs / t),
      bytesOutPerToken: r(this.bytesOut / t),
      computeMsPerStep: r(this.computeMs / s),
      transferMsPerStep: r(this.transferMs / s),
    };
  }
}

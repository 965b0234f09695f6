// The fast forward pass: all tokens of all sequences in a batch go through each matmul together
// (every weight row is decoded once per call and dotted with every token), with preallocated,
// reused scratch buffers. Numerically identical to reference-forward.ts.
import { LAYER_DEFINITIONS } from "./models/index.ts";
import type { BatchState, LayerDefinition } from "./models/common.ts";
import { MatmulInput, project } from "./models/common.ts";
import { rmsNormRows, Scratch } from "./ops.ts";
import { decodeRow } from "./qtensor.ts";
import { ropeCosSin } from "./rope.ts";
import { logitRows, type ForwardImpl, type Stage, type StageEntry } from "./stage.ts";

export class FastForward implements ForwardImpl {
  private readonly s: Stage;
  private readonly def: LayerDefinition;
  private readonly scratch = new Scratch();

  constructor(stage: Stage) {
    this.s = stage;
    this.def = LAYER_DEFINITIONS[stage.config.arch];
  }

  run(entries: StageEntry[]): Float32Array[] {
    const c = this.s.config;
    const w = this.s.weights;
    const nEmbd = c.nEmbd;
    const scratch = this.scratch;

    // Lay the chunks out one after another: batch row = entry.row0 + t.
    let nTok = 0;
    const placed = entries.map((entry) => {
      const p = { entry, row0: nTok };
      nTok += entry.nTokens;
      return p;
    });

    const x = scratch.f32("x", nTok * nEmbd); // (n_tok, n_embd)
    const ropeCS = scratch.f32("ropeCS", nTok * c.nRot); // (n_tok, n_rot)
    const row = scratch.f32("embdRow", nEmbd); // (n_embd)
    for (const { entry: e, row0 } of placed) {
      for (let t = 0; t < e.nTokens; t++) {
        const r = row0 + t;
        if (e.tokens) {
          decodeRow(w.tokEmbd!, e.tokens[t], row);
          x.set(row.subarray(0, nEmbd), r * nEmbd);
        } else {
          x.set(e.hidden!.subarray(t * nEmbd, (t + 1) * nEmbd), r * nEmbd);
        }
        ropeCosSin(this.s.rope, e.pos0 + t, ropeCS, r * c.nRot);
      }
    }

    const b: BatchState = { stage: this.s, scratch, nTok, x, ropeCS, entries: placed };
    for (let l = 0; l < w.layers.length; l++) this.def.forwardLayer(b, w.layers[l], l);

    if (!this.s.isLast) return placed.map(({ entry: e, row0 }) => x.slice(row0 * nEmbd, (row0 + e.nTokens) * nEmbd));
    return this.logits(placed, x);
  }

  /** Output norm and LM head for the rows that asked for logits, in one matmul. */
  private logits(placed: Array<{ entry: StageEntry; row0: number }>, x: Float32Array): Float32Array[] {
    const c = this.s.config;
    const w = this.s.weights;
    const nEmbd = c.nEmbd;
    let nOut = 0;
    for (const p of placed) nOut += logitRows(p.entry);
    const xo = this.scratch.f32("out.x", nOut * nEmbd); // (n_out, n_embd) the rows that produce logits
    let o = 0;
    for (const { entry: e, row0 } of placed) {
      const first = e.logits === "all" ? 0 : e.nTokens - 1;
      for (let t = first; t < e.nTokens && e.logits !== "none"; t++, o++) {
        xo.set(x.subarray((row0 + t) * nEmbd, (row0 + t + 1) * nEmbd), o * nEmbd);
      }
    }
    rmsNormRows(xo, xo, nOut, nEmbd, w.outputNorm!, c.normEps);
    const nVocab = w.output!.nRows;
    const logits = this.scratch.f32("out.logits", nOut * nVocab); // (n_out, n_vocab)
    const b: BatchState = { stage: this.s, scratch: this.scratch, nTok: nOut, x: xo, ropeCS: new Float32Array(0), entries: [] };
    if (nOut > 0) project(b, w.output!, new MatmulInput(b, xo, nEmbd, "out.x"), logits);
    const result: Float32Array[] = [];
    o = 0;
    for (const { entry: e } of placed) {
      const n = logitRows(e);
      result.push(logits.slice(o * nVocab, (o + n) * nVocab));
      o += n;
    }
    return result;
  }
}

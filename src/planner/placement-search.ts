// The placement search itself (see placement.ts for the rules): scoring of candidate placements and the
// precomputed context over which the dynamic programme over layer boundaries runs, for each peer order.
import { LinkTable, type Cluster, type PeerProfile } from "./cluster.ts";
import { computeSec, hopSec, kvBytesPerLayer, peerSpeed, predict, usableMemoryBytes, type Placement, type PeerSpeed, type Prediction } from "./cost-model.ts";
import { activationBytesPerToken, TOKEN_ID_BYTES, type ModelProfile } from "./model-profile.ts";
import type { Objective, PlanOptions, StageCountOption } from "./placement.ts";

export function objectiveCost(p: Prediction, objective: Objective): number {
  return objective === "interactive" ? p.decodeTokenSec : 1 / p.throughputTokPerSec;
}

export function scored(pl: Placement, prediction: Prediction, objective: Objective): StageCountOption {
  return {
    stages: pl.length, placement: pl, prediction, cost: objectiveCost(prediction, objective),
    secondary: objectiveCost(prediction, objective === "interactive" ? "batch" : "interactive"),
    balance: prediction.stages.reduce((a, s) => a + s.decodeSec * s.decodeSec, 0),
  };
}

const REL = 1e-9;
/** a better than b: lower cost; at the same cost (to rounding) a lower secondary cost; then a better balance. */
function better(a: StageCountOption, b: StageCountOption | undefined): boolean {
  if (!b) return true;
  for (const k of ["cost", "secondary", "balance"] as const) {
    if (a[k] < b[k] * (1 - REL)) return true;
    if (a[k] > b[k] * (1 + REL)) return false;
  }
  return false;
}

/** Everything the search needs about a set of peers, precomputed. */
export class SearchContext {
  readonly L: number;
  readonly peers: PeerProfile[];
  readonly speeds: PeerSpeed[];
  readonly usable: number[];
  readonly prefBytes: Float64Array;
  readonly prefParams: Float64Array;
  readonly kvLayer: number;
  /** DP cost of a hop i → j (forward, then return) and whether the budget allows it. */
  readonly fwdCost: Float64Array;
  readonly retCost: Float64Array;
  readonly fwdOk: Uint8Array;
  readonly retOk: Uint8Array;
  readonly batchObj: boolean;
  readonly best = new Map<number, StageCountOption>();
  readonly links: LinkTable;
  nodes = 0;

  readonly model: ModelProfile;
  readonly cluster: Cluster;
  readonly opts: PlanOptions;

  constructor(model: ModelProfile, cluster: Cluster, peers: PeerProfile[], opts: PlanOptions, maxHopSec: number) {
    this.model = model;
    this.cluster = cluster;
    this.opts = opts;
    this.links = new LinkTable(cluster);
    this.L = model.nLayer;
    this.peers = peers;
    this.speeds = peers.map((p) => peerSpeed(p, model));
    this.usable = peers.map((p) => usableMemoryBytes(p, opts));
    this.prefBytes = new Float64Array(this.L + 1);
    this.prefParams = new Float64Array(this.L + 1);
    for (let l = 0; l < this.L; l++) {
      this.prefBytes[l + 1] = this.prefBytes[l] + model.layerBytes[l];
      this.prefParams[l + 1] = this.prefParams[l] + model.layerParams[l];
    }
    this.kvLayer = kvBytesPerLayer(model, opts);
    this.batchObj = opts.objective === "batch";
    const n = peers.length;
    const act = activationBytesPerToken(model.nEmbd, opts.codec);
    const B = Math.max(1, opts.batch);
    this.fwdCost = new Float64Array(n * n);
    this.retCost = new Float64Array(n * n);
    this.fwdOk = new Uint8Array(n * n);
    this.retOk = new Uint8Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const l = this.links.get(peers[i].id, peers[j].id);
        const k = i * n + j;
        this.fwdOk[k] = hopSec(l, B * act) <= maxHopSec ? 1 : 0;
        this.retOk[k] = hopSec(l, B * TOKEN_ID_BYTES) <= maxHopSec ? 1 : 0;
        this.fwdCost[k] = this.batchObj ? (B * act) / l.bytesPerSec : hopSec(l, act);
        this.retCost[k] = this.batchObj ? (B * TOKEN_ID_BYTES) / l.bytesPerSec : hopSec(l, TOKEN_ID_BYTES);
      }
    }
  }

  memFits(i: number, s: number, e: number): boolean {
    const m = this.model;
    let b = m.globalBytes + this.prefBytes[e] - this.prefBytes[s] + (e - s) * this.kvLayer;
    if (s === 0) b += m.embdBytes;
    if (e === this.L) b += m.headBytes;
    if (s === 0 && e === this.L) b -= m.sharedBytes;
    return b <= this.usable[i];
  }

  /** DP cost of peer i computing layers [s, e) (head included when e = L). */
  stageCost(i: number, s: number, e: number): number {
    const n = this.batchObj ? Math.max(1, this.opts.batch) : 1;
    const sp = this.speeds[i];
    let t = computeSec(sp, this.prefBytes[e] - this.prefBytes[s], this.prefParams[e] - this.prefParams[s], n);
    if (e === this.L) t += computeSec(sp, this.model.headBytes, this.model.headParams, n);
    return t;
  }

  combine(a: number, b: number): number {
    return this.batchObj ? Math.max(a, b) : a + b;
  }

  /** Row for the first peer: layers [0, e) with e < L. */
  firstRow(i: number): { row: Float64Array; arg: Int32Array } {
    const row = new Float64Array(this.L + 1).fill(Infinity);
    const arg = new Int32Array(this.L + 1).fill(-1);
    for (let e = 1; e < this.L; e++) {
      if (!this.memFits(i, 0, e)) break;
      row[e] = this.stageCost(i, 0, e);
      arg[e] = 0;
    }
    return { row, arg };
  }

  /** Extends a prefix ending with peer q (row) by peer p holding [s, e), e < L. */
  extend(row: Float64Array, q: number, p: number): { row: Float64Array; arg: Int32Array } | null {
    const n = this.peers.length;
    const out = new Float64Array(this.L + 1).fill(Infinity);
    const arg = new Int32Array(this.L + 1).fill(-1);
    if (!this.fwdOk[q * n + p]) return null;
    const hop = this.fwdCost[q * n + p];
    let any = false;
    for (let e = 2; e < this.L; e++) {
      let best = Infinity;
      let bs = -1;
      for (let s = e - 1; s >= 1; s--) {
        if (!this.memFits(p, s, e)) break;
        if (row[s] === Infinity) continue;
        const c = this.combine(row[s], hop + this.stageCost(p, s, e));
        if (c < best) { best = c; bs = s; }
      }
      if (bs >= 0) { out[e] = best; arg[e] = bs; any = true; }
    }
    return any ? { row: out, arg } : null;
  }

  /** Completes a prefix (stack of peers and their argmin rows) with peer p as the last stage. */
  complete(stack: Array<{ peer: number; row: Float64Array; arg: Int32Array }>, p: number): void {
    const n = this.peers.length;
    const top = stack[stack.length - 1];
    const first = stack[0].peer;
    if (!this.fwdOk[top.peer * n + p] || !this.retOk[p * n + first]) return;
    const hop = this.fwdCost[top.peer * n + p];
    const ret = this.retCost[p * n + first];
    let best = Infinity;
    let bs = -1;
    for (let s = this.L - 1; s >= 1; s--) {
      if (!this.memFits(p, s, this.L)) break;
      if (top.row[s] === Infinity) continue;
      const c = this.combine(this.combine(top.row[s], hop + this.stageCost(p, s, this.L)), ret);
      if (c < best) { best = c; bs = s; }
    }
    if (bs < 0) return;
    const pl: Placement = [{ peer: this.peers[p].id, start: bs, end: this.L }];
    let end = bs;
    for (let d = stack.length - 1; d >= 0; d--) {
      const s = stack[d].arg[end];
      pl.unshift({ peer: this.peers[stack[d].peer].id, start: s, end });
      end = s;
    }
    this.offer(pl);
  }

  completeSingle(i: number): void {
    if (!this.memFits(i, 0, this.L)) return;
    this.offer([{ peer: this.peers[i].id, start: 0, end: this.L }]);
  }

  offer(pl: Placement): void {
    const K = pl.length;
    if (this.opts.stages !== undefined && K !== this.opts.stages) return;
    const o = scored(pl, predict(this.model, this.cluster, pl, this.opts, this.links), this.opts.objective);
    if (better(o, this.best.get(K))) this.best.set(K, o);
  }

  maxDepth(): number {
    return Math.min(this.peers.length, this.opts.stages ?? this.peers.length, this.L);
  }

  /** Every ordered subset, depth first. */
  exhaustive(): void {
    const n = this.peers.length;
    const maxD = this.maxDepth();
    const used = new Uint8Array(n);
    const stack: Array<{ peer: number; row: Float64Array; arg: Int32Array }> = [];
    const rec = (): void => {
      this.nodes++;
      const top = stack[stack.length - 1];
      if (stack.length + 1 > maxD) return;
      for (let p = 0; p < n; p++) {
        if (used[p]) continue;
        this.complete(stack, p);
        if (stack.length + 2 > maxD) continue;
        const next = this.extend(top.row, top.peer, p);
        if (!next) continue;
        used[p] = 1;
        stack.push({ peer: p, ...next });
        rec();
        stack.pop();
        used[p] = 0;
      }
    };
    for (let f = 0; f < n; f++) {
      if (this.opts.firstPeer !== undefined && this.peers[f].id !== this.opts.firstPeer) continue;
      this.completeSingle(f);
      const r = this.firstRow(f);
      used[f] = 1;
      stack.push({ peer: f, ...r });
      rec();
      stack.pop();
      used[f] = 0;
    }
  }

  /** The prefixes of one order (heuristic search); returns the best cost found among them. */
  walk(order: number[]): number {
    const maxD = this.maxDepth();
    let bestCost = Infinity;
    const before = new Map(this.best);
    this.best.clear();
    this.completeSingle(order[0]);
    const stack = [{ peer: order[0], ...this.firstRow(order[0]) }];
    for (let d = 1; d < Math.min(order.length, maxD); d++) {
      this.complete(stack, order[d]);
      if (d + 1 >= maxD) break;
      const next = this.extend(stack[stack.length - 1].row, stack[stack.length - 1].peer, order[d]);
      if (!next) break;
      stack.push({ peer: order[d], ...next });
    }
    for (const c of this.best.values()) bestCost = Math.min(bestCost, c.cost);
    const found = new Map(this.best);
    this.best.clear();
    for (const [k, v] of before) this.best.set(k, v);
    for (const [k, v] of found) if (better(v, this.best.get(k))) this.best.set(k, v);
    return bestCost;
  }

  /** Nearest-neighbour orders from the fastest peers, then pairwise swaps while they help. */
  heuristic(): void {
    const n = this.peers.length;
    const unit = this.peers.map((_, i) => this.stageCost(i, 0, 1));
    const fixed = this.opts.firstPeer === undefined ? -1 : this.peers.findIndex((p) => p.id === this.opts.firstPeer);
    const byspeed = [...unit.keys()].sort((a, b) => (b === fixed ? 1 : 0) - (a === fixed ? 1 : 0) || unit[a] - unit[b] || a - b);
    let bestOrder: number[] = byspeed;
    let bestCost = this.walk(byspeed);
    for (const start of fixed >= 0 ? [fixed] : byspeed.slice(0, Math.min(n, 8))) {
      const order = [start];
      const used = new Set(order);
      while (order.length < n) {
        const q = order[order.length - 1];
        let bj = -1;
        let bc = Infinity;
        for (const j of byspeed) {
          if (used.has(j)) continue;
          const c = (this.fwdOk[q * n + j] ? this.fwdCost[q * n + j] : 1e9) + unit[j];
          if (c < bc) { bc = c; bj = j; }
        }
        order.push(bj);
        used.add(bj);
      }
      const c = this.walk(order);
      if (c < bestCost) { bestCost = c; bestOrder = order; }
    }
    for (let round = 0; round < 4 * n; round++) {
      let improved = false;
      for (let i = fixed >= 0 ? 1 : 0; i < n && !improved; i++) {
        for (let j = i + 1; j < n && !improved; j++) {
          const o = [...bestOrder];
          [o[i], o[j]] = [o[j], o[i]];
          const c = this.walk(o);
          if (c < bestCost * (1 - 1e-9)) { bestCost = c; bestOrder = o; improved = true; }
        }
      }
      if (!improved) break;
    }
  }

  /** Moves boundaries one layer at a time while the exact cost (then the secondary cost) improves, memory respected. */
  polish(opt: StageCountOption): StageCountOption {
    let cur = opt;
    const idx = new Map(this.peers.map((p, i) => [p.id, i]));
    for (let iter = 0; iter < 4 * this.L; iter++) {
      let improved = false;
      for (let b = 0; b + 1 < cur.placement.length && !improved; b++) {
        for (const d of [-1, 1]) {
          const pl = cur.placement.map((s) => ({ ...s }));
          pl[b].end += d;
          pl[b + 1].start += d;
          if (pl[b].end <= pl[b].start || pl[b + 1].end <= pl[b + 1].start) continue;
          if (!this.memFits(idx.get(pl[b].peer)!, pl[b].start, pl[b].end) || !this.memFits(idx.get(pl[b + 1].peer)!, pl[b + 1].start, pl[b + 1].end)) continue;
          const o = scored(pl, predict(this.model, this.cluster, pl, this.opts, this.links), this.opts.objective);
          if (better(o, cur)) { cur = o; improved = true; break; }
        }
      }
      if (!improved) break;
    }
    return cur;
  }

  run(): StageCountOption[] {
    if (this.peers.length <= this.opts.exhaustiveMaxPeers) this.exhaustive();
    else this.heuristic();
    return [...this.best.values()].map((o) => this.polish(o)).sort((a, b) => a.stages - b.stages);
  }
}

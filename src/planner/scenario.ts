// Reading peers and links from text: `--peer mem=16G,tflops=20,bw=50GB/s,name=a,group=eu`,
// `--link rtt=242ms,bw=20mbit` (the default between any two peers), `--link a-b:rtt=5ms,bw=1gbit`
// (both directions), `--link a>b:…` (one direction), and the same in a JSON scenario file. Link
// endpoints may be peer names or group names ("eu-us", "eu-eu"); a peer pair beats a group pair, which
// beats the default.
import type { Cluster, Link, LinkFigures, PeerProfile } from "./cluster.ts";
import { parseBandwidth, parseBytes, parseDuration, parseNumber } from "./units.ts";

export class ScenarioError extends Error {
  override name = "ScenarioError";
}

type Value = string | number | boolean;

function keyValues(spec: string, what: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of spec.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const eq = p.indexOf("=");
    if (eq <= 0) throw new ScenarioError(`${what} "${spec}": "${p}" is not key=value`);
    m.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
  }
  return m;
}

function objectToMap(o: Record<string, unknown>, what: string): Map<string, Value> {
  const m = new Map<string, Value>();
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") throw new ScenarioError(`${what}: "${k}" must be a string or a number`);
    m.set(k.toLowerCase(), v);
  }
  return m;
}

function unitOrNumber(v: Value, parse: (s: string) => number, key: string, what: string): number {
  try {
    if (typeof v === "number") return v;
    return parse(String(v));
  } catch (e) {
    throw new ScenarioError(`${what}: ${key}: ${(e as Error).message}`);
  }
}

const PEER_KEYS = ["name", "id", "mem", "tflops", "gflops", "flops", "bw", "membw", "group", "decode", "prefill"];

/** A peer from `mem=16G,tflops=20,bw=50GB/s[,name=a][,group=eu][,decode=9ms][,prefill=40us]` or the same keys in an object. */
export function parsePeer(spec: string | Record<string, unknown>, index: number): PeerProfile {
  const what = `peer ${index + 1}`;
  const kv: Map<string, Value> = typeof spec === "string" ? keyValues(spec, what) : objectToMap(spec, what);
  for (const k of kv.keys()) if (!PEER_KEYS.includes(k)) throw new ScenarioError(`${what}: unknown key "${k}" (known: ${PEER_KEYS.join(", ")})`);
  const id = String(kv.get("name") ?? kv.get("id") ?? `p${index + 1}`);
  if (!/^[A-Za-z0-9_.]+$/.test(id)) throw new ScenarioError(`${what}: name "${id}" may use letters, digits, "_" and "." only`);
  const mem = kv.get("mem");
  if (mem === undefined) throw new ScenarioError(`${what}: mem= is required (e.g. mem=16G)`);
  const p: PeerProfile = { id, memBytes: unitOrNumber(mem, parseBytes, "mem", what) };
  const group = kv.get("group");
  if (group !== undefined) p.group = String(group);
  const num = (k: string) => unitOrNumber(kv.get(k)!, (s) => parseNumber(s, k), k, what);
  if (kv.has("tflops")) p.flops = num("tflops") * 1e12;
  if (kv.has("gflops")) p.flops = num("gflops") * 1e9;
  if (kv.has("flops")) p.flops = num("flops");
  const bw = kv.get("bw") ?? kv.get("membw");
  if (bw !== undefined) p.memBandwidth = unitOrNumber(bw, parseBandwidth, "bw", what);
  if (kv.has("decode")) p.decodeSecPerLayer = unitOrNumber(kv.get("decode")!, parseDuration, "decode", what);
  if (kv.has("prefill")) p.prefillSecPerTokenPerLayer = unitOrNumber(kv.get("prefill")!, parseDuration, "prefill", what);
  if (p.flops === undefined && p.memBandwidth === undefined && p.decodeSecPerLayer === undefined && p.prefillSecPerTokenPerLayer === undefined) {
    throw new ScenarioError(`${what}: give its speed: bw= (memory bandwidth, e.g. 50GB/s) and/or tflops=, or measured decode=/prefill= per layer`);
  }
  return p;
}

export interface LinkSpec extends LinkFigures {
  /** Endpoints (peer or group names); absent for the default link. */
  a?: string;
  b?: string;
  /** a > b only, instead of both directions. */
  directed: boolean;
  text: string;
}

/** `rtt=242ms,bw=20mbit`, `a-b:rtt=…,bw=…`, `a>b:…`, or an object {between: "a-b" | from/to, rtt, bw}. */
export function parseLink(spec: string | Record<string, unknown>): LinkSpec {
  let ends: string | undefined;
  let directed = false;
  let kv: Map<string, Value>;
  let text: string;
  if (typeof spec === "string") {
    text = spec;
    const colon = spec.indexOf(":");
    if (colon >= 0) { ends = spec.slice(0, colon).trim(); spec = spec.slice(colon + 1); }
    kv = keyValues(spec, `link "${text}"`);
  } else {
    text = JSON.stringify(spec);
    kv = objectToMap(spec, `link ${text}`);
    if (kv.has("between")) { ends = String(kv.get("between")); kv.delete("between"); }
    if (kv.has("from") || kv.has("to")) { ends = `${kv.get("from")}>${kv.get("to")}`; kv.delete("from"); kv.delete("to"); }
  }
  const what = `link "${text}"`;
  for (const k of kv.keys()) if (k !== "rtt" && k !== "bw") throw new ScenarioError(`${what}: unknown key "${k}" (known: rtt, bw)`);
  if (!kv.has("rtt") || !kv.has("bw")) throw new ScenarioError(`${what}: give both rtt= and bw= (e.g. rtt=242ms,bw=20mbit)`);
  const l: LinkSpec = {
    rttSec: unitOrNumber(kv.get("rtt")!, parseDuration, "rtt", what),
    bytesPerSec: unitOrNumber(kv.get("bw")!, parseBandwidth, "bw", what),
    directed: false,
    text,
  };
  if (ends !== undefined) {
    if (ends.includes(">")) { directed = true; [l.a, l.b] = ends.split(">", 2).map((s) => s.trim()); }
    else l.a = ends; // split on "-" later, against known names
    l.directed = directed;
  }
  return l;
}

/** Builds the cluster: directed links for every pair a link spec names, the unnamed spec as the default. */
export function buildCluster(peers: PeerProfile[], specs: LinkSpec[]): Cluster {
  const peerIds = new Set(peers.map((p) => p.id));
  const groups = new Set(peers.map((p) => p.group).filter((g): g is string => g !== undefined));
  const known = (n: string) => peerIds.has(n) || groups.has(n);
  const members = (n: string): string[] => (peerIds.has(n) ? [n] : peers.filter((p) => p.group === n).map((p) => p.id));
  let defaultLink: LinkFigures | undefined;
  // rank: 3 peer pair, 2 peer-group, 1 group pair.
  const best = new Map<string, { rank: number; link: Link }>();
  for (const s of specs) {
    if (s.a === undefined) {
      if (defaultLink) throw new ScenarioError(`two default links given ("${s.text}"); name the pair for the others (a-b:rtt=…)`);
      defaultLink = { rttSec: s.rttSec, bytesPerSec: s.bytesPerSec };
      continue;
    }
    let a = s.a;
    let b = s.b;
    if (b === undefined) {
      const cuts = [...a.matchAll(/-/g)].map((m) => m.index!).filter((i) => known(a.slice(0, i)) && known(a.slice(i + 1)));
      if (cuts.length !== 1) throw new ScenarioError(`link "${s.text}": cannot read "${a}" as two known peer or group names joined by "-"`);
      b = a.slice(cuts[0] + 1);
      a = a.slice(0, cuts[0]);
    }
    for (const n of [a, b]) if (!known(n)) throw new ScenarioError(`link "${s.text}": "${n}" is neither a peer nor a group`);
    const rank = 1 + (peerIds.has(a) ? 1 : 0) + (peerIds.has(b) ? 1 : 0);
    const pairs: Array<[string, string]> = [];
    for (const x of members(a)) for (const y of members(b)) if (x !== y) { pairs.push([x, y]); if (!s.directed) pairs.push([y, x]); }
    for (const [x, y] of pairs) {
      const k = `${x}\u0000${y}`;
      const cur = best.get(k);
      if (!cur || rank >= cur.rank) best.set(k, { rank, link: { from: x, to: y, rttSec: s.rttSec, bytesPerSec: s.bytesPerSec } });
    }
  }
  return { peers, links: [...best.values()].map((v) => v.link), ...(defaultLink ? { defaultLink } : {}) };
}

/** A scenario file's content, before defaults. */
export interface Scenario {
  model?: string;
  type?: string;
  peers: PeerProfile[];
  links: LinkSpec[];
  /** Any of the CLI's settings by their flag names (stages, tokens, batch, seq, ctx, codec, objective, …). */
  settings: Record<string, string | number | boolean>;
}

export const SCENARIO_SETTINGS = [
  "stages", "tokens", "batch", "seq", "ctx", "codec", "objective", "headroom", "minGain", "hopBudget",
  "interactiveBudget", "kvType", "prefillChunk", "keepGroups",
];

/** Reads a parsed JSON scenario: {model?, type?, peers: [...], links: [...], ...settings}. */
export function parseScenario(json: unknown): Scenario {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ScenarioError("a scenario is a JSON object");
  const o = json as Record<string, unknown>;
  const s: Scenario = { peers: [], links: [], settings: {} };
  for (const [k, v] of Object.entries(o)) {
    if (k === "model" || k === "type") {
      if (typeof v !== "string") throw new ScenarioError(`scenario: "${k}" must be a string`);
      s[k] = v;
    } else if (k === "peers") {
      if (!Array.isArray(v)) throw new ScenarioError(`scenario: "peers" must be an array`);
      s.peers = v.map((p, i) => parsePeer(p as string | Record<string, unknown>, i));
    } else if (k === "links") {
      if (!Array.isArray(v)) throw new ScenarioError(`scenario: "links" must be an array`);
      s.links = v.map((l) => parseLink(l as string | Record<string, unknown>));
    } else if (SCENARIO_SETTINGS.includes(k)) {
      if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") throw new ScenarioError(`scenario: "${k}" must be a string, number or boolean`);
      s.settings[k] = v;
    } else if (k !== "$comment" && k !== "description") {
      throw new ScenarioError(`scenario: unknown key "${k}" (known: model, type, peers, links, ${SCENARIO_SETTINGS.join(", ")})`);
    }
  }
  return s;
}


// `llmesh plan`: the offline calculator. From a model (GGUF file or named shape) and peers/links (flags or
// a JSON scenario) it prints what splitting costs on the network, counted three ways and per activation
// codec; the prefill bytes per stage boundary; the planner's placement with its predictions; and a
// go/no-go against an interactive budget and a per-hop budget. `--json` prints the same content.
import { existsSync, readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { openGGUF } from "../../gguf/reader.ts";
import {
  activationBytesPerToken, buildCluster, codecTable, CODECS, DEFAULT_PLAN_OPTIONS, formatBandwidth, formatDuration,
  formatMemBytes, formatNetBytes, kvBytesPerElement, latencyTable, parseCodec, parseDuration, parseLink, parsePeer,
  parseScenario, plan, PlacementError, predict, prefillTable, profileFromGGUF, profileFromShape, REFERENCE_BYTES_PER_SEC,
  REFERENCE_LINKS, totalWeightBytes, type CodecRow, type KVType, type LatencyRow, type LinkSpec, type ModelProfile,
  type Objective, type Plan, type PlanOptions, type PrefillRow, type Scenario,
} from "../../planner/index.ts";
import { table } from "../format.ts";

interface PlanFlags {
  model?: string;
  type?: string;
  scenario?: string;
  peer: string[];
  link: string[];
  stages?: string;
  tokens?: string;
  batch?: string;
  seq?: string;
  ctx?: string;
  codec?: string;
  objective?: string;
  kvType?: string;
  headroom?: string;
  minGain?: string;
  hopBudget?: string;
  interactiveBudget?: string;
  prefillChunk?: string;
  keepGroups?: boolean;
  json?: boolean;
}

/** Everything `llmesh plan` reports; `--json` prints this object. */
export interface PlanReport {
  model: {
    name: string; source: "shape" | "gguf"; weightType: string; nLayer: number; nEmbd: number;
    weightBytes: number; meanLayerBytes: number; embdBytes: number; headBytes: number; kvBytesPerToken: number;
  };
  settings: {
    tokens: number; batch: number; seq: number; ctx: number; codec: string; objective: Objective; stages: number | null;
    kvType: KVType; headroom: number; minGain: number; hopBudgetSec: number; interactiveBudget: { tokens: number; sec: number };
  };
  network: {
    /** Stage count the tables use, and where it came from. */
    stages: number;
    stagesFrom: "--stages" | "plan" | "one-stage plan, shown for 2";
    tokens: number;
    latency: LatencyRow[];
    link: { name: string; rttSec: number; bytesPerSec: number };
    codecs: CodecRow[];
    prefill: { batch: number; seq: number; rows: PrefillRow[] };
  };
  plan: {
    objective: Objective;
    search: Plan["search"];
    stages: Array<{ peer: string; group?: string; start: number; end: number; memUsedBytes: number; memUsableBytes: number; memBytes: number; decodeSec: number; prefillChunkSec: number }>;
    hops: Array<{ from: string; to: string; carries: string; bytesPerToken: number; rttSec: number; bytesPerSec: number; tokenSec: number; batchStepSec: number }>;
    decodeTokenSec: number; decodeComputeSec: number; decodeNetworkSec: number;
    throughputTokPerSec: number; microBatch: number;
    prefillTokens: number; prefillSec: number;
    /** One prompt of `seq` tokens alone. */
    prefillOneSec: number;
    options: Array<{ stages: number; decodeTokenSec: number; throughputTokPerSec: number; placement: string }>;
    leftOut: Array<{ peer: string; reason: string }>;
    notes: string[];
  } | null;
  /** "cannot place: …" when peers were given and no placement works. */
  error: string | null;
  verdict: {
    /** Network alone at the table's link: T tokens over the ring in the chosen codec; the per-hop time of a decode step of the batch. */
    network: { interactiveSec: number; interactiveBudgetSec: number; interactiveGo: boolean; hopSec: number; hopBudgetSec: number; batchGo: boolean };
    /** With the placement's compute (null without one). */
    plan: { interactiveSec: number; interactiveBudgetSec: number; interactiveGo: boolean; worstHopSec: number; hopBudgetSec: number; batchGo: boolean } | null;
  };
}

function int(name: string, v: string | number | boolean | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

function frac(name: string, v: string | number | boolean | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new Error(`${name} must be a fraction in [0, 1), got "${v}"`);
  return n;
}

function seconds(name: string, v: string | number | boolean | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v === "number") return v;
  if (/^(none|off)$/i.test(String(v))) return Infinity;
  try {
    return parseDuration(String(v));
  } catch (e) {
    throw new Error(`${name}: ${(e as Error).message}`);
  }
}

/** "100:2s" → 100 tokens in 2 seconds. */
function parseInteractiveBudget(v: string | number | boolean | undefined): { tokens: number; sec: number } {
  if (v === undefined) return { tokens: 100, sec: 2 };
  const m = /^\s*(\d+)\s*:\s*(.+)$/.exec(String(v));
  if (!m) throw new Error(`--interactive-budget must be TOKENS:TIME, e.g. 100:2s, got "${v}"`);
  return { tokens: Number(m[1]), sec: parseDuration(m[2]) };
}

function loadModel(arg: string, type: string | undefined): { model: ModelProfile; source: "shape" | "gguf" } {
  if (existsSync(arg) || /\.gguf$/i.test(arg)) {
    if (type !== undefined) throw new Error("--type applies to named shapes; a GGUF file has its own types");
    const f = openGGUF(arg);
    try {
      return { model: profileFromGGUF(f), source: "gguf" };
    } finally {
      f.close();
    }
  }
  return { model: profileFromShape(arg, type ?? "F16"), source: "shape" };
}

/** Builds the report from parsed flags (pure apart from reading the model/scenario files). */
export function buildPlanReport(flags: PlanFlags): PlanReport {
  let scenario: Scenario = { peers: [], links: [], settings: {} };
  if (flags.scenario) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(flags.scenario, "utf8"));
    } catch (e) {
      throw new Error(`--scenario ${flags.scenario}: ${(e as Error).message}`);
    }
    scenario = parseScenario(json);
  }
  const s = scenario.settings;
  const pick = <K extends keyof PlanFlags>(flag: K, key: string) => (flags[flag] ?? s[key]) as string | number | boolean | undefined;

  const modelArg = flags.model ?? scenario.model;
  if (!modelArg) throw new Error("give --model (a GGUF file or a shape name such as qwen2.5-7b)");
  const { model, source } = loadModel(modelArg, flags.type ?? scenario.type);

  const tokens = int("--tokens", pick("tokens", "tokens"), 100, 1);
  const batch = int("--batch", pick("batch", "batch"), 8, 1);
  const seq = int("--seq", pick("seq", "seq"), 512, 0);
  const ctx = int("--ctx", pick("ctx", "ctx"), seq + tokens, 1);
  const stagesRaw = pick("stages", "stages");
  const stages = stagesRaw === undefined ? undefined : int("--stages", stagesRaw, 1, 1);
  const codec = parseCodec(String(pick("codec", "codec") ?? "f16"));
  const objective = String(pick("objective", "objective") ?? "interactive");
  if (objective !== "interactive" && objective !== "batch") throw new Error(`--objective must be interactive or batch, got "${objective}"`);
  const kvType = String(pick("kvType", "kvType") ?? "f32");
  if (kvType !== "f32" && kvType !== "f16") throw new Error(`--kv-type must be f32 or f16, got "${kvType}"`);
  const opts: PlanOptions = {
    ...DEFAULT_PLAN_OPTIONS,
    objective, codec, batch, contextTokens: ctx, kvType, prefillTokens: batch * seq,
    prefillChunk: int("--prefill-chunk", pick("prefillChunk", "prefillChunk"), DEFAULT_PLAN_OPTIONS.prefillChunk, 1),
    headroom: frac("--headroom", pick("headroom", "headroom"), DEFAULT_PLAN_OPTIONS.headroom),
    minGain: frac("--min-gain", pick("minGain", "minGain"), DEFAULT_PLAN_OPTIONS.minGain),
    maxHopSec: seconds("--hop-budget", pick("hopBudget", "hopBudget"), DEFAULT_PLAN_OPTIONS.maxHopSec),
    keepGroups: flags.keepGroups === false ? false : s.keepGroups === false ? false : true,
    ...(stages !== undefined ? { stages } : {}),
  };
  const budget = parseInteractiveBudget(pick("interactiveBudget", "interactiveBudget"));

  const peers = [...scenario.peers, ...flags.peer.map((p, i) => parsePeer(p, scenario.peers.length + i))];
  const linkSpecs: LinkSpec[] = [...scenario.links, ...flags.link.map((l) => parseLink(l))];

  let result: Plan | null = null;
  let error: string | null = null;
  let prefillOneSec = 0;
  if (peers.length > 0) {
    const cluster = buildCluster(peers, linkSpecs);
    if (!cluster.defaultLink && peers.length > 1) {
      const named = new Set(cluster.links.map((l) => `${l.from}\u0000${l.to}`));
      const missing = peers.flatMap((a) => peers.filter((b) => b !== a && !named.has(`${a.id}\u0000${b.id}`)).map((b) => `${a.id}>${b.id}`));
      if (missing.length > 0) throw new Error(`no link for ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", …" : ""}: give a default --link rtt=…,bw=…`);
    }
    try {
      result = plan(model, cluster, opts);
      prefillOneSec = predict(model, cluster, result.placement, { ...opts, batch: 1, prefillTokens: seq }).prefillSec;
    } catch (e) {
      if (!(e instanceof PlacementError)) throw e;
      error = e.message;
    }
  } else if (stages === undefined) {
    throw new Error("give peers (--peer or --scenario) to place the model, or --stages K for the network figures alone");
  }

  // The tables' stage count: --stages, else the plan's; a one-stage plan sends nothing per token, so its
  // tables show what a split in two would cost.
  const planK = result?.placement.length ?? 1;
  const K = stages ?? (planK > 1 ? planK : 2);
  const stagesFrom: PlanReport["network"]["stagesFrom"] = stages !== undefined ? "--stages" : planK > 1 ? "plan" : "one-stage plan, shown for 2";
  const userLinks = linkSpecs.map((l) => ({ name: l.a === undefined ? "--link (default)" : l.b === undefined ? l.a : `${l.a}>${l.b}`, rttSec: l.rttSec, bytesPerSec: l.bytesPerSec }));
  const tableLink = userLinks.find((l) => l.name === "--link (default)") ?? userLinks[0]
    ?? { name: "reference WAN (242 ms, 20 Mbit/s)", rttSec: REFERENCE_LINKS[0].rttSec, bytesPerSec: REFERENCE_BYTES_PER_SEC };
  const codecs = codecTable(model.nEmbd, tokens, K, tableLink.rttSec, tableLink.bytesPerSec);
  const ringCodec = codecs.find((c) => c.codec === codec)!;
  const budgetSec = (tokens * budget.sec) / budget.tokens;
  const netHopSec = K > 1 ? tableLink.rttSec / 2 + (batch * activationBytesPerToken(model.nEmbd, codec)) / tableLink.bytesPerSec : 0;

  const pr = result?.prediction;
  return {
    model: {
      name: model.name, source, weightType: model.weightType, nLayer: model.nLayer, nEmbd: model.nEmbd,
      weightBytes: totalWeightBytes(model), meanLayerBytes: model.layerBytes.reduce((a, b) => a + b, 0) / model.nLayer,
      embdBytes: model.embdBytes, headBytes: model.headBytes,
      kvBytesPerToken: model.kvElementsPerTokenPerLayer * kvBytesPerElement(kvType) * model.nLayer,
    },
    settings: {
      tokens, batch, seq, ctx, codec, objective, stages: stages ?? null, kvType, headroom: opts.headroom, minGain: opts.minGain,
      hopBudgetSec: opts.maxHopSec, interactiveBudget: budget,
    },
    network: {
      stages: K, stagesFrom, tokens,
      latency: latencyTable(tokens, K, [...REFERENCE_LINKS, ...userLinks.filter((u) => !REFERENCE_LINKS.some((r) => r.rttSec === u.rttSec))]),
      link: tableLink, codecs,
      prefill: { batch, seq, rows: prefillTable(model.nEmbd, batch, seq, tableLink.rttSec, tableLink.bytesPerSec) },
    },
    plan: result && pr ? {
      objective: result.objective, search: result.search,
      stages: pr.stages, hops: pr.hops,
      decodeTokenSec: pr.decodeTokenSec, decodeComputeSec: pr.decodeComputeSec, decodeNetworkSec: pr.decodeNetworkSec,
      throughputTokPerSec: pr.throughputTokPerSec, microBatch: pr.microBatch, prefillTokens: pr.prefillTokens, prefillSec: pr.prefillSec, prefillOneSec,
      options: result.options.map((o) => ({
        stages: o.stages, decodeTokenSec: o.prediction.decodeTokenSec, throughputTokPerSec: o.prediction.throughputTokPerSec,
        placement: o.placement.map((x) => `${x.peer}[${x.start},${x.end})`).join(" → "),
      })),
      leftOut: result.leftOut, notes: result.notes,
    } : null,
    error,
    verdict: {
      network: {
        interactiveSec: ringCodec.ringTotalSec, interactiveBudgetSec: budgetSec, interactiveGo: ringCodec.ringTotalSec <= budgetSec,
        hopSec: netHopSec, hopBudgetSec: opts.maxHopSec, batchGo: netHopSec <= opts.maxHopSec,
      },
      plan: pr ? {
        interactiveSec: tokens * pr.decodeTokenSec, interactiveBudgetSec: budgetSec, interactiveGo: tokens * pr.decodeTokenSec <= budgetSec,
        worstHopSec: pr.worstHopSec, hopBudgetSec: opts.maxHopSec, batchGo: pr.worstHopSec <= opts.maxHopSec,
      } : null,
    },
  };
}

const indent = (s: string) => s.replace(/^/gm, "  ");
const go = (ok: boolean) => (ok ? "GO" : "NO-GO");
const rttName = (r: { name: string; rttSec: number }) => `${formatDuration(r.rttSec)} ${r.name}`;

/** The human-readable report. */
export function renderPlanReport(r: PlanReport): string {
  const out: string[] = [];
  const m = r.model;
  const n = r.network;
  const K = n.stages;
  const T = n.tokens;
  out.push(
    `Model ${m.name} (${m.source === "shape" ? `shape, ${m.weightType} weights` : `GGUF, ${m.weightType} weights`}): ${m.nLayer} layers, n_embd ${m.nEmbd}, ` +
    `${formatMemBytes(m.weightBytes)} of weights (${formatMemBytes(m.meanLayerBytes)} per layer, embedding ${formatMemBytes(m.embdBytes)}, head ${formatMemBytes(m.headBytes)}), ` +
    `KV ${formatMemBytes(m.kvBytesPerToken)} per token (${r.settings.kvType} cache)`,
    "",
    `Network time for ${T} tokens over K=${K} stage${K === 1 ? "" : "s"}${n.stagesFrom === "plan" ? " (the plan's)" : n.stagesFrom === "--stages" ? "" : " (the plan uses one stage and sends nothing per token; this is what a split in two would cost)"}, latency only:`,
    indent(table([
      ["RTT", `published T·(K−1)·RTT/2`, `llmesh ring T·K·RTT/2`, `llama.cpp RPC T·(K−1)·2·RTT`],
      ...n.latency.map((row) => [rttName(row), formatDuration(row.publishedSec), formatDuration(row.ringSec), formatDuration(row.rpcSec)]),
    ])),
    "",
    `Activations per token per hop at ${rttName(n.link)}, ${formatBandwidth(n.link.bytesPerSec)}:`,
    indent(table([
      ["codec", "bytes/token/hop", "transfer/hop", `llmesh ring, ${T} tokens (RTT + transfers)`],
      ...n.codecs.map((c) => [c.codec, formatNetBytes(c.bytesPerToken), formatDuration(c.transferSec), formatDuration(c.ringTotalSec)]),
    ])),
    "",
    `Prefill of batch ${n.prefill.batch} × ${n.prefill.seq} tokens, per stage boundary at ${formatBandwidth(n.link.bytesPerSec)}:`,
    indent(table([
      ["codec", "bytes/boundary", "transfer/hop", "hop (RTT/2 + transfer)"],
      ...n.prefill.rows.map((p) => [p.codec, formatNetBytes(p.bytesPerBoundary), formatDuration(p.transferSec), formatDuration(p.hopSec)]),
    ])),
    "",
  );
  const st = r.settings;
  const budgetText = `${st.interactiveBudget.tokens} tokens in ${formatDuration(st.interactiveBudget.sec)}`;
  if (r.plan) {
    const p = r.plan;
    out.push(
      `Placement (objective ${p.objective}, codec ${st.codec}, ${p.stages.length} stage${p.stages.length === 1 ? "" : "s"}${st.stages !== null ? " forced" : ""}, ${p.search} search):`,
      indent(table([
        ["stage", "peer", "group", "layers", "memory used / usable (of total)", "decode/token", `prefill/${p.prefillTokens > 0 ? "chunk" : "-"}`],
        ...p.stages.map((s, i) => [
          String(i), s.peer, s.group ?? "-", `[${s.start}, ${s.end})`,
          `${formatMemBytes(s.memUsedBytes)} / ${formatMemBytes(s.memUsableBytes)} (${formatMemBytes(s.memBytes)})`,
          formatDuration(s.decodeSec), formatDuration(s.prefillChunkSec),
        ]),
      ])),
    );
    if (p.hops.length > 0) {
      out.push("  ring: " + [...p.stages.map((s) => s.peer), p.stages[0].peer].join(" → "));
      out.push(indent(table([
        ["hop", "carries", "bytes/token", "RTT", "bandwidth", "one token", `decode step of ${st.batch}`],
        ...p.hops.map((h) => [`${h.from} → ${h.to}`, h.carries, formatNetBytes(h.bytesPerToken), formatDuration(h.rttSec), formatBandwidth(h.bytesPerSec), formatDuration(h.tokenSec), formatDuration(h.batchStepSec)]),
      ])));
    }
    for (const l of p.leftOut) out.push(`  left out: ${l.peer}: ${l.reason}`);
    for (const note of p.notes) out.push(`  note: ${note}`);
    if (p.options.length > 1) {
      out.push("  best per stage count:");
      out.push(indent(indent(table([
        ["stages", "decode/token", `throughput (${st.batch} streams)`, "placement"],
        ...p.options.map((o) => [String(o.stages), formatDuration(o.decodeTokenSec), `${o.throughputTokPerSec.toFixed(1)} tok/s`, o.placement]),
      ]))));
    }
    out.push(
      "",
      "Predictions:",
      indent(table([
        ["per-token decode latency", `${formatDuration(p.decodeTokenSec)} (compute ${formatDuration(p.decodeComputeSec)} + network ${formatDuration(p.decodeNetworkSec)})`],
        [`${T} tokens, one stream`, formatDuration(T * p.decodeTokenSec)],
        [`throughput, ${st.batch} streams`, `${p.throughputTokPerSec.toFixed(1)} tok/s (micro-batches of ${p.microBatch})`],
        [`prefill one prompt of ${st.seq} tokens`, formatDuration(p.prefillOneSec)],
        [`prefill ${st.batch} × ${st.seq} tokens`, formatDuration(p.prefillSec)],
      ])),
      "",
    );
  } else if (r.error) {
    out.push(`Placement: ${r.error}`, "");
  }
  const v = r.verdict;
  out.push(
    `Go/no-go (interactive budget ${budgetText}; batch per-hop budget ${formatDuration(st.hopBudgetSec)}):`,
    indent(table([
      ["", "interactive", "batch (one-way hop, decode step of the batch)"],
      [`network alone (${rttName(n.link)}, ${st.codec}, K=${K})`,
        `${go(v.network.interactiveGo)}: ${T} tokens in ${formatDuration(v.network.interactiveSec)} (budget ${formatDuration(v.network.interactiveBudgetSec)})`,
        `${go(v.network.batchGo)}: ${formatDuration(v.network.hopSec)} per hop`],
      ...(v.plan ? [[
        "placement, with compute",
        `${go(v.plan.interactiveGo)}: ${T} tokens in ${formatDuration(v.plan.interactiveSec)}`,
        `${go(v.plan.batchGo)}: worst hop ${formatDuration(v.plan.worstHopSec)}`,
      ]] : r.error ? [["placement", "NO-GO: cannot place", "NO-GO: cannot place"]] : []),
    ])),
  );
  return out.join("\n") + "\n";
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** The `plan` command; `write` receives the whole output. */
export function planCommand(write: (s: string) => void): Command {
  return new Command("plan")
    .description("offline calculator: network cost of splitting a model, and where the planner would put its layers")
    .option("--model <file|shape>", "GGUF file or a named shape (e.g. qwen2.5-7b, llama-3.1-70b)")
    .option("--type <type>", "weight type for a named shape: F16 (default), BF16, Q8_0, Q4_K, Q5_K, Q6_K, Q4_0 …")
    .option("--scenario <file.json>", "JSON: {model, type, peers: [...], links: [...], and any setting below}")
    .option("--peer <spec>", "a peer: mem=16G,tflops=20,bw=50GB/s[,name=a][,group=eu][,decode=9ms][,prefill=40us] (repeat)", collect, [])
    .option("--link <spec>", "rtt=242ms,bw=20mbit (default link), a-b:rtt=…,bw=… (a pair, both ways), a>b:… (one way); names may be groups (repeat)", collect, [])
    .option("--stages <K>", "force K stages (default: the planner's choice)")
    .option("--tokens <T>", "generated tokens per request (default 100)")
    .option("--batch <B>", "concurrent sequences (default 8)")
    .option("--seq <S>", "prompt length (default 512)")
    .option("--ctx <N>", "KV positions reserved per sequence (default S + T)")
    .addOption(new Option("--codec <codec>", "activation codec (default f16)").choices([...CODECS]))
    .addOption(new Option("--objective <o>", "interactive: lowest per-token latency; batch: highest throughput (default interactive)").choices(["interactive", "batch"]))
    .addOption(new Option("--kv-type <t>", "KV cache storage (default f32, what the engine stores today)").choices(["f32", "f16"]))
    .option("--headroom <fraction>", "memory kept free on each peer (default 0.1)")
    .option("--min-gain <fraction>", "more stages must be this much better to be chosen (default 0.05)")
    .option("--hop-budget <time>", "links slower than this one-way for a decode step of the batch are not used (default 200ms; none to disable)")
    .option("--interactive-budget <T:time>", "tokens and the time they must take (default 100:2s)")
    .option("--prefill-chunk <n>", "tokens per prefill chunk (default 128)")
    .option("--no-keep-groups", "let a pipeline span peer groups even when one group can hold the model")
    .option("--json", "machine-readable output (the same content)")
    .action((flags: PlanFlags) => {
      const report = buildPlanReport(flags);
      write(flags.json ? JSON.stringify(report, (_k, v: unknown) => (v === Infinity ? "Infinity" : v), 2) + "\n" : renderPlanReport(report));
    });
}

export function registerPlan(program: Command): void {
  program.addCommand(planCommand((s) => process.stdout.write(s)));
}

/** Runs `llmesh plan ARGV…` in-process and returns what it prints (throws on bad input). */
export function runPlan(argv: string[]): string {
  let out = "";
  const cmd = planCommand((s) => { out += s; });
  cmd.exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => {} });
  cmd.parse(argv, { from: "user" });
  return out;
}

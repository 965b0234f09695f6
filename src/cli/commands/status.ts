// `llmesh status`: the mesh as the host sees it (GET /v1/mesh): peers, layer ranges, link RTTs and
// per-stage compute / wait / transfer time per token, resident memory, and the placement's predicted
// per-token time (planner) beside the measured one.
import type { Command } from "commander";
import type { MeshStatus } from "../../mesh/host.ts";

interface StatusOptions {
  url: string;
  json?: boolean;
  apiKey?: string;
}

function fmt(x: number | undefined, d = 2): string {
  return x === undefined ? "-" : x.toFixed(d);
}

export function formatStatus(s: MeshStatus): string {
  const lines = [
    `mesh: ${s.phase}; model ${s.model} (${s.fingerprint.slice(0, 12)}…); codec ${s.codec}; protocol v${s.protocolVersion}; ${s.stages.length} stage(s); placement epoch ${s.epoch}`,
    ["stage", "role", "peer", "name", "layers", "rtt ms", "ms/layer", "predicted ms/tok", "compute ms/tok", "wait ms/tok", "transfer ms/tok", "bytes/tok out", "rss MiB", "wasm MiB"].join("\t"),
  ];
  const pl = s.placement;
  for (const st of s.stages) {
    lines.push(
      [
        st.index, st.role, st.peer.length > 16 ? `…${st.peer.slice(-12)}` : st.peer, st.name, st.range ? `[${st.range.start}, ${st.range.end})` : "-",
        fmt(st.rttMs), fmt(st.msPerLayer, 3), fmt(pl?.stages.find((x) => x.peer === st.peer)?.predictedMsPerToken, 3),
        fmt(st.stats?.computeMsPerToken, 3), fmt(st.stats?.waitMsPerToken, 3), fmt(st.stats?.transferMsPerToken, 3),
        st.stats ? String(Math.round(st.stats.bytesOutPerToken)) : "-", st.rssBytes !== undefined ? (st.rssBytes / 2 ** 20).toFixed(0) : "-",
        st.kernelBytes !== undefined ? (st.kernelBytes / 2 ** 20).toFixed(0) : "-",
      ].join("\t"),
    );
  }
  if (pl) {
    lines.push(
      `placement: ${pl.source} (${pl.objective}); per token (one stream): predicted ${fmt(pl.predictedMsPerToken)} ms, measured ${fmt(pl.measuredMsPerToken)} ms` +
        `${pl.measuredFrom ? ` (${pl.measuredFrom})` : ""}; predicted ${fmt(pl.predictedTokPerSec, 1)} tok/s with a full batch; links: RTT by libp2p ping, bandwidth ${pl.bandwidth === "probed" ? "by the probe" : "from --link-bandwidth"}`,
    );
    for (const h of pl.hops) lines.push(`  hop ${h.from.length > 16 ? `…${h.from.slice(-12)}` : h.from} → ${h.to.length > 16 ? `…${h.to.slice(-12)}` : h.to}: RTT ${fmt(h.rttMs)} ms, ${fmt((h.bytesPerSec * 8) / 1e6, 1)} Mbit/s, predicted ${fmt(h.predictedMs)} ms/token`);
    for (const n of pl.notes) lines.push(`  note: ${n}`);
  }
  if (s.pipeline) lines.push(`pipeline: up to ${s.pipeline.maxInFlight} step(s) in flight; the last stage sends back ${s.pipeline.replyBytesPerStep} B/step`);
  if (s.spares.length > 0) lines.push(`spares (joined, no layers): ${s.spares.map((p) => `${p.name} (${fmt(p.msPerLayer, 3)} ms/layer)`).join(", ")}`);
  const ev = Object.entries(s.failover.events).map(([k, v]) => `${k} ${v}`).join(", ");
  if (ev) {
    const f = s.failover;
    lines.push(`membership: ${ev}; replayed ${f.replayedSequences} sequence(s) / ${f.replayedTokens} token(s); ${f.resentSteps} step(s) sent again; longest time without a ring ${f.worstRecoveryMs} ms`);
  }
  return lines.join("\n");
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("show the mesh: peers, layer ranges, RTTs, per-stage timings")
    .option("--url <url>", "the host's API", "http://127.0.0.1:9337")
    .option("--json", "print the raw JSON")
    .option("--api-key <key>", "API key (default: $LLMESH_API_KEY)")
    .action(async (opts: StatusOptions) => {
      const key = opts.apiKey ?? process.env.LLMESH_API_KEY;
      const r = await fetch(`${opts.url.replace(/\/$/, "")}/v1/mesh`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
      if (!r.ok) throw new Error(`${opts.url}/v1/mesh: HTTP ${r.status} (is it a mesh host? start it with llmesh serve --mesh)`);
      const s = (await r.json()) as MeshStatus;
      process.stdout.write(opts.json ? JSON.stringify(s, null, 2) + "\n" : formatStatus(s) + "\n");
    });
}

// Units for the planner's inputs and outputs: byte sizes, bandwidths, durations, FLOP rates.
//
// Parsing (strings as a person types them; bare numbers are refused so that "16" never silently
// means 16 bytes or 16 seconds):
//   sizes       16G, 16GiB, 512M, 1.5T  → binary (2^30 …);  16GB, 512MB → decimal (1e9 …)
//   bandwidths  20mbit, 20Mbit/s, 20Mbps, 1gbit → bits per second (decimal);
//               50GB/s, 100MB/s, 1GiB/s → bytes per second;  all returned in bytes per second
//   durations   242ms, 0.242s, 500us, 500µs → seconds
// Formatting: decimal units for network sizes and rates (MB, Mbit/s), binary for memory (GiB).

export class UnitError extends Error {
  override name = "UnitError";
}

const NUM = String.raw`([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)`;

function split(s: string, what: string, example: string): [number, string] {
  const m = new RegExp(`^\\s*${NUM}\\s*([A-Za-zµ/]*)\\s*$`).exec(s);
  if (!m) throw new UnitError(`cannot read ${what} "${s}" (example: ${example})`);
  const n = Number(m[1]);
  if (!Number.isFinite(n) || n < 0) throw new UnitError(`cannot read ${what} "${s}" (example: ${example})`);
  if (m[2] === "") throw new UnitError(`${what} "${s}" needs a unit (example: ${example})`);
  return [n, m[2]];
}

const PREFIX: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
const BIN_PREFIX: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A memory size in bytes: 16G / 16GiB / 16Gi (binary), 16GB (decimal), 4096B. */
export function parseBytes(s: string): number {
  const [n, unit] = split(s, "size", "16G");
  const m = /^([kmgt]?)(i?)(b?)$/i.exec(unit);
  if (!m) throw new UnitError(`unknown size unit in "${s}" (use B, K, M, G, T; KB/MB/GB for decimal)`);
  const p = m[1].toLowerCase();
  const binary = m[2] !== "" || m[3] === "" || p === "";
  return Math.round(n * (binary ? BIN_PREFIX[p] : PREFIX[p]));
}

/** A bandwidth in bytes per second: 20mbit, 20Mbit/s, 20Mbps (bits) or 50GB/s, 1GiB/s (bytes). */
export function parseBandwidth(s: string): number {
  const [n, unitRaw] = split(s, "bandwidth", "20mbit or 50GB/s");
  let unit = unitRaw;
  let perSecond = false;
  if (/\/s$/i.test(unit)) { unit = unit.slice(0, -2); perSecond = true; }
  else if (/bps$/i.test(unit)) { unit = unit.slice(0, -3) + "bit"; perSecond = true; }
  const m = /^([kmgtKMGT]?)(i?)(bits?|b|B)$/.exec(unit);
  if (!m) throw new UnitError(`unknown bandwidth unit in "${s}" (use kbit, mbit, gbit for bits per second; MB/s, GB/s for bytes per second)`);
  const bits = m[3].startsWith("bit") || m[3] === "b";
  if (!perSecond && !bits) throw new UnitError(`bandwidth "${s}": write bytes per second as ${n}${unitRaw}/s`);
  const p = m[1].toLowerCase();
  const scale = m[2] === "i" ? BIN_PREFIX[p] : PREFIX[p];
  return bits ? (n * scale) / 8 : n * scale;
}

/** A duration in seconds: 242ms, 0.242s, 500us, 500µs, 1min. */
export function parseDuration(s: string): number {
  const [n, unit] = split(s, "duration", "242ms");
  const u = unit.toLowerCase();
  const scale = u === "s" || u === "sec" ? 1 : u === "ms" ? 1e-3 : u === "us" || u === "µs" ? 1e-6 : u === "ns" ? 1e-9 : u === "min" ? 60 : NaN;
  if (Number.isNaN(scale)) throw new UnitError(`unknown duration unit in "${s}" (use s, ms, us)`);
  return n * scale;
}

/** A plain positive number (tflops=20, --batch 8). */
export function parseNumber(s: string, what: string): number {
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n) || n < 0) throw new UnitError(`${what} must be a non-negative number, got "${s}"`);
  return n;
}

function trim(x: number, digits: number): string {
  return x.toPrecision(digits).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "").replace(/e\+?/, "e");
}

/** 0.0213 → "21.3 ms", 36.3 → "36.3 s", 2.5e-6 → "2.5 µs". Three significant digits. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return sec > 0 ? "∞" : "-";
  const a = Math.abs(sec);
  if (a === 0) return "0 s";
  if (a < 1e-3) return `${trim(sec * 1e6, 3)} µs`;
  if (a < 1) return `${trim(sec * 1e3, 3)} ms`;
  if (a < 1000) return `${trim(sec, 3)} s`;
  return `${(sec / 60).toFixed(1)} min`;
}

/** Decimal bytes for network quantities: 7168 → "7.17 kB", 29360128 → "29.4 MB". */
export function formatNetBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return i === 0 ? `${Math.round(n)} B` : `${trim(n, 3)} ${units[i]}`;
}

/** Binary bytes for memory: 16 * 2^30 → "16.0 GiB". */
export function formatMemBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Bytes per second as bits per second: 2.5e6 → "20 Mbit/s"; 5e10 → "400 Gbit/s (50 GB/s)" is left to callers. */
export function formatBandwidth(bytesPerSec: number): string {
  if (!Number.isFinite(bytesPerSec)) return "∞";
  let bits = bytesPerSec * 8;
  const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
  let i = 0;
  while (bits >= 1000 && i < units.length - 1) { bits /= 1000; i++; }
  return `${trim(bits, 3)} ${units[i]}`;
}

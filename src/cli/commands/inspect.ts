// `llmesh inspect FILE`: metadata, the tensor table and memory per layer of a GGUF file.
import type { Command } from "commander";
import { openGGUF, type GGUFFile } from "../../gguf/reader.ts";
import { ggmlTypeName, type GGUFValue } from "../../gguf/types.ts";
import { formatBytes, table } from "../format.ts";

function preview(v: GGUFValue): string {
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? v.slice(0, 77) + "..." : v);
  if (typeof v !== "object") return String(v);
  const arr = v as ArrayLike<unknown>;
  const head = Array.from({ length: Math.min(arr.length, 5) }, (_, i) => JSON.stringify(arr[i], (_k, x) => (typeof x === "bigint" ? x.toString() : x)));
  return `[${arr.length} items] ${head.join(", ")}${arr.length > 5 ? ", …" : ""}`;
}

/** Bytes per layer (`blk.N.*`) plus the non-layer tensors, in file order of first appearance. */
export function memoryPerLayer(f: GGUFFile): Array<{ group: string; bytes: number; tensors: number }> {
  const groups = new Map<string, { bytes: number; tensors: number }>();
  for (const t of f.tensors.values()) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    const g = m ? `layer ${m[1]}` : t.name;
    const e = groups.get(g) ?? { bytes: 0, tensors: 0 };
    e.bytes += t.nBytes;
    e.tensors += 1;
    groups.set(g, e);
  }
  return [...groups].map(([group, e]) => ({ group, ...e }));
}

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("print a GGUF file's metadata, tensor table and memory per layer")
    .argument("<file>", "GGUF file")
    .option("--json", "machine-readable output")
    .action((file: string, opts: { json?: boolean }) => {
      const f = openGGUF(file);
      try {
        const tensors = [...f.tensors.values()];
        const total = tensors.reduce((a, t) => a + t.nBytes, 0);
        if (opts.json) {
          const meta = Object.fromEntries([...f.metadata].map(([k, e]) => [k, preview(e.value)]));
          const out = { file, version: f.version, alignment: f.alignment, fileSize: f.fileSize, tensorBytes: total, metadata: meta, tensors: tensors.map((t) => ({ name: t.name, type: ggmlTypeName(t.type), dims: t.dims, bytes: t.nBytes, offset: t.fileOffset })), layers: memoryPerLayer(f) };
          process.stdout.write(JSON.stringify(out, null, 2) + "\n");
          return;
        }
        const lines: string[] = [];
        lines.push(`${file}: GGUF v${f.version}, ${f.tensors.size} tensors, ${formatBytes(total)} of weights, alignment ${f.alignment}`, "", "Metadata:");
        for (const [k, e] of f.metadata) lines.push(`  ${k} = ${preview(e.value)}`);
        lines.push("", "Tensors:");
        lines.push(table([["name", "type", "shape", "bytes"], ...tensors.map((t) => [t.name, ggmlTypeName(t.type), t.dims.join(" × "), formatBytes(t.nBytes)])]).replace(/^/gm, "  "));
        lines.push("", "Memory per layer:");
        lines.push(table([["part", "tensors", "bytes"], ...memoryPerLayer(f).map((g) => [g.group, String(g.tensors), formatBytes(g.bytes)])]).replace(/^/gm, "  "));
        process.stdout.write(lines.join("\n") + "\n");
      } finally {
        f.close();
      }
    });
}

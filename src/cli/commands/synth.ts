// `llmesh synth`: write a random-weight model of a real shape with a real vocabulary.
import type { Command } from "commander";
import { SingleBar, Presets } from "cli-progress";
import { GGMLType, type GGMLTypeName } from "../../gguf/types.ts";
import { getShape, SHAPES, type Arch } from "../../engine/synth/shapes.ts";
import { writeSynthModel } from "../../engine/synth/synth.ts";
import { loadVocabMetadata } from "../../engine/synth/load-vocab.ts";
import { parseIntFlag } from "../format.ts";

const SYNTH_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"];

interface SynthFlags { arch?: string; shape: string; type: string; vocab: string; output: string; seed: number; layers?: number }

export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description("write a random-weight GGUF model of a real shape, for benchmarks and conformance tests")
    .requiredOption("--shape <name>", `model shape: ${[...SHAPES.keys()].join(", ")}`)
    .option("--arch <arch>", "architecture (llama, qwen2, qwen3); default: the shape's own")
    .option("--type <type>", `weight type: ${SYNTH_TYPES.join(", ")}`, "Q8_0")
    .requiredOption("--vocab <file>", "GGUF file whose vocabulary (tokenizer.* metadata) the model gets")
    .requiredOption("-o, --output <file>", "output GGUF path")
    .option("--seed <n>", "random seed", parseIntFlag("--seed"), 1)
    .option("--layers <n>", "number of layers (default: the shape's)", parseIntFlag("--layers"))
    .action((flags: SynthFlags) => {
      const shape = getShape(flags.shape);
      const typeName = flags.type.toUpperCase();
      if (!SYNTH_TYPES.includes(typeName)) throw new Error(`--type must be one of ${SYNTH_TYPES.join(", ")}, got "${flags.type}"`);
      const arch = flags.arch as Arch | undefined;
      if (arch && !["llama", "qwen2", "qwen3"].includes(arch)) throw new Error(`--arch must be llama, qwen2 or qwen3, got "${arch}"`);
      const vocab = loadVocabMetadata(flags.vocab);
      const bar = new SingleBar({ format: "synth [{bar}] {value}/{total} tensors | {duration}s", stream: process.stderr, hideCursor: true }, Presets.shades_classic);
      let started = false;
      writeSynthModel(flags.output, { shape, arch, type: GGMLType[typeName as GGMLTypeName], vocab, seed: flags.seed, nLayer: flags.layers }, (i, total) => {
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(i);
      });
      bar.stop();
      process.stderr.write(`wrote ${flags.output}\n`);
    });
}

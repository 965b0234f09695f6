// `llmesh tokenize --model F --text T`: the token ids of a text under a model's own tokenizer.
import type { Command } from "commander";
import { openGGUF } from "../../gguf/reader.ts";
import { Tokenizer } from "../../tokenizer/tokenizer.ts";

interface TokenizeFlags { model: string; text: string; addSpecial?: boolean; parseSpecial?: boolean; json?: boolean; pieces?: boolean }

export function registerTokenize(program: Command): void {
  program
    .command("tokenize")
    .description("print the token ids of a text, separated by spaces")
    .requiredOption("-m, --model <file>", "GGUF model (only its vocabulary is read)")
    .requiredOption("-t, --text <text>", "text to tokenize")
    .option("--add-special", "add BOS/EOS as the model's metadata asks (default: none)")
    .option("--parse-special", "turn special-token text like <|im_start|> into its id")
    .option("--pieces", "print id=piece pairs, one per line")
    .option("--json", "print a JSON array of ids")
    .action((flags: TokenizeFlags) => {
      const f = openGGUF(flags.model);
      let tok: Tokenizer;
      try {
        tok = Tokenizer.fromMetadata((k) => f.getValue(k));
      } finally {
        f.close();
      }
      const ids = tok.encode(flags.text, { addSpecial: !!flags.addSpecial, parseSpecial: !!flags.parseSpecial });
      if (flags.json) process.stdout.write(JSON.stringify(ids) + "\n");
      else if (flags.pieces) process.stdout.write(ids.map((id) => `${id}\t${JSON.stringify(tok.decode([id]))}`).join("\n") + "\n");
      else process.stdout.write(ids.join(" ") + "\n");
    });
}

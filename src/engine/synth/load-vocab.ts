// Where a synthetic model's real vocabulary comes from: the `tokenizer.*` metadata of any GGUF file
// (llama.cpp's vocab-only files included).
import { openGGUF } from "../../gguf/reader.ts";
import type { GGUFMetadataEntry } from "../../gguf/types.ts";

export function loadVocabMetadata(path: string): Map<string, GGUFMetadataEntry> {
  const f = openGGUF(path);
  try {
    const out = new Map([...f.metadata].filter(([k]) => k.startsWith("tokenizer.")));
    if (!out.has("tokenizer.ggml.tokens")) throw new Error(`${path} has no vocabulary (tokenizer.ggml.tokens)`);
    return out;
  } finally {
    f.close();
  }
}

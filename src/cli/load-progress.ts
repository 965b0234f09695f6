// A progress bar for loading a model's weights (the engine reports matrix bytes as it packs them),
// drawn on stderr when it is a terminal; nothing otherwise (logs and pipes stay clean).
import { Presets, SingleBar } from "cli-progress";

export interface LoadProgress {
  /** Engine.loadAsync's onProgress. */
  update: (bytes: number, total: number) => void;
  stop: () => void;
}

export function loadProgress(label: string, stream: NodeJS.WriteStream = process.stderr): LoadProgress {
  if (!stream.isTTY) return { update: () => {}, stop: () => {} };
  const mib = (b: number) => Math.round(b / 2 ** 20);
  const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} MiB | {duration}s`, stream, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return {
    update: (bytes, total) => {
      if (!started) bar.start(mib(total), 0);
      started = true;
      bar.update(mib(bytes));
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

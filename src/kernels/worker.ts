// A kernel worker thread (see pool.ts): waits for jobs in the shared control block and runs its
// row range of the named kernel in the named kernel memory.
import { receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { ACK, ARGS, CHUNK, CLAIM, claimChunks, ERR, GO, KERNEL, KERNEL_NAMES, MEM, RANGES, SPIN_MS } from "./pool.ts";

type Fn = (...a: number[]) => void;
const { ctrl, index, port, module } = workerData as { ctrl: Int32Array; index: number; port: MessagePort; module: WebAssembly.Module };
const instances = new Map<number, Record<string, Fn>>();

function take(msg: { id?: number; memory?: WebAssembly.Memory; drop?: number }): void {
  if (msg.drop !== undefined) instances.delete(msg.drop);
  else if (msg.id !== undefined && msg.memory) {
    const inst = new WebAssembly.Instance(module, { env: { memory: msg.memory, abort: () => { throw new Error("wasm abort"); } } });
    instances.set(msg.id, inst.exports as unknown as Record<string, Fn>);
  }
}

function exportsFor(id: number): Record<string, Fn> {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) take(m.message);
  let e = instances.get(id);
  while (!e) {
    const m = receiveMessageOnPort(port);
    if (!m) throw new Error(`kernel worker ${index}: unknown memory ${id}`);
    take(m.message);
    e = instances.get(id);
  }
  return e;
}


const go = GO + index;
let seen = Atomics.load(ctrl, ACK + index);
function loop(): void {
  for (;;) {
    let t0 = 0;
    let spins = 0;
    while (Atomics.load(ctrl, go) === seen) {
      if (++spins % 4096 === 0) {
        const now = performance.now();
        if (t0 === 0) t0 = now;
        else if (now - t0 > SPIN_MS) {
          // idle: sleep until the next job (messages are read synchronously, see exportsFor)
          Atomics.wait(ctrl, go, seen);
        }
      }
    }
    seen = Atomics.load(ctrl, go);
    const old = Atomics.load(ctrl, CLAIM + index);
    if (old === seen || Atomics.compareExchange(ctrl, CLAIM + index, old, seen) !== old) continue; // the main thread took it
    try {
      const fn = exportsFor(ctrl[MEM])[KERNEL_NAMES[ctrl[KERNEL]]];
      const a = ARGS;
      const run = (r0: number, r1: number): void => fn(ctrl[a], ctrl[a + 1], r0, r1, ctrl[a + 4], ctrl[a + 5], ctrl[a + 6], ctrl[a + 7], ctrl[a + 8], ctrl[a + 9]);
      if (ctrl[CHUNK] > 0) claimChunks(ctrl, run);
      else run(ctrl[RANGES + 2 * index], ctrl[RANGES + 2 * index + 1]);
    } catch (err) {
      console.error(err);
      Atomics.store(ctrl, ERR, 1);
    }
    Atomics.store(ctrl, ACK + index, seen);
    Atomics.notify(ctrl, ACK + index);
  }
}
loop();

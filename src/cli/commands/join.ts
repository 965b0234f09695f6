// `llmesh join TOKEN --model F`: join a mesh as a worker, with this machine's own copy of the model.
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { decodeInvite, defaultDataDir, loadOrCreateKey, modelFingerprint } from "../../mesh/identity.ts";
import { Libp2pTransport } from "../../mesh/libp2p-transport.ts";
import { MeshWorker } from "../../mesh/worker.ts";
import { RefusedError } from "../../mesh/handshake.ts";
import { DEFAULT_MODEL, parseBytes } from "./serve.ts";

interface JoinOptions {
  model: string;
  dataDir?: string;
  listen?: string[];
  announce?: string[];
  name?: string;
  mdns?: boolean;
  threads?: number;
  memory?: number;
  rejoin?: boolean;
}

export async function join(token: string, opts: JoinOptions): Promise<void> {
  const invite = decodeInvite(token);
  if (!existsSync(opts.model)) throw new Error(`model file not found: ${opts.model}`);
  const fp = modelFingerprint(opts.model);
  if (fp !== invite.fp) {
    throw new Error(
      `model mismatch: the mesh serves ${invite.model} (fingerprint ${invite.fp.slice(0, 16)}…), but ${basename(opts.model)} has fingerprint ${fp.slice(0, 16)}…; join with a copy of the same GGUF file`,
    );
  }
  const dataDir = opts.dataDir ?? defaultDataDir();
  const log = (m: string) => process.stdout.write(`${m}\n`);
  // Test hooks: claim another stage-protocol version (refusal tests); a failpoint that sends a
  // malformed frame downstream after N forward steps, and a compute-time multiplier (failover tests).
  const v = process.env.LLMESH_TEST_PROTOCOL_VERSION;
  const garbage = process.env.LLMESH_TEST_GARBAGE_AFTER;
  const scale = process.env.LLMESH_TEST_COMPUTE_SCALE;

  // First signal: leave gracefully (the host moves this stage's layers off, nothing in flight fails);
  // a second one: leave now.
  let signals = 0;
  let current: { worker: MeshWorker; transport: Libp2pTransport } | undefined;
  const onSignal = () => {
    if (++signals === 1 && current) {
      log("leaving: asking the host to move this stage's layers off (again to leave now)");
      const c = current;
      void c.worker.leave().finally(() => void c.transport.stop().finally(() => process.exit(0)));
      return;
    }
    current?.worker.stop();
    void (current?.transport.stop() ?? Promise.resolve()).finally(() => process.exit(0));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  for (let attempt = 1; ; attempt++) {
    const transport = await Libp2pTransport.create({
      privateKey: await loadOrCreateKey(dataDir),
      listen: opts.listen?.length ? opts.listen : ["/ip4/0.0.0.0/tcp/0"],
      ...(opts.announce?.length ? { announce: opts.announce } : {}),
      mdns: opts.mdns ?? false,
    });
    let worker: MeshWorker;
    try {
      worker = await MeshWorker.join({
        transport, invite, modelPath: opts.model, fingerprint: fp, ...(opts.name ? { name: opts.name } : {}), ...(opts.threads !== undefined ? { threads: opts.threads } : {}), log,
        ...(v ? { protocolVersion: Number(v) } : {}), ...(garbage ? { garbageAfterSteps: Number(garbage) } : {}), ...(scale ? { computeScale: Number(scale) } : {}),
        ...(opts.memory !== undefined ? { memoryBytes: opts.memory } : {}),
      });
    } catch (err) {
      await transport.stop().catch(() => {});
      // A refusal is final; a network failure (host unreachable, a stream reset while the host drops
      // this peer's previous connection after a restart) is retried 3 times, forever with --rejoin.
      if (err instanceof RefusedError || signals > 0 || (!opts.rejoin && attempt >= 3)) throw err;
      if (attempt === 1 || attempt % 30 === 0) log(`cannot reach the host (${(err as Error).message || (err as Error).name}); retrying every second`);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    current = { worker, transport };
    attempt = 0;
    let why: string;
    try {
      await worker.assigned;
      log(`ready: peer ${transport.peerId}`);
      why = await worker.done;
    } catch (err) {
      if (signals > 0) return new Promise<never>(() => {}); // leaving: the signal handler exits
      worker.stop();
      await transport.stop().catch(() => {});
      if (err instanceof RefusedError) throw err;
      // The host went away (or let this spare go) before it needed our layers.
      why = (err as Error).message;
    }
    if (signals > 0) return new Promise<never>(() => {});
    log(`leaving: ${why}`);
    current = undefined;
    worker.stop();
    await transport.stop().catch(() => {});
    if (!opts.rejoin) process.exit(0);
    log("rejoining the mesh (--rejoin): the host may restart with the same --data-dir and address");
  }
}

export function registerJoin(program: Command): void {
  program
    .command("join")
    .description("join a mesh as a worker (the invite comes from `llmesh serve --mesh`)")
    .argument("<token>", "invite token")
    .option("-m, --model <file>", "this machine's copy of the mesh's GGUF model", DEFAULT_MODEL)
    .option("--data-dir <dir>", "peer key (default ~/.llmesh or $LLMESH_DATA_DIR)")
    .option("--listen <multiaddr...>", "libp2p listen addresses (default /ip4/0.0.0.0/tcp/0)")
    .option("--announce <multiaddr...>", "addresses to advertise instead")
    .option("--name <name>", "name shown in `llmesh status` (default: the host name)")
    .option("--mdns", "LAN discovery (mDNS)")
    .option("--threads <n>", "compute threads for this stage (default: the number of cores)", (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected an integer >= 1");
      return n;
    })
    .option("--rejoin", "when the host goes away (a restart), keep trying to rejoin the same invite every second")
    .option("--memory <bytes>", "memory this peer offers the planner for weights and KV, e.g. 8G (default: the free memory)", parseBytes)
    .action(async (token: string, opts: JoinOptions) => {
      await join(token, opts);
    });
}

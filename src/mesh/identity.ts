// A peer's persistent state in its data directory (--data-dir, default ~/.llmesh): its libp2p key
// (identity survives restarts), the mesh secret a host hands out in invites, the last invite.
// Also the model fingerprint and the invite token.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";
import { openGGUF } from "../gguf/reader.ts";

export function defaultDataDir(): string {
  return process.env.LLMESH_DATA_DIR ?? join(homedir(), ".llmesh");
}

function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

function writePrivate(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** The peer's key, created on first use. */
export async function loadOrCreateKey(dataDir: string): Promise<PrivateKey> {
  ensureDir(dataDir);
  const path = join(dataDir, "peer.key");
  if (existsSync(path)) return privateKeyFromProtobuf(readFileSync(path));
  const key = await generateKeyPair("Ed25519");
  writePrivate(path, privateKeyToProtobuf(key));
  return key;
}

/** The mesh secret a host puts in its invites, created on first use. */
export function loadOrCreateSecret(dataDir: string): Uint8Array {
  ensureDir(dataDir);
  const path = join(dataDir, "mesh.secret");
  if (existsSync(path)) return Buffer.from(readFileSync(path, "utf8").trim(), "hex");
  const s = randomBytes(32);
  writePrivate(path, s.toString("hex"));
  return s;
}

export function writeInviteFile(dataDir: string, token: string): string {
  ensureDir(dataDir);
  const path = join(dataDir, "invite");
  writePrivate(path, token + "\n");
  return path;
}

/** sha256 of the GGUF header + metadata + tensor index (the bytes before the tensor data). */
export function modelFingerprint(path: string): string {
  const g = openGGUF(path);
  const n = g.dataOffset;
  g.close();
  const fd = openSync(path, "r");
  try {
    const h = createHash("sha256");
    const buf = Buffer.alloc(Math.min(n, 1 << 20));
    let pos = 0;
    while (pos < n) {
      const k = readSync(fd, buf, 0, Math.min(buf.length, n - pos), pos);
      if (k <= 0) break;
      h.update(buf.subarray(0, k));
      pos += k;
    }
    return h.digest("hex");
  } finally {
    closeSync(fd);
  }
}

export interface Invite {
  v: 1;
  /** The host's dialable multiaddrs (with /p2p/<id>). */
  addrs: string[];
  /** Mesh secret, hex. */
  secret: string;
  /** Model fingerprint (modelFingerprint). */
  fp: string;
  /** Model name, for messages. */
  model: string;
}

const PREFIX = "llmesh1.";

export function encodeInvite(inv: Invite): string {
  return PREFIX + Buffer.from(JSON.stringify(inv), "utf8").toString("base64url");
}

export function decodeInvite(token: string): Invite {
  const t = token.trim();
  if (!t.startsWith(PREFIX)) throw new Error(`not an llmesh invite token (expected it to start with "${PREFIX}")`);
  let inv: Invite;
  try {
    inv = JSON.parse(Buffer.from(t.slice(PREFIX.length), "base64url").toString("utf8")) as Invite;
  } catch {
    throw new Error("malformed invite token");
  }
  if (inv.v !== 1 || !Array.isArray(inv.addrs) || typeof inv.secret !== "string" || typeof inv.fp !== "string") throw new Error("malformed invite token");
  return inv;
}

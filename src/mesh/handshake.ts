// The handshake every link runs before any other frame is accepted (see stage-protocol.ts): protocol
// version check, mutual HMAC challenge–response over the mesh secret, model fingerprint check.
import {
  decodeJson, encodeJson, hmacProof, kindName, MsgKind, newNonce, PROTOCOL_VERSION, proofMatches, readHeader, versionMismatch,
  type Challenge, type Hello, type Refuse,
} from "./stage-protocol.ts";
import type { StageLink } from "./transport.ts";

export class RefusedError extends Error {
  override name = "RefusedError";
  readonly code: Refuse["code"];
  constructor(message: string, code: Refuse["code"]) {
    super(message);
    this.code = code;
  }
}

export interface HandshakeOptions {
  secret: Uint8Array;
  fingerprint: string;
  peer: string;
  /** For tests only: the version this side claims. */
  version?: number;
  timeoutMs?: number;
}

async function nextFrame(link: StageLink, timeoutMs: number): Promise<Uint8Array> {
  let timer: NodeJS.Timeout | undefined;
  const f = await Promise.race([
    link.next(),
    new Promise<null>((res) => {
      timer = setTimeout(() => res(null), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!f) throw new RefusedError("the other peer closed the link during the handshake", "auth");
  return f;
}

function refused(frame: Uint8Array): RefusedError {
  const r = decodeJson<Refuse>(frame);
  return new RefusedError(`refused: ${r.reason}`, r.code);
}

/** Dialer side. Resolves once WELCOME arrives; throws RefusedError otherwise (and closes the link). */
export async function dialHandshake(link: StageLink, purpose: Hello["purpose"], o: HandshakeOptions): Promise<void> {
  const timeout = o.timeoutMs ?? 10_000;
  try {
    const nA = newNonce();
    const hello: Hello = { version: o.version ?? PROTOCOL_VERSION, nonce: nA, peer: o.peer, fingerprint: o.fingerprint, purpose };
    await link.send(encodeJson(MsgKind.HELLO, hello));
    const f1 = await nextFrame(link, timeout);
    const h1 = readHeader(f1);
    if (h1.kind === MsgKind.REFUSE) throw refused(f1);
    if (h1.kind !== MsgKind.CHALLENGE) throw new RefusedError(`handshake: expected CHALLENGE, got ${kindName(h1.kind)}`, "auth");
    const ch = decodeJson<Challenge>(f1);
    if (!proofMatches(hmacProof(o.secret, "listener", nA, ch.nonce), ch.proof)) {
      throw new RefusedError("the other peer could not prove the mesh secret (wrong invite, or not an llmesh mesh)", "auth");
    }
    await link.send(encodeJson(MsgKind.AUTH, { proof: hmacProof(o.secret, "dialer", nA, ch.nonce) }));
    const f2 = await nextFrame(link, timeout);
    const h2 = readHeader(f2);
    if (h2.kind === MsgKind.REFUSE) throw refused(f2);
    if (h2.kind !== MsgKind.WELCOME) throw new RefusedError(`handshake: expected WELCOME, got ${kindName(h2.kind)}`, "auth");
  } catch (err) {
    link.close();
    throw err;
  }
}

/**
 * Listener side: returns the dialer's HELLO once it proved the secret and has our model; otherwise
 * sends REFUSE (when it is safe to say why), closes the link and throws.
 */
export async function acceptHandshake(link: StageLink, o: HandshakeOptions): Promise<Hello> {
  const timeout = o.timeoutMs ?? 10_000;
  const refuse = async (reason: string, code: Refuse["code"]): Promise<never> => {
    await link.send(encodeJson(MsgKind.REFUSE, { reason, code } satisfies Refuse)).catch(() => {});
    setTimeout(() => link.close(), 100).unref();
    throw new RefusedError(reason, code);
  };
  try {
    const f1 = await nextFrame(link, timeout);
    const h1 = readHeader(f1);
    if (h1.kind !== MsgKind.HELLO) {
      link.close();
      throw new RefusedError(`handshake: expected HELLO, got ${kindName(h1.kind)}; link closed`, "auth");
    }
    const hello = decodeJson<Hello>(f1);
    const ours = o.version ?? PROTOCOL_VERSION;
    if (hello.version !== ours) return await refuse(versionMismatch(ours, hello.version), "version");
    const nB = newNonce();
    await link.send(encodeJson(MsgKind.CHALLENGE, { version: ours, nonce: nB, proof: hmacProof(o.secret, "listener", hello.nonce, nB) } satisfies Challenge));
    const f2 = await nextFrame(link, timeout);
    const h2 = readHeader(f2);
    if (h2.kind !== MsgKind.AUTH) {
      link.close();
      throw new RefusedError(`handshake: expected AUTH, got ${kindName(h2.kind)}; link closed`, "auth");
    }
    const auth = decodeJson<{ proof: unknown }>(f2);
    if (!proofMatches(hmacProof(o.secret, "dialer", hello.nonce, nB), auth.proof)) return await refuse("authentication failed: the invite's mesh secret does not match", "auth");
    if (hello.fingerprint !== o.fingerprint) {
      return await refuse(`model mismatch: this mesh serves the model with fingerprint ${o.fingerprint.slice(0, 16)}…, the joining peer has ${String(hello.fingerprint).slice(0, 16)}… (a different GGUF file); every peer needs a copy of the same file`, "model");
    }
    await link.send(encodeJson(MsgKind.WELCOME, {}));
    return hello;
  } catch (err) {
    if (!(err instanceof RefusedError)) link.close();
    throw err;
  }
}

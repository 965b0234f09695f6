// BackendError: a failure of a ModelBackend that a client should see for what it is, not as an
// internal error — its request is invalid for this model ("invalid_request": e.g. the chat template
// fails for these messages), or the model cannot serve right now ("unavailable": e.g. a mesh that lost
// a stage and found no placement in time). The backend knows nothing of HTTP: the gateway turns it
// into its API error (knownApiError in the gateway's errors.ts: 400 / 503, same message, param and code).

export type BackendErrorKind = "invalid_request" | "unavailable";

export class BackendError extends Error {
  override name = "BackendError";
  readonly kind: BackendErrorKind;
  /** The request parameter at fault (invalid_request), if any. */
  readonly param: string | null;
  /** A machine-readable code (e.g. "chat_template_error", "mesh_unavailable"), if any. */
  readonly code: string | null;

  constructor(kind: BackendErrorKind, message: string, opts: { param?: string | null; code?: string | null } = {}) {
    super(message);
    this.kind = kind;
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
  }
}

/** The request cannot be served by this model as it is (the client must change it). */
export function invalidRequestError(message: string, param: string | null = null, code: string | null = null): BackendError {
  return new BackendError("invalid_request", message, { param, code });
}

/** The model cannot serve right now (the client may retry later). */
export function unavailableError(message: string, code: string): BackendError {
  return new BackendError("unavailable", message, { code });
}

/**
 * Typed errors: each carries the server's HTTP status, error code, message
 * and request id (`x-ms-request-id`), so a log line can be matched with the
 * server's own.
 */

/** A request longrun refused, or one that could not reach it. */
export class LongrunError extends Error {
  /** The HTTP status, when longrun answered. */
  readonly status?: number;
  /** longrun's error code (`OperationNotFound`, `LeaseLost`, …). */
  readonly code?: string;
  /** The server's request id. */
  readonly requestId?: string;
  /** Seconds the server asked to wait before trying again (429, 503). */
  readonly retryAfter?: number;
  /** The answer's body, parsed when it was JSON. */
  readonly body?: unknown;

  constructor(
    message: string,
    details: { status?: number; code?: string; requestId?: string; retryAfter?: number; body?: unknown } = {},
  ) {
    super(message);
    this.name = new.target.name;
    Object.assign(this, details);
  }
}

/** 400 (or 413, 431): the request is malformed; retrying will not help. */
export class BadRequest extends LongrunError {}
/** 401: no credential, or one longrun does not accept. */
export class Unauthorized extends LongrunError {}
/** 403: the key lacks the role or the scope. */
export class Forbidden extends LongrunError {}
/** 404: no such operation in the caller's reach (or it expired). */
export class NotFound extends LongrunError {}
/** 409: the change breaks a rule, or a version moved. */
export class Conflict extends LongrunError {}
/** 409 `LeaseLost`: stop the job and do not complete it. */
export class LeaseLost extends Conflict {}
/** 412: `If-Match` named an older version. */
export class PreconditionFailed extends LongrunError {}
/** 429 after the retries ran out. */
export class TooManyRequests extends LongrunError {}
/** 503 after the retries ran out, or longrun could not be reached. */
export class Unavailable extends LongrunError {}
/** Any other 5xx. */
export class ServerError extends LongrunError {}

const BY_STATUS: Record<number, new (message: string, details?: object) => LongrunError> = {
  400: BadRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  409: Conflict,
  412: PreconditionFailed,
  413: BadRequest,
  429: TooManyRequests,
  431: BadRequest,
  503: Unavailable,
};

/** The typed error of a non-2xx answer, read from longrun's envelope (`{"error": {code, message}}`). */
export function errorFrom(status: number, headers: Headers, text: string): LongrunError {
  let body: unknown;
  let code = headers.get("x-ms-error-code") ?? undefined;
  let message = text.slice(0, 500) || `HTTP ${status}`;
  try {
    body = JSON.parse(text);
    const error = (body as { error?: { code?: string; message?: string } }).error;
    code = error?.code ?? code;
    message = error?.message ?? message;
  } catch {
    // not JSON: the text is the message
  }
  let Kind = BY_STATUS[status] ?? (status >= 500 ? ServerError : LongrunError);
  if (Kind === Conflict && code === "LeaseLost") Kind = LeaseLost;
  const retryAfter = Number(headers.get("retry-after") ?? NaN);
  return new Kind(message, {
    status,
    code,
    requestId: headers.get("x-ms-request-id") ?? undefined,
    retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined,
    body,
  });
}

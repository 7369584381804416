/** What longrun answers with: an operation, its error, a worker's lease and a server-sent event. */

/** The states an operation ends in. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set(["Succeeded", "Failed", "Canceled", "CompleteWithErrors"]);

/** Why an operation failed: the producer's code and message. */
export interface OperationError {
  code: string;
  message: string;
  target?: string;
  details?: unknown;
}

/** An operation as the native API shows it (times are RFC 3339 strings). */
export interface Operation {
  id: string;
  scope: string;
  kind: string;
  state: "NotStarted" | "Running" | "Succeeded" | "Failed" | "Canceled" | "CompleteWithErrors";
  version: number;
  createdAt: string;
  lastActionAt: string;
  operationLocation: string;
  percentComplete?: number;
  startedAt?: string;
  finishedAt?: string;
  expiresAt?: string;
  resourceLocation?: string;
  detailsLocation?: string;
  properties?: Record<string, unknown>;
  error?: OperationError;
  attempts?: number;
}

/** True once `op` is in a terminal state. */
export function isDone(op: Operation): boolean {
  return TERMINAL_STATES.has(op.state);
}

/** `op`'s version as an ETag (`"7"`), for `ifMatch`/`etag`. */
export function etagOf(op: Operation): string {
  return `"${op.version}"`;
}

/** A worker's claim on an operation; `leaseId` is the fencing token. */
export interface Lease {
  leaseId: string;
  attempt: number;
  expiresAt?: string;
  canceled: boolean;
  operation: Operation;
  /** The W3C trace context of the request that created the operation (absent when it brought none and the server does not trace). */
  traceparent?: string;
}

/** One server-sent event: `id` resumes the stream (`lastEventId`). */
export interface OperationEvent {
  id: string;
  event: string;
  operation: Operation;
}

/** What a completion records: a terminal state and its fields. */
export interface Result {
  state?: "Succeeded" | "Failed" | "Canceled" | "CompleteWithErrors";
  resourceLocation?: string;
  properties?: Record<string, unknown>;
  error?: OperationError;
}

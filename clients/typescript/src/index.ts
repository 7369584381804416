/** longrun-client: the client and worker SDK of the longrun operation service. */

export { Client, MAX_WAIT, type ClaimOptions, type ClientOptions, type CreateOptions, type UpdateOptions } from "./client.js";
export {
  BadRequest,
  Conflict,
  Forbidden,
  LeaseLost,
  LongrunError,
  NotFound,
  PreconditionFailed,
  ServerError,
  TooManyRequests,
  Unauthorized,
  Unavailable,
} from "./errors.js";
export { etagOf, isDone, TERMINAL_STATES, type Lease, type Operation, type OperationError, type OperationEvent, type Result } from "./models.js";
export { Failure, Job, Worker, type Handler, type WorkerOptions } from "./worker.js";

/**
 * `Client`: producers create and move operations, clients read them, and
 * workers claim them, over longrun's native API (`/v1`). Every call
 * retries 429 and 503 by the server's `Retry-After` (bounded), and
 * connections that could not be made; requests safe to repeat (reads,
 * creates with their repeatability id, cancels) also when a connection
 * broke. No other 4xx is retried.
 */

import { readFileSync } from "node:fs";
import { Agent, fetch, type Response } from "undici";

import { errorFrom, LongrunError, Unavailable } from "./errors.js";
import { etagOf, isDone, type Lease, type Operation, type OperationEvent, type Result } from "./models.js";

/** The longest long-poll the server grants (`:wait` and claims), in seconds. */
export const MAX_WAIT = 60;
const VERSION = "0.1.0";

/** How a `Client` connects. */
export interface ClientOptions {
  /** A longrun API key (or `token`). */
  key?: string;
  /** A JWT from an issuer longrun trusts (or `key`). */
  token?: string;
  /** A PEM CA bundle path (e.g. `longrun-data/tls/dev-ca.pem`) to trust for https. */
  ca?: string;
  /** Retries of 429/503 and unreachable servers (5). */
  maxRetries?: number;
  /** The longest wait between retries, in seconds (30). */
  maxRetryWait?: number;
  /** Per-request timeout in seconds, long-polls excepted (30). */
  timeout?: number;
}

/** What `create` accepts besides scope and kind. */
export interface CreateOptions {
  properties?: Record<string, unknown>;
  /** A client-chosen id (a UUID). */
  id?: string;
  /** The repeatability id (default: a fresh UUID, reused on retries). */
  requestId?: string;
  /** Emulator steps the service applies by itself. */
  script?: Array<Record<string, unknown>>;
  resourceLocation?: string;
}

/** The fields `update` changes (a JSON merge patch). */
export interface UpdateOptions extends Omit<Result, "state"> {
  state?: Operation["state"];
  percentComplete?: number;
  /** An ETag (`etagOf(op)`): refused with PreconditionFailed if the operation moved. */
  ifMatch?: string;
}

/** What a claim asks for. */
export interface ClaimOptions {
  scope?: string;
  /** Lease TTL in seconds (30). */
  ttl?: number;
  owner?: string;
  /** Seconds the server may hold the claim waiting for work (≤ 60; 0). */
  wait?: number;
}

interface Send {
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  timeout?: number;
  repeatable?: boolean;
  maxRetries?: number;
}

/** A connection to one longrun service. */
export class Client {
  readonly baseUrl: string;
  private readonly agent: Agent;
  private readonly headers: Record<string, string>;
  private readonly maxRetries: number;
  private readonly maxRetryWait: number;
  private readonly timeout: number;

  constructor(baseUrl: string, options: ClientOptions) {
    const credential = options.key ?? options.token;
    if (!credential) throw new TypeError("a key or a token is needed");
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.agent = new Agent({ connect: options.ca ? { ca: readFileSync(options.ca) } : {}, headersTimeout: 0, bodyTimeout: 0 });
    this.headers = { authorization: `Bearer ${credential}`, "user-agent": `longrun-client-js/${VERSION}` };
    this.maxRetries = options.maxRetries ?? 5;
    this.maxRetryWait = options.maxRetryWait ?? 30;
    this.timeout = options.timeout ?? 30;
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  // ---------------------------------------------------------- producers

  /**
   * Creates an operation (NotStarted). The request carries a repeatability
   * id, reused on its retries: a create retried after a lost answer
   * returns the first operation instead of making a second.
   */
  async create(scope: string, kind: string, options: CreateOptions = {}): Promise<Operation> {
    const { requestId, ...fields } = options;
    const headers = {
      "repeatability-request-id": requestId ?? crypto.randomUUID(),
      "repeatability-first-sent": new Date().toUTCString(),
    };
    return this.json("POST", "/v1/operations", { body: { scope, kind, ...fields }, headers });
  }

  /** Moves an operation along (a JSON merge patch of the given fields). */
  async update(id: string, options: UpdateOptions): Promise<Operation> {
    const { ifMatch, ...patch } = options;
    return this.json("PATCH", `/v1/operations/${id}`, {
      body: patch,
      contentType: "application/merge-patch+json",
      headers: ifMatch ? { "if-match": ifMatch } : {},
      repeatable: false,
    });
  }

  // ------------------------------------------------------------- readers

  /** The operation now. */
  async get(id: string): Promise<Operation> {
    return this.json("GET", `/v1/operations/${id}`);
  }

  /** Long-polls: returns when the operation changes (from `etag`, when given) or ends, else at `timeout` seconds. */
  async wait(id: string, timeout = 30, etag?: string): Promise<Operation> {
    const seconds = Math.max(1, Math.min(Math.floor(timeout), MAX_WAIT));
    return this.json("GET", `/v1/operations/${id}:wait?timeout=${seconds}s`, {
      headers: etag ? { "if-none-match": etag } : {},
      timeout: seconds + 15,
    });
  }

  /** Waits (long-polling) until the operation is terminal; rejects with a timeout error after `timeout` seconds. */
  async result(id: string, timeout?: number): Promise<Operation> {
    const deadline = timeout === undefined ? undefined : Date.now() + timeout * 1000;
    let op = await this.get(id);
    while (!isDone(op)) {
      const left = deadline === undefined ? MAX_WAIT : (deadline - Date.now()) / 1000;
      if (left <= 0) throw new LongrunError(`operation ${id} is still ${op.state} after ${timeout} s`, { code: "Timeout" });
      op = await this.wait(id, Math.min(left, MAX_WAIT), etagOf(op));
    }
    return op;
  }

  /** Cancels the operation (its worker hears it on its next heartbeat). */
  async cancel(id: string): Promise<Operation> {
    return this.json("POST", `/v1/operations/${id}:cancel`);
  }

  /** Every matching operation, newest first, page after page. */
  async *list(
    scope?: string,
    filter: { state?: string; kind?: string; pageSize?: number } = {},
  ): AsyncGenerator<Operation> {
    const query = new URLSearchParams();
    if (scope) query.set("scope", scope);
    if (filter.state) query.set("state", filter.state);
    if (filter.kind) query.set("kind", filter.kind);
    if (filter.pageSize) query.set("maxPageSize", String(filter.pageSize));
    let url: string | undefined = `/v1/operations?${query}`;
    while (url) {
      const page: { value?: Operation[]; nextLink?: string } = await this.json("GET", url);
      yield* page.value ?? [];
      url = page.nextLink;
    }
  }

  /**
   * Server-sent events: every change in `scope` (or of operation `id`) as
   * it commits. When the stream drops it reconnects with the last event
   * id, so nothing is missed. Stop with `signal` or by leaving the loop.
   */
  async *events(
    options: { scope?: string; id?: string; lastEventId?: string; signal?: AbortSignal } = {},
  ): AsyncGenerator<OperationEvent> {
    const url = options.id
      ? `/v1/operations/${options.id}/events`
      : `/v1/events${options.scope ? `?scope=${encodeURIComponent(options.scope)}` : ""}`;
    let lastEventId = options.lastEventId;
    for (let failures = 0; !options.signal?.aborted; failures++) {
      const local = new AbortController();
      const abort = () => local.abort();
      options.signal?.addEventListener("abort", abort);
      try {
        const response = await fetch(this.baseUrl + url, {
          headers: { ...this.headers, accept: "text/event-stream", ...(lastEventId ? { "last-event-id": lastEventId } : {}) },
          dispatcher: this.agent,
          signal: local.signal,
        });
        if (!response.ok) {
          const refused = errorFrom(response.status, response.headers as unknown as Headers, await response.text());
          if (response.status !== 429 && response.status !== 503) throw refused;
          if (refused.retryAfter !== undefined) await sleep(Math.min(refused.retryAfter, 60) * 1000, options.signal);
        } else {
          failures = 0;
          // The server comments every 15 s: 45 s of silence is a dead connection.
          let idle = setTimeout(abort, 45_000);
          try {
            for await (const event of parseEvents(response, () => idle.refresh())) {
              lastEventId = event.id;
              yield event;
            }
          } finally {
            clearTimeout(idle);
          }
        }
      } catch (e) {
        if (e instanceof LongrunError) throw e;
        if (options.signal?.aborted) return;
        // The stream broke (or fell silent): reconnect below.
      } finally {
        options.signal?.removeEventListener("abort", abort);
        local.abort();
      }
      await sleep(Math.min(250 * 2 ** failures, 10_000), options.signal);
    }
  }

  // ------------------------------------------------------------- workers

  /**
   * Claims the oldest NotStarted operation of `kinds`: it is Running under
   * the returned lease until the lease lapses. Undefined when there is none;
   * with `wait`, the server holds the request that many seconds for one.
   */
  async claim(kinds: string[], options: ClaimOptions = {}): Promise<Lease | undefined> {
    const wait = Math.max(0, Math.min(Math.floor(options.wait ?? 0), MAX_WAIT));
    const body: Record<string, unknown> = { kinds, ttl: `${Math.floor(options.ttl ?? 30)}s` };
    if (options.scope) body.scope = options.scope;
    if (options.owner) body.owner = options.owner;
    // Not repeated after a broken connection: a claim that went through
    // would be held by no one until it lapsed.
    const response = await this.send("POST", "/v1/leases", {
      body,
      headers: wait ? { prefer: `wait=${wait}` } : {},
      timeout: wait + 15,
      repeatable: false,
    });
    if (response.status === 204) return undefined;
    return (await response.json()) as Lease;
  }

  /** Extends a lease and reports progress; `canceled` says stop. Rejects with LeaseLost if it lapsed. */
  async heartbeat(
    leaseId: string,
    progress: {
      percentComplete?: number;
      properties?: Record<string, unknown>;
      ttl?: number;
      deadline?: number;
      traceparent?: string;
    } = {},
  ): Promise<Lease> {
    const { ttl, deadline, traceparent, ...body } = progress;
    // With a deadline (seconds) the call gives up then, unretried: a worker beats again soon rather than wait past its lease.
    return this.json("POST", `/v1/leases/${leaseId}:heartbeat`, {
      body: ttl === undefined ? body : { ...body, ttl: `${Math.floor(ttl)}s` },
      timeout: deadline,
      maxRetries: deadline === undefined ? undefined : 0,
      headers: traceHeaders(traceparent),
    });
  }

  /** Ends a lease with a terminal result; `traceparent` puts the request in that trace. */
  async complete(leaseId: string, result: Result, traceparent?: string): Promise<Operation> {
    // Repeatable: the lease id fences it, so a repeat after a broken connection at worst answers LeaseLost.
    const lease: Lease = await this.json("POST", `/v1/leases/${leaseId}:complete`, {
      body: result,
      headers: traceHeaders(traceparent),
    });
    return lease.operation;
  }

  /** Hands a claimed operation back for another worker, at once. */
  async release(leaseId: string, traceparent?: string): Promise<Operation> {
    const lease: Lease = await this.json("POST", `/v1/leases/${leaseId}:release`, {
      repeatable: false,
      headers: traceHeaders(traceparent),
    });
    return lease.operation;
  }

  // ----------------------------------------------------------- transport

  private async json<T>(method: string, url: string, options: Send = {}): Promise<T> {
    return (await (await this.send(method, url, options)).json()) as T;
  }

  private async send(method: string, url: string, options: Send = {}): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = options.contentType ?? "application/json";
    }
    const retries = options.maxRetries ?? this.maxRetries;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(this.baseUrl + url, {
          method,
          headers,
          body,
          dispatcher: this.agent,
          signal: AbortSignal.timeout((options.timeout ?? this.timeout) * 1000),
        });
      } catch (e) {
        if (untrusted(e)) throw new Unavailable(`the server's certificate is not trusted: ${describe(e)}`);
        const notConnected = connectionRefused(e);
        if (attempt >= retries || !(notConnected || options.repeatable !== false)) {
          throw new Unavailable(`longrun could not be reached: ${describe(e)}`);
        }
        await sleep(this.backoff(attempt));
        continue;
      }
      if ((response.status === 429 || response.status === 503) && attempt < retries) {
        await response.body?.cancel();
        await sleep(this.delay(attempt, response.headers.get("retry-after")));
        continue;
      }
      if (response.ok) return response;
      throw errorFrom(response.status, response.headers as unknown as Headers, await response.text());
    }
  }

  private delay(attempt: number, retryAfter: string | null): number {
    let seconds = retryAfter === null || retryAfter.trim() === "" ? NaN : Number(retryAfter);
    if (retryAfter !== null && Number.isNaN(seconds)) seconds = (Date.parse(retryAfter) - Date.now()) / 1000;
    const wait = Number.isFinite(seconds) ? seconds * 1000 : this.backoff(attempt);
    return Math.max(0, Math.min(wait, this.maxRetryWait * 1000));
  }

  private backoff(attempt: number): number {
    return Math.min(250 * 2 ** attempt, 8000) * (0.5 + Math.random() / 2);
  }
}

/** Server-sent events (WHATWG) of longrun's operation JSON. */
async function* parseEvents(response: Response, heard: () => void): AsyncGenerator<OperationEvent> {
  let id = "";
  let name = "message";
  let data: string[] = [];
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    heard();
    pending += decoder.decode(chunk, { stream: true });
    // A chunk ending in CR may be the first half of a CRLF: that CR waits for the next chunk.
    const cut = pending.endsWith("\r") ? pending.length - 1 : pending.length;
    const lines = pending.slice(0, cut).split(/\r\n|\r|\n/);
    pending = (lines.pop() ?? "") + pending.slice(cut);
    for (const line of lines) {
      if (line === "") {
        if (data.length) {
          let operation: Operation;
          try {
            operation = JSON.parse(data.join("\n")) as Operation;
          } catch {
            throw new LongrunError(`an event that is not an operation: ${data.join("\n").slice(0, 200)}`, { code: "BadEvent" });
          }
          yield { id, event: name, operation };
        }
        name = "message";
        data = [];
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "id") id = value;
        else if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
    }
  }
}

function connectionRefused(e: unknown): boolean {
  const code = (e as { cause?: { code?: string } })?.cause?.code;
  return code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN";
}

/** Whether a connection failed on the server's certificate: no retry mends that. */
function untrusted(e: unknown): boolean {
  const code = (e as { cause?: { code?: string } })?.cause?.code ?? "";
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT/.test(code);
}

function describe(e: unknown): string {
  const cause = (e as { cause?: { message?: string } })?.cause?.message;
  return cause ?? String(e);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}

/** The W3C trace context header of a request, when there is one. */
function traceHeaders(traceparent: string | undefined): Record<string, string> {
  return traceparent === undefined ? {} : { traceparent };
}

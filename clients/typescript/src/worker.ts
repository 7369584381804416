/**
 * `Worker`: claims operations of its kinds when it has a free slot, runs
 * their handlers concurrently, heartbeats every held lease at a third of
 * its TTL (carrying the latest progress), tells a handler when its
 * operation was canceled (`job.cancelled`, `job.signal`), and completes
 * with the lease id as the fencing token. On SIGTERM or SIGINT it makes no
 * new claim, lets running jobs finish for a grace period, and hands back
 * whatever is still running then.
 */

import { hostname } from "node:os";

import { type Client, MAX_WAIT, sleep } from "./client.js";
import { BadRequest, Conflict, LeaseLost, LongrunError } from "./errors.js";
import { isDone, type Lease, type Operation, type Result } from "./models.js";

/** Thrown by a handler to fail its operation with this code and message. */
export class Failure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "Failure";
  }
}

/** One claimed operation, as its handler sees it. */
export class Job {
  readonly operation: Operation;
  readonly attempt: number;
  readonly leaseId: string;
  /**
   * The trace the operation was created in (W3C `traceparent`), or undefined: make the handler's spans its children
   * (OpenTelemetry: `propagation.extract(context.active(), { traceparent: job.traceparent })`); set it to the
   * handler's own span to have the heartbeats and the completion nest under that span instead.
   */
  traceparent?: string;
  /** Aborted once the operation was canceled, the lease lost, or the job handed back. */
  readonly signal: AbortSignal;
  /** True when the lease was lost: the result will not be recorded. */
  lost = false;
  private readonly controller = new AbortController();
  private pending: { percentComplete?: number; properties?: Record<string, unknown> } = {};

  constructor(lease: Lease) {
    this.operation = lease.operation;
    this.attempt = lease.attempt;
    this.leaseId = lease.leaseId;
    this.traceparent = lease.traceparent;
    this.signal = this.controller.signal;
  }

  /** True once the handler should stop: what it returns then is not recorded. */
  get cancelled(): boolean {
    return this.signal.aborted;
  }

  /** Records progress (and properties to merge); the next heartbeat reports it. */
  progress(percentComplete: number, properties?: Record<string, unknown>): void {
    this.pending.percentComplete = percentComplete;
    if (properties) this.pending.properties = { ...this.pending.properties, ...properties };
  }

  /** @internal */
  cancel(): void {
    this.controller.abort();
  }

  /** @internal Forgets a refused progress value (unless a newer one came since). */
  dropProgress(report: { percentComplete?: number }): void {
    if (this.pending.percentComplete === report.percentComplete) delete this.pending.percentComplete;
  }

  /** @internal Puts back what a failed heartbeat did not deliver (newer progress wins). */
  restoreProgress(report: { percentComplete?: number; properties?: Record<string, unknown> }): void {
    this.pending.percentComplete ??= report.percentComplete;
    if (report.properties) this.pending.properties = { ...report.properties, ...this.pending.properties };
  }

  /** @internal The progress to report, properties sent once. */
  takeProgress(): { percentComplete?: number; properties?: Record<string, unknown> } {
    const report = { ...this.pending };
    delete this.pending.properties;
    return report;
  }
}

/** What a handler does with a job: a result (or nothing) for Succeeded. */
export type Handler = (job: Job) => Promise<Result | void> | Result | void;

/** How a `Worker` works. */
export interface WorkerOptions {
  /** Kinds to claim (default: those with a handler). */
  kinds?: string[];
  /** Jobs at once (4). */
  concurrency?: number;
  /** Lease TTL in seconds (30; at least 3). */
  leaseTtl?: number;
  /** Claim only in this scope. */
  scope?: string;
  /** Who claims, for humans (default: host:pid). */
  owner?: string;
  /** Seconds running jobs get to finish after a stop (30). */
  grace?: number;
  /** Seconds an idle claim waits on the server (5; ≤ 60). */
  claimWait?: number;
  /** Put a failed handler's stack in the error's details (off: stacks leak internals). */
  stackTraces?: boolean;
  /** Stop on SIGTERM and SIGINT (true). */
  handleSignals?: boolean;
}

/** Runs handlers for operations of its kinds. */
export class Worker {
  /** Operations this worker completed (any terminal state). */
  completed = 0;
  private readonly kinds: string[];
  private readonly handlers = new Map<string, Handler>();
  private readonly jobs = new Map<string, Job>();
  private readonly options: Required<Omit<WorkerOptions, "kinds" | "scope">> & { scope?: string };
  private stopping = false;
  private stoppedAt = 0;
  private readonly stopped = new AbortController();
  /** Claim loops waiting for a free slot (woken when a job ends, or at a stop). */
  private readonly waiting = new Set<() => void>();
  private claiming = 0;

  constructor(
    private readonly client: Client,
    options: WorkerOptions = {},
  ) {
    const leaseTtl = options.leaseTtl ?? 30;
    const concurrency = options.concurrency ?? 4;
    if (!Number.isFinite(leaseTtl) || leaseTtl < 3) {
      throw new RangeError("leaseTtl is at least 3 seconds (heartbeats go at a third of it)");
    }
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError("concurrency is a whole number, at least 1");
    this.kinds = [...(options.kinds ?? [])];
    this.options = {
      concurrency,
      leaseTtl,
      scope: options.scope,
      owner: options.owner ?? `${hostname()}:${process.pid}`,
      grace: options.grace ?? 30,
      claimWait: Math.min(options.claimWait ?? 5, MAX_WAIT),
      stackTraces: options.stackTraces ?? false,
      handleSignals: options.handleSignals ?? true,
    };
  }

  /** Registers the handler of `kind`. */
  handle(kind: string, handler: Handler): this {
    this.handlers.set(kind, handler);
    if (!this.kinds.includes(kind)) this.kinds.push(kind);
    return this;
  }

  /** Stops claiming; `run` resolves once running jobs are done (or handed back after the grace). */
  stop(): void {
    if (!this.stopping) this.stoppedAt = Date.now();
    this.stopping = true;
    this.stopped.abort();
    this.wake();
  }

  /** Works until `stop` (or SIGTERM/SIGINT), then drains. */
  async run(): Promise<void> {
    if (!this.kinds.length) throw new TypeError("no kinds: register a handler with worker.handle(kind, fn)");
    const onSignal = () => this.stop();
    if (this.options.handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    const running = new Set<Promise<void>>();
    // A claimer claims one operation per round trip: larger pools claim on a few connections at once.
    const claimers = Math.min(4, Math.max(1, Math.floor(this.options.concurrency / 8)));
    try {
      await Promise.all(Array.from({ length: claimers }, () => this.claimLoop(running)));
      const deadline = this.stoppedAt + this.options.grace * 1000; // the grace runs from the stop
      while (running.size && Date.now() < deadline) {
        const timer = new AbortController(); // so the grace's timer does not keep the process alive
        await Promise.race([Promise.race(running), sleep(deadline - Date.now(), timer.signal)]);
        timer.abort();
      }
      for (const job of this.jobs.values()) {
        // Still running after the grace: hand it back so another worker takes it now.
        job.lost = true;
        job.cancel();
        await this.release(job.leaseId, job.traceparent);
      }
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
  }

  private async claimLoop(running: Set<Promise<void>>): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      if (this.jobs.size + this.claiming >= this.options.concurrency) {
        await new Promise<void>((resolve) => this.waiting.add(resolve));
        continue;
      }
      this.claiming++;
      let lease: Lease | undefined;
      try {
        // A claim waiting on the server is let finish when the worker stops
        // (what it gets is handed back): cutting it off could lose an
        // operation granted at that instant until its lease lapsed.
        lease = await this.client.claim(this.kinds, {
          scope: this.options.scope,
          ttl: this.options.leaseTtl,
          owner: this.options.owner,
          wait: this.options.claimWait,
        });
        failures = 0;
      } catch (e) {
        failures++;
        const pause = e instanceof LongrunError && e.retryAfter !== undefined ? e.retryAfter * 1000 : Math.min(500 * 2 ** failures, 15_000);
        console.warn(`longrun: claim failed (${e instanceof Error ? e.message : e}); trying again in ${pause} ms`);
        await sleep(pause, this.stopped.signal);
        continue;
      } finally {
        this.claiming--;
        this.wake();
      }
      if (!lease) continue;
      if (this.stopping) {
        await this.release(lease.leaseId, lease.traceparent);
        return;
      }
      const job = new Job(lease);
      this.jobs.set(job.leaseId, job);
      const done: Promise<void> = this.runJob(job).finally(() => {
        running.delete(done);
        this.jobs.delete(job.leaseId);
        this.wake();
      });
      running.add(done);
    }
  }

  private wake(): void {
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const resolve of waiting) resolve();
  }

  private async runJob(job: Job): Promise<void> {
    const beats = this.heartbeats(job);
    try {
      const result = await this.outcome(job);
      if (result && !job.cancelled) await this.complete(job, result);
    } catch (e) {
      console.error(`longrun: cannot complete ${job.leaseId}: ${e instanceof Error ? e.message : e}`);
    } finally {
      clearTimeout(beats.timer);
      beats.stopped = true;
    }
  }

  private async complete(job: Job, result: Result): Promise<void> {
    try {
      await this.client.complete(job.leaseId, result, job.traceparent);
    } catch (e) {
      if (!(e instanceof LeaseLost)) throw e;
      // A completion retried after a broken connection may have taken the first time: the operation says.
      const op = await this.client.get(job.operation.id);
      if (!(isDone(op) && op.attempts === job.attempt)) {
        console.warn(`longrun: lease ${job.leaseId} was lost before completion; its result is dropped`);
        return;
      }
    }
    this.completed++;
  }

  /** The result to complete with, from what the handler did (undefined: record nothing). */
  private async outcome(job: Job): Promise<Result | undefined> {
    const handler = this.handlers.get(job.operation.kind);
    if (!handler) return { state: "Failed", error: { code: "NoHandler", message: `no handler for ${job.operation.kind}` } };
    let returned: Result | void;
    try {
      returned = await handler(job);
    } catch (e) {
      if (e instanceof Failure) return { state: "Failed", error: { code: e.code, message: e.message } };
      const message = e instanceof Error ? e.message || e.name : String(e);
      const error: Result["error"] = { code: "HandlerError", message };
      if (this.options.stackTraces && e instanceof Error && e.stack) error.details = [{ code: "Stack", message: e.stack }];
      return { state: "Failed", error };
    }
    if (job.cancelled) return undefined;
    return { state: "Succeeded", ...(returned ?? {}) };
  }

  /** Heartbeats `job` every third of the TTL until stopped. */
  private heartbeats(job: Job): { timer?: NodeJS.Timeout; stopped: boolean } {
    const beats: { timer?: NodeJS.Timeout; stopped: boolean } = { stopped: false };
    const interval = (this.options.leaseTtl * 1000) / 3;
    const beat = async () => {
      if (beats.stopped || job.cancelled) return;
      let next = interval;
      const progress = job.takeProgress();
      try {
        const deadline = this.options.leaseTtl / 3;
        const lease = await this.client.heartbeat(job.leaseId, {
          ...progress,
          ttl: this.options.leaseTtl,
          deadline,
          traceparent: job.traceparent,
        });
        if (lease.canceled) job.cancel();
      } catch (e) {
        if (e instanceof LeaseLost) {
          job.lost = true;
          job.cancel();
        } else if (e instanceof BadRequest || e instanceof Conflict) {
          // The progress was refused (it went down, or out of range): drop it, keep the lease with a bare beat soon.
          console.warn(`longrun: progress of ${job.leaseId} refused (${e.message}); dropped`);
          job.dropProgress(progress);
          next = 100;
        } else {
          job.restoreProgress(progress);
          next = 1000; // try again soon: the lease is still ours
        }
      }
      if (!beats.stopped && !job.cancelled) beats.timer = setTimeout(beat, next);
    };
    beats.timer = setTimeout(beat, interval);
    return beats;
  }

  private async release(leaseId: string, traceparent?: string): Promise<void> {
    try {
      await this.client.release(leaseId, traceparent);
    } catch (e) {
      console.warn(`longrun: cannot hand back ${leaseId} (${e instanceof Error ? e.message : e}); it returns when its lease lapses`);
    }
  }
}

"""``Worker``: claims operations of its kinds when it has a free slot, runs
their handlers on a thread pool, heartbeats every held lease at a third of
its TTL (carrying the latest progress), tells a handler when its operation
was canceled, and completes with the lease id as the fencing token. On
SIGTERM or SIGINT it stops claiming, lets running jobs finish for a grace
period, and hands back whatever is still running then."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import errors
from .client import MAX_WAIT, Client
from .models import Lease, Operation

log = logging.getLogger("longrun.worker")

Handler = Callable[["Job"], Optional[Dict[str, Any]]]


class Failure(Exception):
    """Raised by a handler to fail its operation with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Job:
    """One claimed operation, as its handler sees it."""

    def __init__(self, lease: Lease, ttl: float) -> None:
        self.operation: Operation = lease.operation
        self.attempt: int = lease.attempt
        self.lease_id: str = lease.lease_id
        #: The trace the operation was created in (W3C ``traceparent``), or
        #: None. Make the handler's spans its children, e.g. with
        #: OpenTelemetry: ``TraceContextTextMapPropagator().extract({"traceparent":
        #: job.traceparent})``; set it to the handler's own span to have the
        #: heartbeats and the completion nest under that span instead.
        self.traceparent: Optional[str] = lease.traceparent
        self._lock = threading.Lock()
        self._progress: Optional[float] = None
        self._properties: Optional[Dict[str, Any]] = None
        self._cancelled = threading.Event()
        self.lost = False
        self.next_beat = time.monotonic() + ttl / 3

    @property
    def cancelled(self) -> bool:
        """True once a heartbeat heard that the operation was canceled (or
        the lease was lost, or the worker is handing the job back): stop
        working; what the handler returns then is not recorded."""
        return self._cancelled.is_set()

    def progress(self, percent: float, properties: Optional[Dict[str, Any]] = None) -> None:
        """Records progress (and properties to merge); the next heartbeat
        reports it, so calling this often costs no request."""
        with self._lock:
            self._progress = percent
            if properties:
                self._properties = {**(self._properties or {}), **properties}

    def _drop_progress(self, report: Dict[str, Any]) -> None:
        """Forgets a refused progress value (unless a newer one came since)."""
        with self._lock:
            if self._progress == report.get("percent_complete"):
                self._progress = None

    def _restore_progress(self, report: Dict[str, Any]) -> None:
        """Puts back what a failed heartbeat did not deliver (newer progress wins)."""
        with self._lock:
            if self._progress is None:
                self._progress = report.get("percent_complete")
            if report.get("properties"):
                self._properties = {**report["properties"], **(self._properties or {})}

    def _take_progress(self) -> Dict[str, Any]:
        with self._lock:
            report: Dict[str, Any] = {}
            if self._progress is not None:
                report["percent_complete"] = self._progress
            if self._properties:
                report["properties"] = self._properties
            self._properties = None
            return report


class Worker:
    """Runs handlers for operations of ``kinds`` (default: the kinds that
    have a handler), ``concurrency`` at a time, each under a lease of
    ``lease_ttl`` seconds. ``scope`` limits the claims to one scope. An idle
    worker holds one claim open for up to ``claim_wait`` seconds (a
    long-poll): it costs the server a request per ``claim_wait`` seconds,
    and a stop waits at most that long for the claim in flight.
    ``traceback=True`` puts a failed handler's traceback in the error's
    details (off by default: stack traces leak internals)."""

    def __init__(
        self,
        client: Client,
        kinds: Optional[Sequence[str]] = None,
        *,
        concurrency: int = 4,
        lease_ttl: float = 30,
        scope: Optional[str] = None,
        owner: Optional[str] = None,
        grace: float = 30,
        claim_wait: float = 5,
        traceback: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency is at least 1")
        if lease_ttl < 3:
            raise ValueError("lease_ttl is at least 3 seconds (heartbeats go at a third of it)")
        self.client = client
        self.kinds: List[str] = list(kinds or [])
        self.concurrency = concurrency
        self.lease_ttl = lease_ttl
        self.scope = scope
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.grace = grace
        self.claim_wait = min(claim_wait, MAX_WAIT)
        self.include_traceback = traceback
        self._handlers: Dict[str, Handler] = {}
        self._jobs: Dict[str, Job] = {}
        self._jobs_lock = threading.Lock()
        self._slots = threading.Semaphore(concurrency)
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._idle = threading.Condition(self._jobs_lock)
        # A claimer claims one operation per round trip: larger pools claim
        # on a few connections at once.
        self._claimers = min(4, max(1, concurrency // 8))
        self.completed = 0  # operations this worker completed (any terminal state)

    def handler(self, kind: str) -> Callable[[Handler], Handler]:
        """Registers the decorated function as the handler of ``kind``."""

        def register(function: Handler) -> Handler:
            self._handlers[kind] = function
            if kind not in self.kinds:
                self.kinds.append(kind)
            return function

        return register

    def stop(self) -> None:
        """Stops claiming; ``run`` returns once running jobs are done (or
        handed back after the grace period)."""
        self._stopping.set()

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Works until ``stop`` (or SIGTERM/SIGINT, when called from the
        main thread), then drains."""
        if not self.kinds:
            raise ValueError("no kinds: register a handler with @worker.handler(kind)")
        previous = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, lambda *_: self.stop())
        try:
            self._work()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)  # a second signal acts as it did before

    def _work(self) -> None:
        beats = threading.Thread(target=self._heartbeat_loop, name="longrun-heartbeats", daemon=True)
        beats.start()
        claimers = [
            threading.Thread(target=self._claim_loop, name=f"longrun-claims-{n}", daemon=True)
            for n in range(self._claimers)
        ]
        for claimer in claimers:
            claimer.start()
        while not self._stopping.wait(0.5):
            pass
        log.info("stopping: no new claims; %d job(s) running", len(self._jobs))
        deadline = time.monotonic() + self.grace
        # A claim waiting on the server is let finish (what it gets is
        # handed back at once): cutting it off could lose an operation the
        # server granted just then until its lease lapsed.
        for claimer in claimers:
            claimer.join(self.claim_wait + 20)
        with self._idle:
            while self._jobs and time.monotonic() < deadline:
                self._idle.wait(timeout=max(0.0, deadline - time.monotonic()))
            left = list(self._jobs.values())
        for job in left:
            # Still running after the grace: hand it back so another worker
            # takes it now rather than after the lease lapses.
            job._cancelled.set()
            job.lost = True
            self._release(job.lease_id, job.traceparent)
        self._finished.set()

    # ------------------------------------------------------------ internals

    def _claim_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            if self._stopping.is_set():  # stopped while waiting for the slot: claim nothing
                self._slots.release()
                return
            try:
                lease = self.client.claim(
                    self.kinds, scope=self.scope, ttl=self.lease_ttl, owner=self.owner, wait=self.claim_wait
                )
                failures = 0
            except Exception as e:  # noqa: BLE001 - the loop must outlive any one failure
                self._slots.release()
                failures += 1
                retry_after = e.retry_after if isinstance(e, errors.LongrunError) else None
                pause = retry_after if retry_after is not None else min(0.5 * 2**failures, 15.0)
                log.warning("claim failed (%s); trying again in %.1f s", e, pause)
                self._stopping.wait(pause)
                continue
            if lease is None:
                self._slots.release()
                continue
            if self._stopping.is_set():
                # Claimed as the worker began to stop: handed back unstarted.
                self._release(lease.lease_id, lease.traceparent)
                self._slots.release()
                return
            job = Job(lease, self.lease_ttl)
            with self._jobs_lock:
                self._jobs[job.lease_id] = job
            # Daemon threads: a handler that ignores `cancelled` after the
            # grace (its lease handed back) does not keep the process alive.
            threading.Thread(target=self._run_job, args=(job,), name="longrun-job", daemon=True).start()

    def _run_job(self, job: Job) -> None:
        try:
            result = self._outcome(job)
            if result is not None and not job.cancelled:
                self._complete(job, result)
        except Exception as e:  # noqa: BLE001 - logged; the lease lapses and another attempt runs
            log.error("cannot complete %s: %s", job.lease_id, e)
        finally:
            with self._idle:
                self._jobs.pop(job.lease_id, None)
                self._idle.notify_all()
            self._slots.release()

    def _complete(self, job: Job, result: Dict[str, Any]) -> None:
        try:
            self.client.complete(job.lease_id, result, traceparent=job.traceparent)
        except errors.LeaseLost:
            # A completion retried after a broken connection may have taken
            # the first time: the operation says.
            op = self.client.get(job.operation.id)
            if not (op.done and op.attempts == job.attempt):
                log.warning("lease %s was lost before completion; its result is dropped", job.lease_id)
                return
        with self._jobs_lock:
            self.completed += 1

    def _outcome(self, job: Job) -> Optional[Dict[str, Any]]:
        """The result to complete with, from what the handler did."""
        handler = self._handlers.get(job.operation.kind)
        if handler is None:
            return {"state": "Failed", "error": {"code": "NoHandler", "message": f"no handler for {job.operation.kind}"}}
        try:
            returned = handler(job)
        except Failure as failure:
            return {"state": "Failed", "error": {"code": failure.code, "message": failure.message}}
        except Exception as e:  # noqa: BLE001 - any handler error fails the operation
            log.exception("handler of %s failed", job.operation.kind)
            error: Dict[str, Any] = {"code": "HandlerError", "message": str(e) or type(e).__name__}
            if self.include_traceback:
                error["details"] = [{"code": "Traceback", "message": traceback.format_exc()}]
            return {"state": "Failed", "error": error}
        if job.cancelled:
            return None
        result = dict(returned or {})
        result.setdefault("state", "Succeeded")
        return result

    def _heartbeat_loop(self) -> None:
        interval = self.lease_ttl / 3
        while not self._finished.is_set():
            with self._jobs_lock:
                jobs = list(self._jobs.values())
            now = time.monotonic()
            due = [job for job in jobs if job.next_beat <= now and not job.cancelled]
            for job in due:
                job.next_beat = now + interval
            # Concurrently, each bounded by a third of the TTL: one slow
            # heartbeat never holds back another lease's.
            beats = [threading.Thread(target=self._beat, args=(job,), daemon=True) for job in due]
            for beat in beats:
                beat.start()
            for beat in beats:
                beat.join()
            with self._jobs_lock:
                upcoming = [j.next_beat for j in self._jobs.values() if not j.cancelled]
            pause = min(upcoming, default=now + 0.5) - time.monotonic()
            time.sleep(min(max(pause, 0.05), 0.5))

    def _beat(self, job: Job) -> None:
        progress = job._take_progress()
        try:
            lease = self.client.heartbeat(
                job.lease_id,
                ttl=self.lease_ttl,
                deadline=self.lease_ttl / 3,
                traceparent=job.traceparent,
                **progress,
            )
            if lease.canceled:
                log.info("operation %s was canceled; telling its handler", job.operation.id)
                job._cancelled.set()
        except errors.LeaseLost:
            log.warning("lease %s was lost; stopping its job", job.lease_id)
            job.lost = True
            job._cancelled.set()
        except (errors.BadRequest, errors.Conflict) as e:
            # The progress was refused (it went down, or out of range): drop
            # it, and keep the lease with a bare heartbeat soon.
            log.warning("progress of %s refused (%s); dropped", job.lease_id, e)
            job._drop_progress(progress)
            job.next_beat = time.monotonic() + 0.1
        except Exception as e:  # noqa: BLE001 - the lease is still ours: try again soon
            log.warning("heartbeat of %s failed (%s); retrying", job.lease_id, e)
            job._restore_progress(progress)
            job.next_beat = time.monotonic() + 1

    def _release(self, lease_id: str, traceparent: Optional[str]) -> None:
        try:
            self.client.release(lease_id, traceparent=traceparent)
        except errors.LongrunError as e:
            log.warning("cannot hand back %s (%s); it returns to the queue when its lease lapses", lease_id, e)

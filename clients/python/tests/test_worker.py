"""The Worker against a real longrun: a queue drained with bounded
concurrency, failures, a killed worker's job re-run exactly once, a cancel
seen mid-job, and a drain on SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
import uuid

from longrun import Client, Failure, Worker
from conftest import worker_process


def unique_scope() -> str:
    return f"projects/sdk{uuid.uuid4().hex[:12]}"


def running_worker(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False}, daemon=True)
    thread.start()
    return thread


def wait_until(condition, timeout: float = 30.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not hold within {timeout} s")


def test_a_worker_processes_a_hundred_operations_four_at_a_time(server, admin_key):
    client = Client(server.url, key=admin_key)
    scope, kind = unique_scope(), f"drain{uuid.uuid4().hex[:8]}"
    ids = {client.create(scope, kind, properties={"n": n}).id for n in range(100)}
    running, most = [0], [0]
    lock = threading.Lock()
    worker = Worker(client, concurrency=4, scope=scope, claim_wait=1)

    @worker.handler(kind)
    def handle(job):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return {"resourceLocation": f"/done/{job.operation.properties['n']}", "properties": {"attempt": job.attempt}}

    thread = running_worker(worker)
    wait_until(lambda: worker.completed == 100, 60, "100 completions")
    worker.stop()
    thread.join(30)
    ops = list(client.list(scope))
    assert {op.id for op in ops} == ids
    assert all(op.state == "Succeeded" and op.resource_location == f"/done/{op.properties['n']}" for op in ops)
    assert all(op.attempts == 1 for op in ops), "each claimed once"
    assert 1 < most[0] <= 4, f"at most four at once, and more than one: {most[0]}"


def test_a_failure_and_an_exception_fail_their_operations(server, admin_key):
    client = Client(server.url, key=admin_key)
    scope, kind = unique_scope(), "failing"
    refused = client.create(scope, kind, properties={"how": "failure"})
    crashed = client.create(scope, kind, properties={"how": "crash"})
    worker = Worker(client, scope=scope, claim_wait=1)

    @worker.handler(kind)
    def handle(job):
        if job.operation.properties["how"] == "failure":
            raise Failure("DiskFull", "no space left")
        raise RuntimeError("boom")

    thread = running_worker(worker)
    first, second = client.result(refused.id, timeout=30), client.result(crashed.id, timeout=30)
    worker.stop()
    thread.join(30)
    assert (first.state, first.error.code, first.error.message) == ("Failed", "DiskFull", "no space left")
    assert (second.state, second.error.code, second.error.message) == ("Failed", "HandlerError", "boom")
    assert not second.error.details, "no traceback unless asked"


def test_progress_is_reported_on_heartbeats_and_a_cancel_reaches_the_handler(server, admin_key):
    client = Client(server.url, key=admin_key)
    scope, ttl = unique_scope(), 3.0
    op = client.create(scope, "long")
    started, saw_cancel = threading.Event(), []
    worker = Worker(client, scope=scope, lease_ttl=ttl, claim_wait=1)

    @worker.handler("long")
    def handle(job):
        job.progress(25, {"stage": "one"})
        started.set()
        while not job.cancelled:
            time.sleep(0.01)
        saw_cancel.append(time.monotonic())
        return {"properties": {"ignored": True}}

    thread = running_worker(worker)
    assert started.wait(30)
    wait_until(lambda: client.get(op.id).percent_complete == 25, 10, "progress from a heartbeat")
    assert client.get(op.id).properties == {"stage": "one"}
    canceled_at = time.monotonic()
    client.cancel(op.id)
    wait_until(lambda: saw_cancel, ttl / 3 + 1, "the handler seeing the cancel within ttl/3 + 1 s")
    worker.stop()
    thread.join(30)
    final = client.get(op.id)
    assert final.state == "Canceled" and "ignored" not in (final.properties or {})
    assert saw_cancel[0] - canceled_at <= ttl / 3 + 1


def test_a_killed_workers_job_is_rerun_and_completed_once_by_another(server, admin_key):
    client = Client(server.url, key=admin_key)
    kind = f"kill{uuid.uuid4().hex[:8]}"
    op = client.create(unique_scope(), kind)
    doomed = worker_process(server, admin_key, "doomed", kind, "60", "--ttl", "3")
    try:
        assert doomed.stdout.readline().strip() == "ready"
        assert doomed.stdout.readline().split() == ["started", op.id]
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        survivor = worker_process(server, admin_key, "survivor", kind, "0.2", "--ttl", "3")
        try:
            done = client.result(op.id, timeout=30)
        finally:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(30)
    finally:
        doomed.kill()
    assert (done.state, done.properties, done.attempts) == ("Succeeded", {"worker": "survivor"}, 2)


def test_sigterm_lets_running_jobs_finish_and_claims_nothing_new(server, admin_key):
    client = Client(server.url, key=admin_key)
    kind, scope = f"term{uuid.uuid4().hex[:8]}", unique_scope()
    first = client.create(scope, kind)
    worker = worker_process(server, admin_key, "draining", kind, "1.5")
    try:
        assert worker.stdout.readline().strip() == "ready"
        assert worker.stdout.readline().split() == ["started", first.id]
        worker.send_signal(signal.SIGTERM)
        later = client.create(scope, kind)
        assert worker.wait(30) == 0
        assert worker.stdout.read().split()[-1] == "stopped"
    finally:
        worker.kill()
    finished = client.get(first.id)
    assert (finished.state, finished.properties) == ("Succeeded", {"worker": "draining"})
    untouched = client.get(later.id)
    # Never started: unclaimed, or (when the claim waiting on the server
    # took it as the worker stopped) handed back at once.
    assert (untouched.state, untouched.properties, untouched.attempts <= 1) == ("NotStarted", None, True)


def test_a_refused_progress_is_dropped_and_the_lease_kept(server, admin_key):
    client = Client(server.url, key=admin_key)
    scope, ttl = unique_scope(), 3.0
    op = client.create(scope, "regress")
    worker = Worker(client, scope=scope, lease_ttl=ttl, claim_wait=1)

    @worker.handler("regress")
    def handle(job):
        job.progress(50)
        wait_until(lambda: client.get(op.id).percent_complete == 50, 10, "the first progress")
        job.progress(40)  # lower: the server refuses it
        time.sleep(2 * ttl)  # past the lease, had the heartbeats stopped extending it
        return {"properties": {"kept": True}}

    thread = running_worker(worker)
    done = client.result(op.id, timeout=30)
    worker.stop()
    thread.join(30)
    assert (done.state, done.properties, done.attempts, done.percent_complete) == ("Succeeded", {"kept": True}, 1, 50)


def test_the_handler_gets_the_trace_the_operation_was_created_in(server, admin_key):
    import httpx

    client = Client(server.url, key=admin_key)
    scope, kind = unique_scope(), "traced"
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    created = httpx.post(
        f"{server.url}/v1/operations",
        json={"scope": scope, "kind": kind},
        headers={"authorization": f"Bearer {admin_key}", "traceparent": traceparent},
    )
    assert created.status_code == 201
    untraced = client.create(scope, kind)
    seen = {}
    # What the worker's own requests carry (white-box: the client's httpx hooks).
    sent = []
    client._transport.http.event_hooks["request"].append(
        lambda request: sent.append((request.url.path, request.headers.get("traceparent")))
    )
    worker = Worker(client, scope=scope, claim_wait=1)

    @worker.handler(kind)
    def handle(job):
        seen[job.operation.id] = job.traceparent
        return {}

    thread = running_worker(worker)
    wait_until(lambda: worker.completed == 2, 30, "two completions")
    worker.stop()
    thread.join(30)
    assert seen == {created.json()["id"]: traceparent, untraced.id: None}
    completions = {path.split("/")[-1].split(".")[0]: header for path, header in sent if path.endswith(":complete")}
    assert completions == {created.json()["id"]: traceparent, untraced.id: None}, "each completion joins its trace"

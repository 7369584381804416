"""The Client against a real longrun: create, get, update, wait, result,
list, events, cancel, repeatability, typed errors and retries."""

from __future__ import annotations

import http.server
import threading
import time
import uuid

import pytest

from longrun import Client, Conflict, NotFound, TooManyRequests, Unauthorized, Unavailable
from conftest import serve


def unique_scope() -> str:
    return f"projects/sdk{uuid.uuid4().hex[:12]}"


def test_an_operation_is_created_read_moved_and_awaited(server, admin_key):
    client = Client(server.url, key=admin_key)
    scope = unique_scope()
    op = client.create(scope, "resize", properties={"w": 64})
    assert (op.scope, op.kind, op.state, op.properties, op.done) == (scope, "resize", "NotStarted", {"w": 64}, False)
    assert op.created_at is not None and op.operation_location
    assert client.get(op.id) == op
    running = client.update(op.id, state="Running", percent_complete=40)
    assert (running.state, running.percent_complete) == ("Running", 40)

    def finish() -> None:
        time.sleep(0.3)
        client.update(op.id, state="Succeeded", resource_location="/images/42")

    threading.Thread(target=finish).start()
    done = client.result(op.id, timeout=30)
    assert (done.state, done.resource_location, done.done) == ("Succeeded", "/images/42", True)
    assert client.wait(op.id, timeout=1, etag=running.etag).version == done.version, "a change since the etag: at once"


def test_result_gives_up_at_its_timeout(server, admin_key):
    client = Client(server.url, key=admin_key)
    op = client.create(unique_scope(), "resize")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.result(op.id, timeout=1.5)
    assert time.monotonic() - started < 10


def test_list_follows_every_page_with_filters(server, admin_key):
    client = Client(server.url, key=admin_key)
    scope = unique_scope()
    made = [client.create(scope, "resize").id for _ in range(5)]
    client.create(scope, "other")
    client.update(made[0], state="Running")
    listed = [op.id for op in client.list(scope, kind="resize", page_size=2)]
    assert sorted(listed) == sorted(made) and len(listed) == 5
    assert [op.id for op in client.list(scope, state="Running")] == [made[0]]


def test_cancel_ends_an_operation_and_a_finished_one_refuses_changes(server, admin_key):
    client = Client(server.url, key=admin_key)
    op = client.create(unique_scope(), "resize")
    assert client.cancel(op.id).state == "Canceled"
    with pytest.raises(Conflict) as refused:
        client.update(op.id, state="Running")
    assert refused.value.status == 409 and refused.value.request_id


def test_a_repeated_create_returns_the_first_operation(server, admin_key):
    client = Client(server.url, key=admin_key)
    scope, request = unique_scope(), str(uuid.uuid4())
    first = client.create(scope, "resize", request_id=request)
    again = client.create(scope, "resize", request_id=request)
    assert again.id == first.id
    assert [op.id for op in client.list(scope)] == [first.id]


def test_refusals_are_typed_with_the_servers_code(server, admin_key):
    with pytest.raises(NotFound) as missing:
        Client(server.url, key=admin_key).get(str(uuid.uuid4()))
    assert missing.value.code and missing.value.request_id
    with pytest.raises(Unauthorized):
        Client(server.url, key="lr_not_a_key").get(str(uuid.uuid4()))


def test_events_stream_changes_and_resume_after_the_last_one_seen(server, admin_key):
    client = Client(server.url, key=admin_key)
    scope = unique_scope()
    ids = [client.create(scope, "resize").id for _ in range(3)]
    stream = client.events(scope, last_event_id="0")
    seen = [next(stream) for _ in range(2)]
    stream.close()
    assert [e.operation.id for e in seen] == ids[:2]
    resumed = client.events(scope, last_event_id=seen[-1].id)
    assert next(resumed).operation.id == ids[2]
    resumed.close()


def test_events_reconnect_by_themselves_when_the_server_restarts(tmp_path):
    first = serve(tmp_path / "data", tmp_path / "server.log")
    key = first.key()
    port = first.url.rsplit(":", 1)[1]
    client = Client(first.url, key=key)
    scope = unique_scope()
    before = client.create(scope, "resize").id
    stream = client.events(scope, last_event_id="0")
    assert next(stream).operation.id == before
    first.stop()
    second = serve(tmp_path / "data", tmp_path / "server.log", listen=f"127.0.0.1:{port}")
    try:
        after = Client(second.url, key=key).create(scope, "resize").id
        assert next(stream).operation.id == after, "the stream came back on its own, after the last event"
    finally:
        stream.close()
        second.stop()


def test_429_is_retried_by_retry_after_until_it_passes(tmp_path):
    limited = serve(tmp_path / "data", tmp_path / "server.log", "--rate-limit", "2")
    try:
        key = limited.key()
        client = Client(limited.url, key=key, max_retries=10)
        op = client.create(unique_scope(), "resize")
        for _ in range(12):  # six times the burst of 4
            assert client.get(op.id).id == op.id
        impatient = Client(limited.url, key=key, max_retries=0)
        with pytest.raises(TooManyRequests):
            for _ in range(12):
                impatient.get(op.id)
    finally:
        limited.stop()


class Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 with Retry-After twice, then what longrun would."""

    answers = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Flaky.answers += 1
        if Flaky.answers <= 2:
            self.send_response(503)
            self.send_header("retry-after", "0")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = b'{"id":"x","scope":"projects/p","kind":"k","state":"Running","version":2,"operationLocation":""}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_503_is_retried_by_retry_after():
    # longrun answers 503 only when its store is down: a stand-in server
    # plays that part here (the Rust outage tests cover the real one).
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        op = Client(f"http://127.0.0.1:{httpd.server_port}", key="k").get("x")
        assert (op.state, Flaky.answers) == ("Running", 3)
    finally:
        httpd.shutdown()


def test_https_works_with_the_ca_bundle_it_is_given(tmp_path):
    secure = serve(tmp_path / "data", tmp_path / "server.log", "--tls")
    try:
        assert secure.url.startswith("https://")
        key = secure.key()
        ca = str(tmp_path / "data" / "tls" / "dev-ca.pem")
        op = Client(secure.url, key=key, verify=ca).create(unique_scope(), "resize")
        assert Client(secure.url, key=key, verify=ca).get(op.id).id == op.id
        with pytest.raises(Unavailable, match="not trusted"):
            Client(secure.url, key=key).get(op.id)  # the system's CAs do not know it: no retries, at once
    finally:
        secure.stop()

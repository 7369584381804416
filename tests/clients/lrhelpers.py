"""Shared helpers for the real-client conformance suite.

Nothing here talks to Azure: every URL is the longrun server the session
fixture started on 127.0.0.1. Every network call has a timeout, so a server
that stops answering fails a test instead of hanging CI.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import SansIOHTTPPolicy

# Seconds any single HTTP request may take (connect and read).
HTTP_TIMEOUT = 10
# Seconds an LRO driven by `serve --demo` (Succeeded after ~3 s) may take.
LRO_TIMEOUT = 30

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def op_id_from(url: str) -> str:
    """The operation id at the end of a status URL (relative or absolute)."""
    path = urlsplit(url).path
    last = path.rstrip("/").rsplit("/", 1)[-1]
    assert UUID_RE.fullmatch(last), f"no operation id at the end of {url!r}"
    return last


class StaticKeyCredential:
    """A TokenCredential whose token is a longrun API key.

    longrun accepts its keys as bearer tokens (SPEC §4), so this is all a
    Dev Center client needs; it records which scopes the SDK asked for.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.scopes_requested: List[tuple] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes_requested.append(scopes)
        return AccessToken(self.key, int(time.time()) + 3600)


@dataclass
class Exchange:
    """One request and its response, as seen from inside the pipeline."""

    at: float
    method: str
    url: str
    request_headers: CaseInsensitiveDict
    status: int
    headers: CaseInsensitiveDict
    text: str

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> str:
        return urlsplit(self.url).query


class Recorder(SansIOHTTPPolicy):
    """Records every request/response pair that goes through a pipeline.

    Installed as a per-retry policy, it sees each attempt; it records in
    on_response, when the request carries every header later policies added.
    """

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: List[Exchange] = []
        self._lock = threading.Lock()

    def on_response(self, request, response):  # noqa: D401 - azure-core hook
        http_req = request.http_request
        http_resp = response.http_response
        try:
            text = http_resp.text()
        except Exception:  # pylint: disable=broad-except
            text = ""
        with self._lock:
            self.exchanges.append(
                Exchange(
                    at=time.monotonic(),
                    method=http_req.method,
                    url=http_req.url,
                    request_headers=CaseInsensitiveDict(dict(http_req.headers)),
                    status=http_resp.status_code,
                    headers=CaseInsensitiveDict(dict(http_resp.headers)),
                    text=text,
                )
            )

    def matching(self, method: str, path_pattern: str) -> List[Exchange]:
        rx = re.compile(path_pattern)
        with self._lock:
            return [e for e in self.exchanges if e.method == method and rx.search(e.path)]


class KeyHeadersPolicy(SansIOHTTPPolicy):
    """Sends one longrun key both ways: as a bearer token (native, Dev Center,
    Sphere) and as Ocp-Apim-Subscription-Key (Face)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def on_request(self, request):
        request.http_request.headers["Authorization"] = f"Bearer {self.key}"
        request.http_request.headers["Ocp-Apim-Subscription-Key"] = self.key


class Native:
    """The native producer API (/v1), used to create and drive operations."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def create(self, scope: str, kind: str, **extra: Any) -> requests.Response:
        body = {"scope": scope, "kind": kind, **extra}
        r = self.session.post(f"{self.base_url}/v1/operations", json=body, timeout=HTTP_TIMEOUT)
        assert r.status_code == 201, f"native create failed: {r.status_code} {r.text}"
        return r

    def get(self, op_id: str) -> Dict[str, Any]:
        r = self.session.get(f"{self.base_url}/v1/operations/{op_id}", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, f"native get failed: {r.status_code} {r.text}"
        return r.json()

    def patch(self, op_id: str, body: Dict[str, Any]) -> Dict[str, Any]:
        r = self.session.patch(
            f"{self.base_url}/v1/operations/{op_id}",
            json=body,
            headers={"Content-Type": "application/merge-patch+json"},
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 200, f"native patch {body} failed: {r.status_code} {r.text}"
        return r.json()

    def cancel(self, op_id: str) -> Dict[str, Any]:
        r = self.session.post(f"{self.base_url}/v1/operations/{op_id}:cancel", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, f"native cancel failed: {r.status_code} {r.text}"
        return r.json()


@dataclass
class Driver:
    """Applies native PATCHes on a schedule from a background thread, the way
    a worker would while a client polls. `steps` are (seconds after start,
    merge patch). `applied` records when each step landed (monotonic)."""

    native: Native
    op_id: str
    steps: List[tuple]
    applied: List[float] = field(default_factory=list)
    errors: List[BaseException] = field(default_factory=list)
    _thread: Optional[threading.Thread] = None

    def start(self) -> "Driver":
        t0 = time.monotonic()

        def run() -> None:
            try:
                for after, patch in self.steps:
                    delay = t0 + after - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self.native.patch(self.op_id, patch)
                    self.applied.append(time.monotonic())
            except BaseException as err:  # surfaced by join()
                self.errors.append(err)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(timeout=LRO_TIMEOUT)
        assert not self._thread.is_alive(), "driver thread did not finish"
        if self.errors:
            raise self.errors[0]


def wait_until(predicate: Callable[[], Any], timeout: float = LRO_TIMEOUT, interval: float = 0.2) -> Any:
    """Polls predicate until it returns something truthy, or fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def retry_after_seconds(headers: Any, default: float = 1.0) -> float:
    """Retry-After as a client would read it (integer seconds)."""
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return default
    return float(int(value))


def assert_rfc3339_utc(value: Optional[str], what: str) -> None:
    assert isinstance(value, str) and re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", value
    ), f"{what} is not an RFC 3339 UTC timestamp: {value!r}"

"""``Client``: producers create and move operations, clients read them, and
workers claim them, over longrun's native API (``/v1``)."""

from __future__ import annotations

import email.utils
import json
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import httpx

from . import errors
from ._transport import Transport
from .models import Event, Lease, Operation

__version__ = "0.1.0"

#: The longest long-poll the server grants (``:wait`` and claims).
MAX_WAIT = 60.0


class Client:
    """A connection to one longrun service.

    ``key`` is a longrun API key, ``token`` a JWT from a trusted issuer (one
    of the two). ``verify`` is True (the system's CAs), False, or the path
    of a CA bundle (e.g. ``longrun-data/tls/dev-ca.pem``). Every call
    retries 429 and 503 by ``Retry-After`` up to ``max_retries`` times,
    waiting at most ``max_retry_wait`` seconds each time.
    """

    def __init__(
        self,
        base_url: str,
        key: Optional[str] = None,
        *,
        token: Optional[str] = None,
        verify: Union[bool, str] = True,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_retry_wait: float = 30.0,
    ) -> None:
        credential = key or token
        if not credential:
            raise ValueError("a key or a token is needed")
        self.base_url = base_url.rstrip("/")
        self._transport = Transport(
            self.base_url,
            credential,
            verify=verify,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            user_agent=f"longrun-python/{__version__}",
        )

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections."""
        self._transport.close()

    # ------------------------------------------------------------ producers

    def create(
        self,
        scope: str,
        kind: str,
        *,
        properties: Optional[Dict[str, Any]] = None,
        id: Optional[str] = None,
        request_id: Optional[str] = None,
        script: Optional[List[Dict[str, Any]]] = None,
        resource_location: Optional[str] = None,
    ) -> Operation:
        """Creates an operation (NotStarted). The request carries a
        repeatability id (``request_id``, or a fresh one), reused on its
        retries: a create retried after a lost answer returns the first
        operation instead of making a second."""
        body = given(
            scope=scope, kind=kind, properties=properties, id=id, script=script, resourceLocation=resource_location
        )
        headers = {
            "repeatability-request-id": request_id or str(uuid.uuid4()),
            "repeatability-first-sent": email.utils.formatdate(usegmt=True),
        }
        return self._operation(self._transport.send("POST", "/v1/operations", json=body, headers=headers))

    def update(
        self,
        id: str,
        *,
        state: Optional[str] = None,
        percent_complete: Optional[float] = None,
        properties: Optional[Dict[str, Any]] = None,
        resource_location: Optional[str] = None,
        error: Optional[Dict[str, Any]] = None,
        if_match: Optional[str] = None,
    ) -> Operation:
        """Moves an operation along (a JSON merge patch of the given fields);
        ``if_match`` (an ``Operation.etag``) refuses the change with
        ``PreconditionFailed`` if the operation moved meanwhile."""
        patch = given(
            state=state,
            percentComplete=percent_complete,
            properties=properties,
            resourceLocation=resource_location,
            error=error,
        )
        headers = {"content-type": "application/merge-patch+json"}
        if if_match:
            headers["if-match"] = if_match
        response = self._transport.send(
            "PATCH", f"/v1/operations/{id}", content=json.dumps(patch).encode(), headers=headers, repeatable=False
        )
        return self._operation(response)

    # -------------------------------------------------------------- readers

    def get(self, id: str) -> Operation:
        """The operation now."""
        return self._operation(self._transport.send("GET", f"/v1/operations/{id}"))

    def wait(self, id: str, timeout: float = 30.0, *, etag: Optional[str] = None) -> Operation:
        """Long-polls: returns when the operation changes (from ``etag``,
        when given) or ends, else at ``timeout`` (≤ 60 s) with its state."""
        seconds = max(1, min(int(timeout), int(MAX_WAIT)))
        headers = {"if-none-match": etag} if etag else None
        response = self._transport.send(
            "GET", f"/v1/operations/{id}:wait", params={"timeout": f"{seconds}s"}, headers=headers, timeout=seconds + 15
        )
        return self._operation(response)

    def result(self, id: str, timeout: Optional[float] = None) -> Operation:
        """Waits until the operation is in a terminal state and returns it
        (long-polls; never busy-polls). Raises ``TimeoutError`` after
        ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        op = self.get(id)
        while not op.done:
            left = MAX_WAIT if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"operation {id} is still {op.state} after {timeout} s")
            op = self.wait(id, timeout=min(left, MAX_WAIT), etag=op.etag)
        return op

    def cancel(self, id: str) -> Operation:
        """Cancels the operation (its worker hears it on its next heartbeat)."""
        return self._operation(self._transport.send("POST", f"/v1/operations/{id}:cancel"))

    def list(
        self,
        scope: Optional[str] = None,
        *,
        state: Optional[str] = None,
        kind: Optional[str] = None,
        page_size: Optional[int] = None,
    ) -> Iterator[Operation]:
        """Every matching operation, newest first, page after page."""
        params: Optional[Dict[str, Any]] = given(scope=scope, state=state, kind=kind, maxPageSize=page_size)
        url: Optional[str] = "/v1/operations"
        while url:
            page = self._transport.send("GET", url, params=params).json()
            for item in page.get("value", []):
                yield Operation.from_json(item)
            url, params = page.get("nextLink"), None

    def events(
        self,
        scope: Optional[str] = None,
        *,
        id: Optional[str] = None,
        last_event_id: Optional[str] = None,
        reconnect: bool = True,
    ) -> Iterator[Event]:
        """Server-sent events: every change in ``scope`` (or of operation
        ``id``), as it commits. When the stream drops, it reconnects with
        the last event id, so nothing is missed (the scope stream replays
        missed changes; an operation's stream sends its latest state)."""
        url = f"/v1/operations/{id}/events" if id else "/v1/events"
        params = {"scope": scope} if scope and not id else None
        failures = 0
        while True:
            headers = {"accept": "text/event-stream"}
            if last_event_id:
                headers["last-event-id"] = last_event_id
            try:
                # The server comments every 15 s: 45 s of silence is a dead connection.
                idle = httpx.Timeout(10.0, read=45.0)
                with self._transport.http.stream("GET", url, params=params, headers=headers, timeout=idle) as response:
                    if not response.is_success:
                        response.read()
                        raise errors.from_response(response)
                    failures = 0
                    for event in _parse_events(response.iter_lines()):
                        last_event_id = event.id
                        yield event
            except httpx.TransportError:
                pass
            except (errors.TooManyRequests, errors.Unavailable) as e:
                if e.retry_after is not None and reconnect:
                    time.sleep(min(e.retry_after, 60.0))
            if not reconnect:
                return
            failures += 1
            time.sleep(min(0.25 * 2**failures, 10.0))

    # -------------------------------------------------------------- workers

    def claim(
        self,
        kinds: Sequence[str],
        *,
        scope: Optional[str] = None,
        ttl: float = 30,
        owner: Optional[str] = None,
        wait: float = 0,
    ) -> Optional[Lease]:
        """Claims the oldest NotStarted operation of ``kinds``: it is Running
        under the returned lease until the lease lapses. None when there is
        none; with ``wait``, the server holds the request up to that many
        seconds (≤ 60) for one to be created."""
        body, headers = claim_request(kinds, scope=scope, ttl=ttl, owner=owner, wait=wait)
        # Not repeated after a broken connection: a claim that went through
        # would be held by no one until it lapses.
        response = self._transport.send(
            "POST", "/v1/leases", json=body, headers=headers, timeout=wait + 15, repeatable=False
        )
        return None if response.status_code == 204 else Lease.from_json(response.json())

    def heartbeat(
        self,
        lease_id: str,
        *,
        percent_complete: Optional[float] = None,
        properties: Optional[Dict[str, Any]] = None,
        ttl: Optional[float] = None,
        deadline: Optional[float] = None,
        traceparent: Optional[str] = None,
    ) -> Lease:
        """Extends a lease and reports progress; ``Lease.canceled`` says the
        operation was canceled (stop). Raises ``LeaseLost`` if it lapsed.
        With ``deadline`` (seconds) the call gives up then, unretried: a
        worker beats again soon rather than wait past its lease.
        ``traceparent`` (the lease's, or the handler's span) puts the
        request in that trace."""
        body = given(percentComplete=percent_complete, properties=properties, ttl=None if ttl is None else f"{int(ttl)}s")
        response = self._transport.send(
            "POST",
            f"/v1/leases/{lease_id}:heartbeat",
            json=body,
            timeout=deadline,
            max_retries=None if deadline is None else 0,
            headers=trace_headers(traceparent),
        )
        return Lease.from_json(response.json())

    def complete(self, lease_id: str, result: Dict[str, Any], *, traceparent: Optional[str] = None) -> Operation:
        """Ends a lease with a terminal result: ``{"state": "Succeeded",
        "resourceLocation": …, "properties": …}`` or ``{"state": "Failed",
        "error": {"code", "message"}}``."""
        # Repeatable: the lease id fences it, so a repeat after a broken
        # connection at worst answers LeaseLost.
        response = self._transport.send(
            "POST", f"/v1/leases/{lease_id}:complete", json=result, headers=trace_headers(traceparent)
        )
        return Operation.from_json(response.json()["operation"])

    def release(self, lease_id: str, *, traceparent: Optional[str] = None) -> Operation:
        """Hands a claimed operation back for another worker, at once."""
        response = self._transport.send(
            "POST", f"/v1/leases/{lease_id}:release", repeatable=False, headers=trace_headers(traceparent)
        )
        return Operation.from_json(response.json()["operation"])

    @staticmethod
    def _operation(response: httpx.Response) -> Operation:
        return Operation.from_json(response.json())


def trace_headers(traceparent: Optional[str]) -> Optional[Dict[str, str]]:
    """The W3C trace context header of a request, when there is one."""
    return None if traceparent is None else {"traceparent": traceparent}


def given(**fields: Any) -> Dict[str, Any]:
    """The fields that are not None: what a request sends."""
    return {name: value for name, value in fields.items() if value is not None}


def claim_request(
    kinds: Sequence[str], *, scope: Optional[str], ttl: float, owner: Optional[str], wait: float
) -> "tuple[Dict[str, Any], Dict[str, str]]":
    """The body and headers of a claim (``POST /v1/leases``)."""
    body: Dict[str, Any] = {"kinds": list(kinds), "ttl": f"{int(ttl)}s"}
    if scope:
        body["scope"] = scope
    if owner:
        body["owner"] = owner
    seconds = max(0, min(int(wait), int(MAX_WAIT)))
    return body, ({"prefer": f"wait={seconds}"} if seconds else {})


def _parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-sent events (WHATWG), as ``Event``s of longrun's operation JSON."""
    event_id, name, data = "", "message", []  # type: str, str, List[str]
    for line in lines:
        if not line:
            if data:
                yield Event(id=event_id, event=name, operation=Operation.from_json(json.loads("\n".join(data))))
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event_id = value
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)

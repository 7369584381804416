"""Typed errors: each carries the server's HTTP status, error code, message
and request id (``x-ms-request-id``), so a log line can be matched with the
server's own."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

import httpx


class LongrunError(Exception):
    """A request longrun refused, or one that could not reach it."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        body: Any = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body
        #: Seconds the server asked to wait before trying again (429, 503).
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.insert(0, f"{self.code}:")
        if self.status:
            parts.insert(0, f"HTTP {self.status}")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class BadRequest(LongrunError):
    """400 (or 413, 431): the request is malformed; retrying will not help."""


class Unauthorized(LongrunError):
    """401: no credential, or one longrun does not accept."""


class Forbidden(LongrunError):
    """403: the key lacks the role or the scope."""


class NotFound(LongrunError):
    """404: no such operation in the caller's reach (or it expired)."""


class Conflict(LongrunError):
    """409: the change breaks a rule (e.g. a terminal state), or a version moved."""


class LeaseLost(Conflict):
    """409 ``LeaseLost``: the lease lapsed or was superseded; stop the job and
    do not complete it."""


class PreconditionFailed(LongrunError):
    """412: ``If-Match`` named an older version."""


class TooManyRequests(LongrunError):
    """429 after the retries ran out."""


class Unavailable(LongrunError):
    """503 after the retries ran out, or longrun could not be reached."""


class ServerError(LongrunError):
    """Any other 5xx."""


_BY_STATUS: Dict[int, Type[LongrunError]] = {
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
}


def from_response(response: httpx.Response) -> LongrunError:
    """The typed error for a non-2xx answer, read from longrun's envelope
    (``{"error": {"code", "message"}}``)."""
    body: Any = None
    code = response.headers.get("x-ms-error-code")
    message = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code = error.get("code") or code
        message = error.get("message") or message
    except ValueError:
        if response.text:
            message = response.text[:500]
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else LongrunError
    if kind is Conflict and code == "LeaseLost":
        kind = LeaseLost
    retry_after: Optional[float] = None
    try:
        retry_after = float(response.headers.get("retry-after", ""))
    except ValueError:
        pass
    return kind(
        message,
        status=response.status_code,
        code=code,
        request_id=response.headers.get("x-ms-request-id"),
        body=body,
        retry_after=retry_after,
    )

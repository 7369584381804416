"""What longrun answers with, as plain dataclasses: an operation, its
error, a worker's lease and a server-sent event. Each keeps the JSON it
was read from in ``raw``."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

TERMINAL_STATES = frozenset({"Succeeded", "Failed", "Canceled", "CompleteWithErrors"})

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: Optional[str]) -> Optional[datetime.datetime]:
    """An RFC 3339 time as longrun writes it (up to 7 fractional digits,
    ``Z``), as an aware datetime; Python before 3.11 reads at most 6 digits."""
    if not text:
        return None
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text.replace("Z", "+00:00"), count=1)
    return datetime.datetime.fromisoformat(text)


@dataclass(frozen=True)
class OperationError:
    """Why an operation failed: the producer's code and message."""

    code: str
    message: str
    target: Optional[str] = None
    details: Any = None

    @staticmethod
    def from_json(data: Optional[Dict[str, Any]]) -> Optional["OperationError"]:
        if not data:
            return None
        return OperationError(data.get("code", ""), data.get("message", ""), data.get("target"), data.get("details"))


@dataclass(frozen=True)
class Operation:
    """An operation as the native API shows it."""

    id: str
    scope: str
    kind: str
    state: str
    version: int
    created_at: Optional[datetime.datetime]
    last_action_at: Optional[datetime.datetime]
    operation_location: str
    percent_complete: Optional[float] = None
    started_at: Optional[datetime.datetime] = None
    finished_at: Optional[datetime.datetime] = None
    expires_at: Optional[datetime.datetime] = None
    resource_location: Optional[str] = None
    details_location: Optional[str] = None
    properties: Optional[Dict[str, Any]] = None
    error: Optional[OperationError] = None
    attempts: int = 0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the operation is in a terminal state."""
        return self.state in TERMINAL_STATES

    @property
    def etag(self) -> str:
        """Its version as an ETag (``"7"``), for ``If-Match``/``If-None-Match``."""
        return f'"{self.version}"'

    @staticmethod
    def from_json(data: Dict[str, Any]) -> "Operation":
        return Operation(
            id=data["id"],
            scope=data["scope"],
            kind=data["kind"],
            state=data["state"],
            version=int(data["version"]),
            created_at=parse_time(data.get("createdAt")),
            last_action_at=parse_time(data.get("lastActionAt")),
            operation_location=data.get("operationLocation", ""),
            percent_complete=data.get("percentComplete"),
            started_at=parse_time(data.get("startedAt")),
            finished_at=parse_time(data.get("finishedAt")),
            expires_at=parse_time(data.get("expiresAt")),
            resource_location=data.get("resourceLocation"),
            details_location=data.get("detailsLocation"),
            properties=data.get("properties"),
            error=OperationError.from_json(data.get("error")),
            attempts=int(data.get("attempts", 0)),
            raw=data,
        )


@dataclass(frozen=True)
class Lease:
    """A worker's claim on an operation. ``lease_id`` is the fencing token
    every heartbeat and the completion carry."""

    lease_id: str
    attempt: int
    expires_at: Optional[datetime.datetime]
    canceled: bool
    operation: Operation
    #: The W3C trace context of the request that created the operation
    #: (None when it brought none and the server does not trace): make the
    #: work's spans its children to join that trace.
    traceparent: Optional[str] = None

    @staticmethod
    def from_json(data: Dict[str, Any]) -> "Lease":
        return Lease(
            lease_id=data["leaseId"],
            attempt=int(data["attempt"]),
            expires_at=parse_time(data.get("expiresAt")),
            canceled=bool(data.get("canceled", False)),
            operation=Operation.from_json(data["operation"]),
            traceparent=data.get("traceparent"),
        )


@dataclass(frozen=True)
class Event:
    """One server-sent event: ``id`` resumes the stream (``last_event_id``)."""

    id: str
    event: str
    operation: Operation

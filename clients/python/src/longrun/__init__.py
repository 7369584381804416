"""longrun: the client and worker SDK of the longrun operation service.

    from longrun import Client, Worker, Failure
"""

from .client import Client, __version__
from .errors import (
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
)
from .models import Event, Lease, Operation, OperationError
from .worker import Failure, Job, Worker

__all__ = [
    "BadRequest",
    "Client",
    "Conflict",
    "Event",
    "Failure",
    "Forbidden",
    "Job",
    "Lease",
    "LeaseLost",
    "LongrunError",
    "NotFound",
    "Operation",
    "OperationError",
    "PreconditionFailed",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "Worker",
    "__version__",
]

"""One HTTP client per ``Client``: the credential on every request, and
retries of 429 and 503 by the server's ``Retry-After`` (bounded), of
connections that could not be made, and, for requests safe to repeat, of
connections that broke. Nothing else is retried."""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from typing import Any, Dict, Optional, Union

import httpx

from . import errors

RETRIED_STATUSES = (429, 503)


class Transport:
    def __init__(
        self,
        base_url: str,
        credential: str,
        *,
        verify: Union[bool, str],
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
        user_agent: str,
    ) -> None:
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.verify = verify
        self.user_agent = user_agent
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"authorization": f"Bearer {credential}", "user-agent": user_agent},
            verify=ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify,
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    @property
    def credential_header(self) -> str:
        return self.http.headers["authorization"]

    def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: Optional[bytes] = None,
        params: Optional[Dict[str, Any]] = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        repeatable: bool = True,
        max_retries: Optional[int] = None,
    ) -> httpx.Response:
        """Sends a request, retrying as the module says; raises the typed
        error of a refusal. ``repeatable`` says whether a request that may
        have reached the server can be sent again (GETs, creates with a
        repeatability id, cancels)."""
        attempt = 0
        retries = self.max_retries if max_retries is None else max_retries
        while True:
            try:
                kwargs: Dict[str, Any] = {"params": params, "headers": headers}
                if timeout is not None:
                    kwargs["timeout"] = timeout
                if json is not None:
                    kwargs["json"] = json
                elif content is not None:
                    kwargs["content"] = content
                response = self.http.request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                if _untrusted(e):
                    raise errors.Unavailable(f"the server's certificate is not trusted: {e}") from e
                attempt = self._again(attempt, retries, None, e)
                continue
            except httpx.TransportError as e:
                if not repeatable:
                    raise errors.Unavailable(f"the connection broke: {e!r}") from e
                attempt = self._again(attempt, retries, None, e)
                continue
            if response.status_code in RETRIED_STATUSES and attempt < retries:
                attempt = self._again(attempt, retries, response, None)
                continue
            if response.is_success:
                return response
            raise errors.from_response(response)

    def _again(
        self, attempt: int, retries: int, response: Optional[httpx.Response], error: Optional[Exception]
    ) -> int:
        """Sleeps before retry number ``attempt + 1``, or raises when none is left."""
        if attempt >= retries:
            raise errors.Unavailable(f"longrun could not be reached: {error!r}") from error
        time.sleep(self.delay(attempt, response))
        return attempt + 1

    def delay(self, attempt: int, response: Optional[httpx.Response]) -> float:
        """The server's ``Retry-After`` (seconds or an HTTP date) when it
        sent one, else exponential backoff with jitter; never above
        ``max_retry_wait``."""
        header = response.headers.get("retry-after") if response is not None else None
        wait: Optional[float] = None
        if header:
            try:
                wait = float(header)
            except ValueError:
                try:
                    wait = email.utils.parsedate_to_datetime(header).timestamp() - time.time()
                except (TypeError, ValueError):
                    wait = None
        if wait is None:
            wait = min(0.25 * 2**attempt, 8.0) * (0.5 + random.random() / 2)
        return max(0.0, min(wait, self.max_retry_wait))


def _untrusted(error: BaseException) -> bool:
    """Whether a connection failed on the server's certificate: no retry mends that."""
    seen: "BaseException | None" = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

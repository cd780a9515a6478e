"""The HTTP layer: token authentication, JSON errors as HeldoutError, and retries.

Retries (tenacity): a 429 or 503 is retried after its `Retry-After` when that is at most
`max_retry_after` seconds (a quota 429 says "tomorrow": that is an error, not a wait);
a connection that could not be opened is retried for every method, other transport
errors only for methods that are safe to repeat (a POST that may have arrived is not
sent twice).
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from heldout import __version__

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class HeldoutError(Exception):
    """The server refused (a JSON error: `detail`, `code`) or could not be reached."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str = "",
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" ({self.status} {self.code})" if self.status else ""
        return f"{self.detail}{where}"


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response, delay: float) -> None:
        super().__init__(f"{response.status_code}, retry after {delay}s")
        self.response = response
        self.delay = delay


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds only; an HTTP date counts as unknown)."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from(response: httpx.Response) -> HeldoutError:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail, code = f"HTTP {response.status_code}", ""
    if isinstance(body, dict):
        detail = str(body.get("detail") or _field_errors(body) or detail)
        code = str(body.get("code") or "")
    return HeldoutError(
        detail,
        status=response.status_code,
        code=code,
        body=body,
        retry_after=retry_after_seconds(response),
    )


def _field_errors(body: dict) -> str:
    """A DRF validation error ({"field": ["message"]}) as one sentence."""
    parts = []
    for name, messages in body.items():
        if isinstance(messages, list):
            parts.append(f"{name}: {' '.join(str(m) for m in messages)}")
    return "; ".join(parts)


class Http:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        attempts: int = 5,
        max_retry_after: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": f"heldout-client/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.base = url.rstrip("/")
        self.attempts = attempts
        self.max_retry_after = max_retry_after
        self.client = httpx.Client(
            base_url=self.base,
            headers=headers,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,  # the API never redirects (docs/api.md)
        )

    def close(self) -> None:
        self.client.close()

    def absolute(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base}/api/v1/{path_or_url.lstrip('/')}"

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; an error answer (>= 400) raises HeldoutError."""
        url = self.absolute(path_or_url)
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: self._retryable(method, e)),
            reraise=True,
        )
        try:
            response = retrying(self._send, method, url, **kwargs)
        except _RetryableStatus as exhausted:
            raise error_from(exhausted.response) from None
        except httpx.TransportError as exc:
            raise HeldoutError(f"Cannot reach {self.base}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from(response)
        return response

    def json(self, method: str, path_or_url: str, **kwargs: Any) -> Any:
        return self.request(method, path_or_url, **kwargs).json()

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, url, **kwargs)
        if response.status_code in (429, 503):
            delay = retry_after_seconds(response)
            if delay is None and response.status_code == 503:
                delay = 1.0
            if delay is not None and delay <= self.max_retry_after:
                raise _RetryableStatus(response, delay)
        return response

    def _retryable(self, method: str, exc: BaseException) -> bool:
        if isinstance(exc, _RetryableStatus):
            return True
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return True  # nothing was sent
        return isinstance(exc, httpx.TransportError) and method.upper() in IDEMPOTENT

    @staticmethod
    def _wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            return exc.delay
        return wait_exponential(multiplier=0.5, max=10)(state)

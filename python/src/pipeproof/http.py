"""HTTP transport: one request with retries, backoff, timeouts and error mapping.

Which calls may be retried is the caller's decision (``retry=``): reads, step posts (they
carry an ``Idempotency-Key``), seals and redactions are safe to repeat; creating a run is
retried only when the connection could not be made at all, so the server never saw the first
attempt.
"""

from __future__ import annotations

import json
import logging
import random
import time
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import requests

from .errors import (
    AuthError,
    ConnectionError,
    PipeproofError,
    ServerError,
    ValidationError,
)

__all__ = ["Transport", "Timeout", "url_problem"]

log = logging.getLogger("pipeproof")

#: A timeout in seconds: one number for connecting and for each wait for the server, or a
#: ``(connect, read)`` pair as in requests.
Timeout = Union[float, Tuple[float, float]]

#: Retry on every connection failure, timeout and 5xx reply (the call is idempotent).
RETRY_ALWAYS = "always"
#: Retry only when no connection was made (the server cannot have seen the request).
RETRY_CONNECT = "connect"
#: Never retry.
RETRY_NEVER = "never"

_MAX_DELAY = 10.0


class Transport:
    """Sends requests to one server with a bearer token."""

    def __init__(
        self,
        url: str,
        token: Optional[str],
        *,
        timeout: Timeout,
        retries: int,
        backoff: float,
        session: Optional[requests.Session] = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "pipeproof-python/0.1")
        #: When set (a server URL that cannot work), every request raises it.
        self.config_error: Optional[PipeproofError] = None

    def api(self, path: str) -> str:
        """The absolute URL of an API route (``path`` starts with ``/``)."""
        return f"{self.url}/api/v1{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        retry: str,
        params: Optional[Mapping[str, Any]] = None,
        json_body: Any = None,
        body: Optional[Callable[[], Iterable[bytes]]] = None,
        headers: Optional[Dict[str, str]] = None,
        stream: bool = False,
        raw_url: bool = False,
    ) -> requests.Response:
        """Sends a request and returns the successful (2xx) reply.

        ``body`` is a factory: it is called once per attempt, so a streamed body is
        produced afresh for each retry.

        Raises:
            AuthError: 401 or 403.
            ValidationError: another 4xx, with the server's problem detail.
            ServerError: a 5xx after all retries.
            ConnectionError: no answer after all retries.
        """
        if self.config_error is not None:
            raise self.config_error
        url = path if raw_url else self.api(path)
        all_headers: Dict[str, str] = dict(headers or {})
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        attempts = 1 + self.retries
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                reply = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=body() if body is not None else None,
                    headers=all_headers,
                    timeout=self.timeout,
                    stream=stream,
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as err:
                # requests.ConnectionError covers refused and reset connections and
                # bodies cut short; ConnectTimeout is both a ConnectionError and a Timeout.
                retryable = retry == RETRY_ALWAYS or (
                    retry == RETRY_CONNECT and _not_sent(err)
                )
                if last or not retryable:
                    what = "did not answer in time" if _is_timeout(err) else "is unreachable"
                    tried = f" after {attempt + 1} attempts" if attempt else ""
                    raise ConnectionError(
                        f"{method} {url}: the pipeproof server {what}{tried} ({_reason(err)}); "
                        "check that it runs and that PIPEPROOF_URL points at it"
                    ) from err
                self._wait(attempt, f"{method} {path}: {_reason(err)}")
                continue
            except requests.RequestException as err:
                # Anything else requests refuses (an unusable URL, a bad header) is not
                # worth retrying.
                raise ValidationError(
                    f"{method} {url}: the request could not be sent: {_reason(err)}"
                ) from err
            if reply.status_code < 400:
                return reply
            if reply.status_code >= 500 and retry == RETRY_ALWAYS and not last:
                delay = _retry_after(reply)
                reply.close()
                self._wait(attempt, f"{method} {path}: HTTP {reply.status_code}", delay)
                continue
            raise self._error(method, url, reply)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, attempt: int, why: str, delay: Optional[float] = None) -> None:
        if delay is None:
            delay = min(_MAX_DELAY, self.backoff * (2**attempt))
            delay *= random.uniform(0.75, 1.25)
        log.warning("pipeproof: %s; retrying in %.2f s", why, delay)
        time.sleep(delay)

    def _error(self, method: str, url: str, reply: requests.Response) -> PipeproofError:
        status = reply.status_code
        problem = _problem(reply)
        if problem is not None:
            message = f"{problem.get('title') or reply.reason}: {problem.get('detail', '')}"
        else:
            text = reply.text.strip()
            message = f"{reply.reason or 'error'}: {text[:500]}" if text else str(reply.reason)
        message = f"{method} {url} -> {status} {message}"
        if status in (401, 403):
            if not self.token:
                message += " (no token was given: pass token= or set PIPEPROOF_TOKEN)"
            return AuthError(message, status=status, problem=problem)
        if status < 500:
            return ValidationError(message, status=status, problem=problem)
        return ServerError(message, status=status, problem=problem)


def _problem(reply: requests.Response) -> Optional[Dict[str, Any]]:
    try:
        doc = reply.json()
    except (ValueError, json.JSONDecodeError):
        return None
    if isinstance(doc, dict) and ("detail" in doc or "title" in doc):
        return doc
    return None


def _retry_after(reply: requests.Response) -> Optional[float]:
    value = reply.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(_MAX_DELAY, max(0.0, float(value)))
    except ValueError:
        return None


def _not_sent(err: Exception) -> bool:
    """True when the request certainly never reached the server."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    text = repr(err)
    return any(
        marker in text
        for marker in (
            "NewConnectionError",
            "Failed to establish a new connection",
            "Connection refused",
            "NameResolutionError",
        )
    )


def _is_timeout(err: Exception) -> bool:
    return isinstance(err, requests.Timeout)


def _reason(err: Exception) -> str:
    inner: Any = err
    for _ in range(4):
        args = getattr(inner, "args", None)
        if args and isinstance(args[0], Exception):
            inner = args[0]
        else:
            break
    reason = getattr(inner, "reason", None)
    text = str(reason if reason is not None else inner)
    return text if len(text) < 300 else text[:297] + "..."


def url_problem(url: str) -> Optional[str]:
    """Why ``url`` cannot be a server's base URL, or ``None`` when it can."""
    if "://" not in url:
        return f"it has no scheme; write it as http://{url} (or https://)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        return f"it is malformed ({err}); write it as http://HOST:PORT"
    if parts.scheme.lower() not in ("http", "https"):
        return f"the scheme {parts.scheme!r} is not http or https"
    if not parts.hostname:
        return "it names no host; write it as http://HOST:PORT"
    if port == 0:
        return "port 0 cannot be connected to"
    return None

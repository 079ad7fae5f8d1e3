"""The exceptions the client raises.

Every error derives from :class:`PipeproofError`, so ``except pp.PipeproofError`` catches
them all. Errors that come from an HTTP reply carry the server's problem document
(``application/problem+json``): its ``detail`` says what was wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = [
    "PipeproofError",
    "ConnectionError",
    "AuthError",
    "ValidationError",
    "UnsupportedDataError",
    "ServerError",
]


class PipeproofError(Exception):
    """Base class of every error raised by the pipeproof client.

    Attributes:
        status: The HTTP status of the reply that caused the error, if there was one.
        problem: The server's problem document (``type``, ``title``, ``status``,
            ``detail``), if the reply carried one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        problem: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem

    @property
    def detail(self) -> str:
        """The server's explanation (the problem's ``detail``), or the message."""
        if self.problem and isinstance(self.problem.get("detail"), str):
            return self.problem["detail"]
        return str(self)


class ConnectionError(PipeproofError):  # noqa: A001 - pp.ConnectionError is the public name
    """The server could not be reached, or did not answer in time, after all retries."""


class AuthError(PipeproofError):
    """The server refused the token: missing or unknown (401) or lacking a scope (403)."""


class ValidationError(PipeproofError):
    """The request or its data was rejected (a 4xx reply, or a check made before sending).

    The message holds the server's problem detail, which says what to fix.
    """


class UnsupportedDataError(ValidationError, TypeError):
    """The object given as data is not a table the client can convert (a list, a Series, a
    bare Arrow array, ``None``).

    It is a :class:`ValidationError`, so ``on_error="warn"`` turns it into a warning, and a
    :class:`TypeError`, as the data is of the wrong type.
    """


class ServerError(PipeproofError):
    """The server failed (a 5xx reply) and retries did not help."""

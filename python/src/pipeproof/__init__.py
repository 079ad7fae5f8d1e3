"""pipeproof: audit-grade snapshots and diffs of step-wise batch pipelines.

>>> import pipeproof as pp
>>> client = pp.Client("http://127.0.0.1:8080", token="...")  # or PIPEPROOF_URL / _TOKEN
>>> with client.run("daily_positions", labels={"env": "prod"}) as run:
...     run.snapshot(df, step="load", key="trade_id")

Leaving the block seals the run; an exception marks it failed with the error recorded.
"""

from .client import DEFAULT_URL, Client, PipeproofWarning, Run, verify_bundle
from .errors import (
    AuthError,
    ConnectionError,
    PipeproofError,
    ServerError,
    UnsupportedDataError,
    ValidationError,
)
from .frames import to_arrow
from .results import Check, Redacted, Redaction, StepResult, VerifyResult

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Run",
    "StepResult",
    "Redacted",
    "Redaction",
    "VerifyResult",
    "Check",
    "PipeproofError",
    "ConnectionError",
    "AuthError",
    "ValidationError",
    "UnsupportedDataError",
    "ServerError",
    "PipeproofWarning",
    "verify_bundle",
    "to_arrow",
    "DEFAULT_URL",
    "__version__",
]

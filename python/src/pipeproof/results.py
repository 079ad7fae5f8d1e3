"""Small result objects: what a snapshot stored, what a redaction removed, and what
verifying a bundle found.

They wrap the server's JSON (the ``Step`` and ``Redacted`` types of the HTTP API and the
report of ``pipeproof verify --format json``) with attribute access and a readable ``repr``;
``to_dict()`` gives the JSON back unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["StepResult", "Redaction", "Redacted", "Check", "VerifyResult"]


def _short(value: Optional[str], n: int = 12) -> str:
    return "-" if value is None else value[:n]


def _redaction(found: Any) -> Optional["Redaction"]:
    """A step's ``redacted`` or ``statistics_redacted`` (absent when not)."""
    if not isinstance(found, dict):
        return None
    return Redaction(at=str(found["at"]), reason=str(found["reason"]))


class StepResult:
    """A step as the server stored it: the chained record, the schema, the statistics and
    the diff against the previous step.

    Attributes mirror the record (``index``, ``step``, ``rows``, ``content_root``, ...)
    and the diff summary counts (``added``, ``removed``, ``changed``, ``unchanged``; all
    ``None`` for a run's first step, which has nothing to compare against). A step whose
    details and kept data were removed by a redaction says when and why in ``redacted``,
    and one whose statistics were removed in ``statistics_redacted``.
    """

    def __init__(self, data: Dict[str, Any], *, replayed: bool = False) -> None:
        self._data = data
        #: True when the server answered with a step it had already stored for the same
        #: idempotency key (a retried post), rather than storing a new one.
        self.replayed = replayed

    # The record.
    @property
    def record(self) -> Dict[str, Any]:
        """The chained step record, as hashed by the server."""
        return self._data["record"]

    @property
    def hash(self) -> str:
        """The record's hash (hex)."""
        return self._data["hash"]

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.record["run_id"]

    @property
    def index(self) -> int:
        """The step's 0-based position in the run."""
        return int(self.record["index"])

    @property
    def step(self) -> str:
        """The step's name."""
        return self.record["step"]

    @property
    def rows(self) -> int:
        """The step's row count."""
        return int(self.record["rows"])

    @property
    def key(self) -> List[str]:
        """The key columns the diff used (empty for a multiset diff)."""
        return list(self.record.get("key") or [])

    @property
    def content_root(self) -> str:
        """The order-independent Merkle root of the rows (hex)."""
        return self.record["content_root"]

    @property
    def order_root(self) -> str:
        """The order-sensitive root of the rows (hex)."""
        return self.record["order_root"]

    @property
    def schema_hash(self) -> str:
        """The hash of the physical schema (hex)."""
        return self.record["schema_hash"]

    @property
    def prev(self) -> Optional[str]:
        """The previous record's hash (``None`` for the first step)."""
        return self.record.get("prev")

    @property
    def created_at(self) -> str:
        """When the server stored the step (RFC 3339, UTC)."""
        return self.record["created_at"]

    @property
    def params(self) -> Any:
        """The step's parameters as recorded (diff options included)."""
        return self.record.get("params")

    @property
    def schema(self) -> List[Dict[str, Any]]:
        """The columns: ``name``, ``type`` (the fingerprint spec's spelling), ``nullable``."""
        return self._data.get("schema") or []

    @property
    def stats(self) -> List[Dict[str, Any]]:
        """Column statistics, in schema order; empty once a redaction removed them
        (:attr:`statistics_redacted`)."""
        return self._data.get("stats") or []

    @property
    def artifact(self) -> bool:
        """Whether the server keeps the full snapshot (a redaction removes it)."""
        return bool(self._data.get("artifact"))

    @property
    def redacted(self) -> Optional["Redaction"]:
        """When and why the step's diff details and kept data were removed from the server
        (:meth:`Run.redact <pipeproof.Run.redact>`); ``None`` for a step never redacted.

        Its record, row hashes, statistics (unless :attr:`statistics_redacted`) and diff
        counts remain, so the run still verifies; reading its details (``run.diff``) or
        its data (``run.artifact``) raises a :class:`~pipeproof.ValidationError` with
        status 410.
        """
        return _redaction(self._data.get("redacted"))

    @property
    def statistics_redacted(self) -> Optional["Redaction"]:
        """When and why the step's column statistics were removed from the server
        (:meth:`Run.redact <pipeproof.Run.redact>` with ``statistics=True``: their minimum
        and maximum are values of the data); ``None`` while the server keeps them.

        :attr:`stats` is then empty; the record still binds their digest.
        """
        return _redaction(self._data.get("statistics_redacted"))

    # The diff.
    @property
    def diff(self) -> Optional[Dict[str, Any]]:
        """The diff summary against the previous step (``None`` for the first step)."""
        return self._data.get("diff")

    def _count(self, name: str) -> Optional[int]:
        diff = self.diff
        return None if diff is None else int(diff[name])

    @property
    def added(self) -> Optional[int]:
        """Rows only in this step."""
        return self._count("added")

    @property
    def removed(self) -> Optional[int]:
        """Rows only in the previous step."""
        return self._count("removed")

    @property
    def changed(self) -> Optional[int]:
        """Rows in both with at least one changed cell (always 0 without a key)."""
        return self._count("changed")

    @property
    def unchanged(self) -> Optional[int]:
        """Rows in both with no changed cell."""
        return self._count("unchanged")

    @property
    def schema_changes(self) -> Optional[Dict[str, List[str]]]:
        """The columns ``added`` and ``removed`` since the previous step, and those
        ``retyped`` to another type family (int to float, say); ``None`` for the first step.

        Columns the diff was told to ``ignore`` are left out, and so are changes that leave
        the data as it was: another physical type of the same family (int32 to int64, a
        dictionary-encoded string) or another column order. ``diff["schema"]`` has them all.
        """
        diff = self.diff
        if diff is None:
            return None
        schema = diff.get("schema") or {}
        params = self.params if isinstance(self.params, dict) else {}
        ignored = set(params.get("ignore_columns") or [])
        retyped = [c for c in schema.get("retyped") or [] if c.get("family_changed", True)]
        columns = {
            "added": schema.get("added") or [],
            "removed": schema.get("removed") or [],
            "retyped": retyped,
        }
        return {
            kind: [str(c["name"]) for c in found if str(c["name"]) not in ignored]
            for kind, found in columns.items()
        }

    @property
    def is_same(self) -> Optional[bool]:
        """True when the step holds the same data as the previous one: no row added,
        removed or changed, and no column added, removed or retyped (see
        :attr:`schema_changes`). ``None`` for the first step."""
        diff = self.diff
        changes = self.schema_changes
        if diff is None or changes is None:
            return None
        rows_same = diff["added"] == 0 and diff["removed"] == 0 and diff["changed"] == 0
        return rows_same and not any(changes.values())

    def to_dict(self) -> Dict[str, Any]:
        """The server's JSON for the step (``record``, ``hash``, ``schema``, ``stats``,
        ``diff``, ``artifact`` and, for a redacted step, ``redacted`` and
        ``statistics_redacted``), as a deep copy."""
        return copy.deepcopy(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StepResult) and other._data == self._data

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        parts = [
            f"#{self.index} {self.step!r}",
            f"rows={self.rows}",
            f"content_root={_short(self.content_root)}",
        ]
        if self.key:
            parts.append(f"key={','.join(self.key)}")
        if self.diff is None:
            parts.append("first step")
        else:
            parts.append(
                f"added={self.added} removed={self.removed} changed={self.changed}"
            )
            # Columns added (+), removed (-) and retyped (~).
            changes = self.schema_changes or {}
            columns = [
                sign + name
                for kind, sign in (("added", "+"), ("removed", "-"), ("retyped", "~"))
                for name in changes.get(kind, [])
            ]
            if columns:
                parts.append(f"columns={','.join(columns)}")
            if self.diff.get("summary_only"):
                parts.append("summary only")
            elif self.diff.get("details_truncated"):
                parts.append("details truncated")
        if self.redacted is not None:
            parts.append(f"redacted {self.redacted.at}")
        if self.statistics_redacted is not None:
            parts.append(f"statistics redacted {self.statistics_redacted.at}")
        if self.replayed:
            parts.append("replayed")
        return f"StepResult({' '.join(parts)})"


@dataclass(frozen=True)
class Redaction:
    """When and why a step's diff details and kept data (:attr:`StepResult.redacted`), or
    its column statistics (:attr:`StepResult.statistics_redacted`), were removed from the
    server."""

    #: When (RFC 3339, UTC).
    at: str
    #: Why, as the one who redacted it said.
    reason: str


@dataclass(frozen=True)
class Redacted:
    """What :meth:`Client.redact <pipeproof.Client.redact>` removed from a run.

    Step lists hold 0-based step indexes, in order.
    """

    #: The run's id.
    run_id: str
    #: When the redaction was made (RFC 3339, UTC).
    at: str
    #: The steps redacted now (their diff details and kept data removed).
    steps: Tuple[int, ...]
    #: Steps asked for that had been redacted before (details or statistics) and had
    #: nothing new to remove: they keep their first redaction's time and reason.
    already: Tuple[int, ...]
    #: Steps asked for that held nothing to remove: a first step stored without its data
    #: (a first step has no diff details), asked without ``statistics``. They are not
    #: marked redacted.
    nothing: Tuple[int, ...]
    #: Files removed from the server's store (details or data that another step shares
    #: stay until no step names them).
    blobs_removed: int
    #: Their bytes.
    bytes_freed: int
    #: Files freed that the server could not remove yet (a backup or check of its store was
    #: reading): removed at its next redaction or start.
    blobs_pending: int = 0
    #: The steps whose column statistics were removed now (asked with ``statistics``).
    statistics: Tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Redacted":
        """Reads the server's reply (the API's ``Redacted``)."""
        return cls(
            run_id=str(data["run_id"]),
            at=str(data["at"]),
            steps=tuple(int(i) for i in data["steps"]),
            already=tuple(int(i) for i in data["already"]),
            nothing=tuple(int(i) for i in data["nothing"]),
            blobs_removed=int(data["blobs_removed"]),
            bytes_freed=int(data["bytes_freed"]),
            blobs_pending=int(data.get("blobs_pending", 0)),
            statistics=tuple(int(i) for i in data.get("statistics") or ()),
        )

    def to_dict(self) -> Dict[str, Any]:
        """The server's JSON for the reply."""
        return {
            "run_id": self.run_id,
            "at": self.at,
            "steps": list(self.steps),
            "statistics": list(self.statistics),
            "already": list(self.already),
            "nothing": list(self.nothing),
            "blobs_removed": self.blobs_removed,
            "bytes_freed": self.bytes_freed,
            "blobs_pending": self.blobs_pending,
        }


@dataclass(frozen=True)
class Check:
    """One check of a bundle verification."""

    #: What was checked (``content root``, ``chain``, ``signature``, ...).
    name: str
    #: Whether it passed.
    passed: bool
    #: What was found.
    detail: str
    #: The step it concerns, as ``"index name"``, when it concerns one.
    step: Optional[str] = None

    def __repr__(self) -> str:
        mark = "ok" if self.passed else "FAILED"
        where = f" [{self.step}]" if self.step else ""
        return f"Check({mark} {self.name}{where}: {self.detail})"


class VerifyResult:
    """What ``pipeproof verify`` found in a bundle."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data
        #: Every check made, in order.
        self.checks: List[Check] = [
            Check(
                name=str(c.get("name", "")),
                passed=bool(c.get("passed")),
                detail=str(c.get("detail", "")),
                step=c.get("step"),
            )
            for c in data.get("checks", [])
        ]

    @property
    def passed(self) -> bool:
        """True when every check passed (and there was at least one)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> List[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> Dict[str, Any]:
        """The verifier's JSON report, as a deep copy."""
        return copy.deepcopy(self._data)

    def __repr__(self) -> str:
        if self.passed:
            return f"VerifyResult(passed, {len(self.checks)} checks)"
        names = ", ".join(
            f"{c.name} [{c.step}]" if c.step else c.name for c in self.failed
        )
        return f"VerifyResult(FAILED {len(self.failed)} of {len(self.checks)}: {names})"

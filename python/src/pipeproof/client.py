"""The client: runs, snapshots, diffs, bundles.

A :class:`Client` talks to one server. ``client.run(...)`` starts a :class:`Run`; used as
a context manager, the run is sealed when the block ends normally and marked failed, with
the error recorded, when it raises. Each ``run.snapshot(frame, step=...)`` posts the frame
as an Arrow IPC stream and returns the stored step as a :class:`StepResult`.
``client.runs(...)`` lists the runs already on the server and ``client.load_run(id)`` gets
one, as :class:`Run` objects to diff, trace, export and verify. ``run.redact(reason)``
removes an ended run's diff details and kept data from the server (and its statistics,
when asked), keeping its proofs.

With ``on_error="warn"`` a pipeline never fails because of pipeproof: every client error
becomes a :class:`PipeproofWarning` and the call returns ``None``. A run whose step could
not be recorded is detached from then on: its chain would no longer be the pipeline's, so
later steps are not sent and the run is not sealed; it is ended as failed, with the reason,
when the server can still be told.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
)
from urllib.parse import quote

from .errors import ConnectionError, PipeproofError, ValidationError
from .frames import ARROW_STREAM_MEDIA_TYPE, batch_rows_for, convert, ipc_stream
from .http import RETRY_ALWAYS, RETRY_CONNECT, RETRY_NEVER, Timeout, Transport, url_problem
from .results import Redacted, StepResult, VerifyResult

__all__ = ["Client", "Run", "PipeproofWarning", "verify_bundle", "DEFAULT_URL"]

#: The server ``make run`` starts, used when neither ``url=`` nor ``PIPEPROOF_URL`` is set.
DEFAULT_URL = "http://127.0.0.1:8080"

#: The diff options ``snapshot`` accepts, as sent in the step post's query.
DIFF_OPTIONS = (
    "abs_tol",
    "rel_tol",
    "chunk_rows",
    "summary_only_threshold",
    "ignore",
    "max_detail_rows",
    "artifact",
)

_DETAIL_KINDS = ("added", "removed", "changed")
_PAGE = 1000
#: The states a run can be in, as ``GET /runs?status=`` takes them.
RUN_STATUSES = ("open", "sealed", "failed")
# The largest page ``GET /runs`` serves.
_RUNS_PAGE = 500
# The columns run.diff adds: the kind of each row, and a changed row's cell.
_CHANGE_COLUMN = "_change"
_CELL_COLUMNS = ("column", "old", "new")

F = TypeVar("F", bound=Callable[..., Any])
Columns = Union[str, Sequence[str], None]


class PipeproofWarning(UserWarning):
    """Issued instead of an exception when the client was made with ``on_error="warn"``."""


class Client:
    """A connection to a pipeproof server.

    Args:
        url: The server's base URL; defaults to ``PIPEPROOF_URL``, then
            ``http://127.0.0.1:8080``.
        token: A bearer token with the ``ingest`` scope (``read`` too for ``diff`` and
            ``export``); defaults to ``PIPEPROOF_TOKEN``.
        timeout: Seconds to wait for a connection and for each answer, or a
            ``(connect, read)`` pair.
        retries: How many times an idempotent call is repeated after a connection error,
            a timeout or a 5xx reply, with exponential backoff.
        backoff: The first retry's delay in seconds; each further retry doubles it (at most
            10 s per wait).
        on_error: ``"raise"`` (default) raises :class:`PipeproofError`; ``"warn"`` issues a
            :class:`PipeproofWarning` and carries on, so the pipeline does not fail when the
            server is down.
        progress: Show a tqdm progress bar for uploads that take more than two seconds.
            ``None`` (default): when tqdm is installed and stderr is a terminal.
        session: A ``requests.Session`` to send with (proxies, certificates).
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: Timeout = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        on_error: str = "raise",
        progress: Optional[bool] = None,
        session: Any = None,
    ) -> None:
        if on_error not in ("raise", "warn"):
            raise ValueError(f'on_error must be "raise" or "warn", not {on_error!r}')
        setting = "url"
        if not url:
            url = os.environ.get("PIPEPROOF_URL") or DEFAULT_URL
            setting = "PIPEPROOF_URL"
        token = token if token is not None else os.environ.get("PIPEPROOF_TOKEN")
        self.on_error = on_error
        self.progress = progress
        self._http = Transport(
            url, token, timeout=timeout, retries=retries, backoff=backoff, session=session
        )
        problem = url_problem(url)
        if problem is not None:
            # Every request fails with this error; in warn mode each call warns with it.
            self._http.config_error = ValidationError(
                f"{setting}={url!r} is not a usable server URL: {problem}"
            )
            if on_error == "raise":
                raise self._http.config_error

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._http.url

    def __repr__(self) -> str:
        return f"Client({self.url!r}, on_error={self.on_error!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the HTTP connections."""
        self._http.session.close()

    # Runs.
    def run(
        self,
        pipeline: str,
        *,
        labels: Optional[Mapping[str, str]] = None,
        code_version: Optional[str] = None,
        params: Any = None,
    ) -> "Run":
        """Starts a run of ``pipeline`` on the server and returns it.

        Use it as a context manager: leaving the block seals the run; an exception marks
        it failed with the error text, then propagates. Without ``with``, call
        :meth:`Run.seal` or :meth:`Run.fail` yourself.

        Args:
            pipeline: The pipeline's name.
            labels: Free-form ``name -> value`` labels (``{"env": "prod"}``); values are
                sent as text, and ``None`` is refused.
            code_version: The pipeline code's version (a git commit, a package version).
            params: Run parameters, recorded as JSON: numpy numbers as numbers, other
                values JSON does not know (dates, decimals) as their ``str()``; NaN and
                infinity are refused, as JSON cannot hold them.
        """
        if not isinstance(pipeline, str) or not pipeline:
            raise ValueError("pipeline must be a non-empty string")
        try:
            body = {
                "pipeline": pipeline,
                "labels": _labels(labels),
                "code_version": code_version,
                "params": json.loads(_params_json(params, "run params"))
                if params is not None
                else {},
            }
            reply = self._http.request("POST", "/runs", retry=RETRY_CONNECT, json_body=body)
            return Run(self, reply.json())
        except PipeproofError as err:
            self._handle(err, f"could not start a run of {pipeline!r}; its steps will not be recorded")
            return Run(self, None, pipeline=pipeline)

    def get_run(self, run_id: str) -> Dict[str, Any]:
        """The run with its steps and seal (the API's ``RunDetail``), as a dict; see
        :meth:`load_run` for a :class:`Run`."""
        return self._http.request("GET", _run_route(run_id), retry=RETRY_ALWAYS).json()

    def load_run(self, run_id: str) -> "Run":
        """An existing run, by its id, with its stored steps in :attr:`Run.steps`.

        ``diff``, ``trace``, ``export``, ``artifact`` and ``verify`` read it as they read a
        run just made. ``snapshot``, ``seal`` and ``fail`` are sent to the server as well,
        which refuses them (409) once the run has ended. Used as a context manager, a
        loaded run is neither sealed nor marked failed when the block ends: only a run
        started by :meth:`run` is.

        Raises:
            ValidationError: there is no run with this id (``status`` 404).
        """
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"run_id must be a non-empty string, not {run_id!r}")
        try:
            detail = self.get_run(run_id)
        except ValidationError as err:
            if err.status != 404:
                raise
            raise ValidationError(
                f"there is no run {run_id!r} on {self.url}; list the runs with client.runs()",
                status=err.status,
                problem=err.problem,
            ) from err
        return Run(
            self, detail["run"], started=False, steps=[StepResult(s) for s in detail["steps"]]
        )

    def runs(
        self,
        pipeline: Optional[str] = None,
        *,
        status: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        limit: Optional[int] = None,
    ) -> List["Run"]:
        """The runs on the server, newest first, as :class:`Run` objects.

        Pages of ``GET /runs`` are fetched until ``limit`` runs are found or none is left.
        Each run is built from the list's summary (id, pipeline, labels, status, step
        count, ...); its :attr:`Run.steps` are fetched from the server the first time they
        are needed (one request per run). ``diff``, ``trace``, ``export``, ``artifact`` and
        ``verify`` work on it as on a run from :meth:`load_run`, and as those, it is not
        sealed or failed at the end of a ``with`` block.

        Args:
            pipeline: Only this pipeline's runs.
            status: Only runs that are ``"open"``, ``"sealed"`` or ``"failed"``.
            labels: Only runs with all of these labels (``{"env": "prod"}``). The server
                filters by one label; any further ones are checked by the client on the
                runs it sends, so a query with several labels may read more pages.
            limit: At most this many runs (all of them when ``None``).
        """
        if pipeline is not None and (not isinstance(pipeline, str) or not pipeline):
            raise ValueError(f"pipeline must be a non-empty string or None, not {pipeline!r}")
        if status is not None and status not in RUN_STATUSES:
            raise ValueError(
                f"status must be one of {', '.join(map(repr, RUN_STATUSES))} or None, "
                f"not {status!r}"
            )
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
        ):
            raise ValueError(f"limit must be a whole number, 0 or more, or None, not {limit!r}")
        if labels is not None and not isinstance(labels, Mapping):
            raise ValueError(
                f"labels must be a mapping of name to value such as {{'env': 'prod'}}, "
                f"not {labels!r}"
            )
        wanted = _labels(labels)
        query: Dict[str, Any] = {}
        if pipeline is not None:
            query["pipeline"] = pipeline
        if status is not None:
            query["status"] = status
        # The server takes one label, written name=value: the first whose name it reads
        # as written (it splits at the first "=" and drops double quotes).
        server_label = next((n for n in wanted if n and not set(n) & set('="\\')), None)
        if server_label is not None:
            query["label"] = f"{server_label}={wanted[server_label]}"
        # Every label is checked on what comes back, so one the server cannot filter by
        # is applied all the same.
        local = bool(set(wanted) - {server_label})
        found: List[Run] = []
        seen: "set[str]" = set()
        offset = 0
        while limit is None or len(found) < limit:
            size = _RUNS_PAGE if limit is None or local else min(_RUNS_PAGE, limit - len(found))
            params = {**query, "offset": offset, "limit": size}
            page = self._http.request("GET", "/runs", retry=RETRY_ALWAYS, params=params).json()
            items = page["items"]
            for item in items:
                # A run started while paging pushes the older ones down a place: one may
                # come again on the next page.
                if item["id"] in seen:
                    continue
                seen.add(item["id"])
                labels_of = item.get("labels") or {}
                if all(labels_of.get(n) == v for n, v in wanted.items()):
                    found.append(Run(self, item, started=False))
                    if limit is not None and len(found) == limit:
                        break
            offset += len(items)
            if not items or offset >= int(page["total"]):
                break
        return found

    def redact(
        self,
        run_id: str,
        reason: str,
        *,
        steps: Optional[Iterable[int]] = None,
        statistics: bool = False,
    ) -> Redacted:
        """Removes an ended run's diff details and kept data from the server: for data that
        must not be kept any longer (personal data under an erasure request, a retention
        period). Needs a token with the ``admin`` scope.

        What proves the run stays: its records, row hashes, statistics, diff counts and
        seal, so :meth:`Run.verify` still passes, its checks saying which steps were
        redacted, when and why. Afterwards each step redacted shows the redaction in
        :attr:`StepResult.redacted`, and reading its details (:meth:`Run.diff`) or its kept
        data (:meth:`Run.artifact`) raises a :class:`ValidationError` with status 410.
        With ``statistics=True`` the steps' column statistics go too, as their minimum
        and maximum are values of the data (the records keep their digest): each such step
        shows it in :attr:`StepResult.statistics_redacted`, and its
        :attr:`StepResult.stats` is empty. A step redacted before keeps its first
        redaction (``already`` in the result, when nothing new was removed from it).

        The call is retried as reads are: a retry whose first attempt got through finds
        the steps redacted, and reports them in ``already``.

        Args:
            run_id: The run's id.
            reason: Why (1 to 1000 bytes); kept with each step and shown in the run's
                bundles.
            steps: The steps' 0-based indexes; every step of the run when ``None``.
                :meth:`Run.redact` takes step names too.
            statistics: Also remove the steps' column statistics (a first step's too,
                which has no diff details). Their digest stays in the records.

        Returns:
            The steps redacted now, those whose statistics were removed now, those
            redacted before, those with nothing to remove, and the files and bytes
            removed from the store.

        Raises:
            ValidationError: the run is open (409: seal or fail it first), the reason is
                empty or too long (400), or there is no such run or step (404).
            AuthError: the token lacks the ``admin`` scope (403).
        """
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"run_id must be a non-empty string, not {run_id!r}")
        if not isinstance(reason, str):
            raise ValueError(f"reason must be a string, not {reason!r}")
        numpy = sys.modules.get("numpy")
        if not isinstance(statistics, bool) and not (
            numpy is not None and isinstance(statistics, numpy.bool_)
        ):
            raise ValueError(f"statistics must be True or False, not {statistics!r}")
        body: Dict[str, Any] = {"reason": reason}
        if statistics:
            body["statistics"] = True
        if steps is not None:
            if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
                raise ValueError(
                    f"steps must be a list of step indexes or None, not {steps!r}"
                )
            indexes = list(steps)
            for index in indexes:
                if not _whole(index):
                    raise ValueError(
                        f"steps must be 0-based step indexes (0 or more), not {index!r}"
                    )
            body["steps"] = [int(i) for i in indexes]
        reply = self._http.request(
            "POST", f"{_run_route(run_id)}/redact", retry=RETRY_ALWAYS, json_body=body
        )
        return Redacted.from_dict(reply.json())

    def whoami(self) -> Dict[str, Any]:
        """The token's name and scopes."""
        return self._http.request("GET", "/whoami", retry=RETRY_ALWAYS).json()

    def public_key(self) -> str:
        """The server's current signing key (64 hex digits), to pass to
        :meth:`verify_bundle` as the key you trust. Runs sealed before the server's key was
        rotated are signed by an earlier key: :meth:`keys` lists them all."""
        keys = self.keys()["keys"]
        if not keys:
            raise PipeproofError("the server published no signing key")
        return keys[0]["public_key"]

    def keys(self) -> Dict[str, Any]:
        """``GET /keys``: every key the server has signed with, the current one first, each
        with when it was retired and the hand-over (signed by the key before it and by it)
        that made it current. Written to a file, it is a ``pubkey`` for
        :meth:`verify_bundle`, which then takes the key that sealed the bundle."""
        return self._http.request("GET", "/keys", retry=RETRY_ALWAYS).json()

    def health(self) -> Dict[str, Any]:
        """The server's ``/healthz`` answer (``status``, ``version``)."""
        url = f"{self.url}/healthz"
        return self._http.request("GET", url, retry=RETRY_ALWAYS, raw_url=True).json()

    def verify_bundle(
        self,
        path: Union[str, "os.PathLike[str]"],
        pubkey: Optional[str] = None,
        *,
        data: Union[str, "os.PathLike[str]", None] = None,
        step: Union[str, int, None] = None,
        bin: Optional[str] = None,
    ) -> VerifyResult:
        """Verifies a bundle offline with the ``pipeproof verify`` command; see
        :func:`verify_bundle`. The server is not involved."""
        return verify_bundle(path, pubkey, data=data, step=step, bin=bin)

    def _handle(self, err: PipeproofError, what: str) -> None:
        """Raises ``err``, or warns when the client was made with ``on_error="warn"``."""
        if self.on_error == "raise":
            raise err
        _warn(f"pipeproof: {what}: {err}")


class Run:
    """A run on the server: an ordered list of steps, sealed at the end.

    Made by :meth:`Client.run`, which starts it, or by :meth:`Client.load_run` and
    :meth:`Client.runs` for a run already on the server. Only a run started by
    :meth:`Client.run` is sealed (or marked failed) when its ``with`` block ends.

    When the client warns instead of raising, a run can be
    *detached*: every later ``snapshot``, ``seal`` and ``fail`` warns and does nothing,
    without contacting the server. That happens when the run could not be started (``id``
    is ``None``), and when one of its steps could not be recorded, whatever the error: the
    steps after it would be chained and diffed as if the missing one had not run, so the
    run is never sealed. It is ended as failed at once, with the step and the reason as its
    error (one request, not retried); when the server could not be reached, or refuses
    that too, the run stays open, incomplete from that step on.
    """

    def __init__(
        self,
        client: Client,
        data: Optional[Dict[str, Any]],
        *,
        pipeline: str = "",
        started: bool = True,
        steps: Optional[List[StepResult]] = None,
    ) -> None:
        self._client = client
        self._data = data
        self._pipeline = pipeline
        # True for a run this object started (Client.run): only such a run is ended by
        # __exit__.
        self._started = started
        # The steps; None until fetched, for a run made from a list's summary.
        self._steps: Optional[List[StepResult]] = (
            list(steps) if steps is not None else [] if started else None
        )
        #: The names of the steps given to ``snapshot`` but not recorded, in order: every
        #: step of a run that could not be started; once a step could not be recorded,
        #: that step and every later one.
        self.skipped: List[str] = []
        # Why the run is detached (completes "run X is detached (...)"); None while attached.
        self._detached: Optional[str] = (
            None if data is not None else "it was never started on the server"
        )

    @property
    def id(self) -> Optional[str]:
        """The run's id (``None`` for a detached run)."""
        return None if self._data is None else self._data["id"]

    @property
    def pipeline(self) -> str:
        """The pipeline's name."""
        return self._pipeline if self._data is None else self._data["pipeline"]

    @property
    def status(self) -> Optional[str]:
        """``open``, ``sealed`` or ``failed`` as last seen (``None`` when detached)."""
        return None if self._data is None else self._data["status"]

    @property
    def error(self) -> Optional[str]:
        """The error a failed run ended with."""
        return None if self._data is None else self._data.get("error")

    @property
    def labels(self) -> Dict[str, str]:
        """The run's labels."""
        return dict((self._data or {}).get("labels") or {})

    @property
    def code_version(self) -> Optional[str]:
        """The pipeline code's version the run was started with."""
        return None if self._data is None else self._data.get("code_version")

    @property
    def created_at(self) -> Optional[str]:
        """When the run was started (RFC 3339, UTC)."""
        return None if self._data is None else self._data.get("created_at")

    @property
    def sealed_at(self) -> Optional[str]:
        """When the run was sealed or failed (``None`` while open)."""
        return None if self._data is None else self._data.get("sealed_at")

    @property
    def steps(self) -> List[StepResult]:
        """The run's steps, in order.

        For a run started by :meth:`Client.run`, the steps this object recorded. For a run
        from :meth:`Client.load_run`, those stored when it was loaded; for one from
        :meth:`Client.runs`, fetched from the server on first use. Both are brought up to
        date by :meth:`detail`, and both then gain the steps this object records.
        """
        if self._steps is None:
            self.detail()
        assert self._steps is not None
        return self._steps

    @steps.setter
    def steps(self, value: List[StepResult]) -> None:
        self._steps = value

    @property
    def detached(self) -> bool:
        """True when nothing more is sent for the run: it could not be started on the
        server, or (``on_error="warn"``) one of its steps, its seal or its failure could
        not be recorded."""
        return self._detached is not None

    def to_dict(self) -> Dict[str, Any]:
        """The run as the server last described it (the API's ``Run``)."""
        return dict(self._data or {})

    def __repr__(self) -> str:
        if self._data is None:
            return f"Run(detached, pipeline={self.pipeline!r})"
        detached = f" detached, skipped={len(self.skipped)}" if self.detached else ""
        return (
            f"Run({self.id} pipeline={self.pipeline!r} status={self.status} "
            f"steps={self._step_count()}{detached})"
        )

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, kind: Any, exc: Optional[BaseException], tb: Any) -> None:
        # A run loaded from the server belongs to whoever started it: leaving a block does
        # not end it.
        if not self._started:
            return
        if self._data is not None and self.status != "open":
            return
        if exc is None:
            self.seal()
        else:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            try:
                self.fail(text)
            except PipeproofError as err:
                # Never hide the pipeline's own exception behind pipeproof's.
                _warn(f"pipeproof: could not mark run {self.id} failed: {err}")

    # Steps.
    def snapshot(
        self,
        data: Any,
        step: str,
        *,
        key: Columns = None,
        params: Optional[Mapping[str, Any]] = None,
        **diff_options: Any,
    ) -> Optional[StepResult]:
        """Records ``data`` as the run's next step and diffs it against the previous one.

        Args:
            data: A pandas or polars DataFrame, a pyarrow Table or RecordBatch, a DuckDB
                relation, or any object with ``__arrow_c_stream__``. A pandas index is kept
                as columns when it is named or is not a RangeIndex.
            step: The step's name.
            key: Key column(s) for the diff against the previous step; without a key the
                diff compares whole rows (added and removed only).
            params: Step parameters, recorded in the step record as JSON (as ``params`` of
                :meth:`Client.run`).
            **diff_options: ``abs_tol``, ``rel_tol`` (float tolerances), ``chunk_rows``,
                ``summary_only_threshold``, ``ignore`` (columns), ``max_detail_rows``,
                ``artifact`` (``True`` keeps the full snapshot; only a bool is accepted).

        Returns:
            The stored step, or ``None`` when the client warns instead of raising and the
            step could not be recorded.

        Raises:
            ValidationError: unsupported data (named column) or rejected options.
            AuthError, ConnectionError, ServerError: see :mod:`pipeproof.errors`.
        """
        unknown = sorted(set(diff_options) - set(DIFF_OPTIONS))
        if unknown:
            raise TypeError(
                f"snapshot() got unknown option(s) {unknown}; the diff options are "
                f"{', '.join(DIFF_OPTIONS)}"
            )
        if not isinstance(step, str) or not step:
            raise ValueError("step must be a non-empty string")
        # A mistake in the call, raised as unknown options are, even when the client warns:
        # in warn mode it would otherwise detach the run for good.
        if diff_options.get("artifact") is not None:
            _flag(diff_options["artifact"], "artifact")
        if self._detached is not None:
            self.skipped.append(step)
            _warn(
                f"pipeproof: step {step!r} not recorded: {self._label()} is detached "
                f"({self._detached}) and will not be sealed"
            )
            return None
        try:
            result = self._post_step(data, step, key, params, diff_options)
        except PipeproofError as err:
            if self._client.on_error == "raise":
                raise
            # The later steps would be chained and diffed as if this one had not run: none
            # is sent, and the run is not sealed.
            index = self._step_count()
            self.skipped.append(step)
            self._detached = f"its record is incomplete from step {index} ({step!r}) on"
            ended = self._fail_detached(err, f"step {index} ({step!r}) was not recorded: {err}")
            _warn(
                f"pipeproof: step {step!r} of run {self.id} not recorded: {err}. The run is "
                f"now detached: its record is incomplete from step {index} ({step!r}) on; "
                f"later steps are not recorded and the run will not be sealed; {ended}"
            )
            return None
        self.steps.append(result)
        return result

    def step(
        self,
        func: Optional[F] = None,
        *,
        name: Optional[str] = None,
        key: Columns = None,
        **options: Any,
    ) -> Any:
        """Decorator: snapshots the frame a function returns, under the function's name.

        ``@run.step`` or ``@run.step(key="trade_id", name="clean")``; other keyword
        arguments are those of :meth:`snapshot`. The function's return value is passed
        through unchanged.
        """

        def decorate(fn: F) -> F:
            step_name = name or fn.__name__

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                out = fn(*args, **kwargs)
                self.snapshot(out, step=step_name, key=key, **options)
                return out

            return wrapper  # type: ignore[return-value]

        return decorate(func) if func is not None else decorate

    def _post_step(
        self,
        data: Any,
        step: str,
        key: Columns,
        params: Optional[Mapping[str, Any]],
        options: Dict[str, Any],
    ) -> StepResult:
        if self._steps is None:
            # A run made from a list's summary: its steps first, so this one joins them.
            self.detail()
        query: Dict[str, str] = {"step": step}
        if key:
            query["key"] = _columns(key, "key")
        for name, value in options.items():
            if value is None:
                continue
            if name == "ignore":
                query[name] = _columns(value, "ignore")
            elif name == "artifact":
                query[name] = "true" if _flag(value, name) else "false"
            else:
                query[name] = str(value)
        if params is not None:
            query["params"] = _params_json(params, "step params", sort_keys=True)
        table = convert(data, step)
        batch_rows = batch_rows_for(table)
        show = _want_progress(self._client.progress)

        def body() -> Iterator[bytes]:
            chunks = _encoded(ipc_stream(table, batch_rows), step)
            return _with_progress(chunks, table.nbytes, step) if show else chunks

        reply = self._client._http.request(
            "POST",
            f"/runs/{self.id}/steps",
            retry=RETRY_ALWAYS,
            params=query,
            body=body,
            headers={
                "Content-Type": ARROW_STREAM_MEDIA_TYPE,
                # One key for every attempt of this post: a retry after a lost reply gets
                # the stored step back instead of storing it twice.
                "Idempotency-Key": uuid.uuid4().hex,
            },
        )
        return StepResult(reply.json(), replayed=reply.status_code == 200)

    # Reading back.
    def detail(self) -> Dict[str, Any]:
        """The run with all its steps and seal, fresh from the server (``RunDetail``)."""
        self._require()
        detail = self._client.get_run(self.id)  # type: ignore[arg-type]
        self._data = detail["run"]
        if not self._started:
            self._steps = [StepResult(s) for s in detail["steps"]]
        return detail

    def diff(
        self,
        step: Union[str, int],
        *,
        kind: Optional[str] = None,
        column: Optional[str] = None,
        key: Optional[str] = None,
    ) -> Any:
        """The detail rows of a step's diff against the previous step, as a pandas DataFrame.

        One row per detail, pages fetched until all are in. The first column, ``_change``,
        is ``added``, ``removed`` or ``changed``. Added and removed rows carry their values
        (and ``_row``, the row's number in its table); changed rows carry the key columns
        and one changed cell each: ``column``, ``old``, ``new`` (as text). The frame has
        the columns of the kinds it holds rows of.

        The data's own columns keep their names. When one of them is named ``_change``,
        the kind column becomes ``__change``; when one is named ``column``, ``old`` or
        ``new``, the cell columns become ``_column``, ``_old`` and ``_new`` (more
        underscores until no data column has the name). The names depend on the columns
        of the step and the previous one, not on the filters. Integer and boolean columns
        that some rows have no value in (``_row`` of a changed row) are pandas' nullable
        ``Int64`` and ``boolean``, so they stay integers.

        Args:
            step: The step's name or 0-based index; a negative index counts from the
                run's last step (``-1``).
            kind: Only ``added``, ``removed`` or ``changed`` rows.
            column: Only changed cells of this column.
            key: Only rows whose (first) key column, as text, equals this.

        Raises:
            ValidationError: the step is the run's first, which has no diff (404), or its
                details were removed by a redaction (410; the message says when and why,
                and :attr:`StepResult.redacted` holds both).
        """
        import pandas as pd

        self._require()
        if kind is not None and kind not in _DETAIL_KINDS:
            raise ValueError(f"kind must be one of {', '.join(_DETAIL_KINDS)}, not {kind!r}")
        index = self._step_index(step)
        kinds = (kind,) if kind else _DETAIL_KINDS
        pages = {k: self._details(index, k, column, key) for k in kinds}
        # The data columns are those of the added rows (this step's) and of the removed
        # ones (the previous step's); a changed row's are key columns, in both.
        data_columns = set()
        for k in ("added", "removed"):
            columns = (pages[k] if k in pages else self._details(index, k, probe=True))[0]
            data_columns.update(c for c in columns if c != "_row")
        change, cells = _own_columns(data_columns)
        names = dict(zip(_CELL_COLUMNS, cells))
        records: List[Dict[str, Any]] = []
        columns = [change]
        every = [change]
        for k, (page_columns, rows) in pages.items():
            rename = names if k == "changed" else {}
            renamed = [rename.get(c, c) for c in page_columns]
            every += [c for c in renamed if c not in every]
            if rows:
                columns += [c for c in renamed if c not in columns]
            for row in rows:
                record = {rename.get(c, c): v for c, v in row.items()}
                record[change] = k
                records.append(record)
        return _detail_frame(pd, records, columns if records else every)

    def trace(self, *key: Any) -> Dict[str, Any]:
        """Follows the row with this key through every step of the run (the server's
        ``Trace``): for each step its ``state`` (``added``, ``unchanged``, ``changed``,
        ``removed``, ``absent``, or ``unknown`` where details were not kept), ``row_hash``,
        ``values`` where known, the ``changes`` (``column``, ``old``, ``new``) and
        ``redacted``: true for a step redacted (:attr:`StepResult.redacted`), whose values
        and changes are not known any more, only its state.

        Give one value per key column, in the key's order: ``run.trace(4711)``,
        ``run.trace("EU", "A|7")``. Values are sent as text and read as their columns'
        types (``True`` as ``true``, dates and datetimes in ISO 8601).

        Raises:
            ValidationError: no key value, or one that is not a value of the run's key.
        """
        self._require()
        if not key:
            raise ValidationError("trace() needs the key's value: one per key column")
        texts = [_key_text(v) for v in key]
        trace = self._client._http.request(
            "GET", f"/runs/{self.id}/trace", retry=RETRY_ALWAYS, params={"key": texts}
        ).json()
        # The server writes ``redacted`` only when true.
        for found in trace.get("steps") or []:
            found.setdefault("redacted", False)
        return trace

    def _details(
        self,
        index: int,
        kind: str,
        column: Optional[str] = None,
        key: Optional[str] = None,
        *,
        probe: bool = False,
    ) -> "tuple[List[str], List[Dict[str, Any]]]":
        """The columns and rows of a step's details of one kind; with ``probe``, a page of
        one row, for the columns."""
        rows: List[Dict[str, Any]] = []
        columns: List[str] = []
        offset = 0
        while True:
            query: Dict[str, Any] = {"kind": kind, "offset": offset, "limit": 1 if probe else _PAGE}
            if column is not None:
                query["column"] = column
            if key is not None:
                query["key"] = key
            page = self._client._http.request(
                "GET",
                f"/runs/{self.id}/steps/{index}/details",
                retry=RETRY_ALWAYS,
                params=query,
            ).json()
            columns = page["columns"]
            rows.extend(page["rows"])
            offset += len(page["rows"])
            if probe or not page["rows"] or offset >= int(page["total"]):
                return columns, rows

    def _step_index(self, step: Union[str, int]) -> int:
        if isinstance(step, int):
            if step >= 0:
                return step
            count = len(self.detail()["steps"])
            if -step > count:
                raise ValidationError(
                    f"run {self.id} has {count} step(s): index {step} is out of range"
                )
            return count + step
        steps = [s for s in self.steps if s.step == step]
        if not steps:
            detail = self.detail()
            steps = [StepResult(s) for s in detail["steps"] if s["record"]["step"] == step]
        if not steps:
            raise ValidationError(f"run {self.id} has no step named {step!r}")
        if len(steps) > 1:
            at = ", ".join(str(s.index) for s in steps)
            raise ValidationError(
                f"run {self.id} has several steps named {step!r} (indexes {at}); pass the index"
            )
        return steps[0].index

    # Ending.
    def seal(self) -> Optional[Dict[str, Any]]:
        """Seals the run: the server signs the chain head. Returns the run.

        The server refuses (409, a :class:`ValidationError`) a run that has already ended.
        """
        return self._end("seal", None, "sealed")

    def fail(self, error: str) -> Optional[Dict[str, Any]]:
        """Ends the run as failed with ``error`` (the chain head is signed too)."""
        return self._end("fail", {"error": str(error)}, "failed")

    def _end(self, action: str, body: Any, status: str) -> Optional[Dict[str, Any]]:
        if self._detached is not None:
            done = "sealed" if action == "seal" else "marked failed"
            _warn(f"pipeproof: {self._label()} not {done}: it is detached ({self._detached})")
            return None
        was_open = self.status == "open"
        try:
            try:
                reply = self._client._http.request(
                    "POST", f"/runs/{self.id}/{action}", retry=RETRY_ALWAYS, json_body=body
                )
                self._data = reply.json()
            except ValidationError as err:
                # A retried seal whose first attempt got through finds the run already
                # ended; that is success if it ended the way we asked. A run that had
                # ended before the call (a loaded one, say) gets the server's refusal.
                if (
                    err.status != 409
                    or not was_open
                    or self.detail()["run"]["status"] != status
                ):
                    raise
        except PipeproofError as err:
            self._client._handle(err, f"could not {action} run {self.id}")
            # Warn mode: a second attempt (the end of a ``with`` block) would only wait for
            # the server again.
            self._detached = f"it could not be {'sealed' if action == 'seal' else 'marked failed'}"
            return None
        return dict(self._data)

    def export(self, path: Union[str, "os.PathLike[str]"]) -> Path:
        """Downloads the run's bundle (one zip file: records, row hashes, diff details and
        the seal) to ``path``, written atomically. Returns the path."""
        self._require()
        return self._download(f"/runs/{self.id}/bundle", path)

    def artifact(self, step: Union[str, int], path: Union[str, "os.PathLike[str]"]) -> Path:
        """Downloads a step's data as it was sent, for a step snapshotted with
        ``artifact=True``, to ``path`` (an Arrow IPC stream when the Python client sent
        it), written atomically. Returns the path.

        Raises:
            ValidationError: the step was stored without its data (404), or its data was
                removed by a redaction (410; the message says when and why).
        """
        self._require()
        index = self._step_index(step)
        return self._download(f"/runs/{self.id}/steps/{index}/artifact", path)

    def _download(self, route: str, path: Union[str, "os.PathLike[str]"]) -> Path:
        """Streams a GET of ``route`` to ``path``, atomically (a temporary file, fsync,
        rename)."""
        target = Path(path)
        reply = self._client._http.request("GET", route, retry=RETRY_ALWAYS, stream=True)
        fd, tmp = tempfile.mkstemp(prefix=".pipeproof-", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in reply.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        finally:
            reply.close()
        return target

    def verify(self, *, bin: Optional[str] = None) -> VerifyResult:
        """Exports the bundle to a temporary file and verifies it with ``pipeproof verify``
        against the server's keys (:meth:`Client.keys`): the current one, or the earlier one
        that sealed the run before a key rotation."""
        self._require()
        with tempfile.TemporaryDirectory(prefix="pipeproof-") as tmp:
            bundle = self.export(Path(tmp) / f"{self.id}.zip")
            keys = Path(tmp) / "keys.json"
            keys.write_text(json.dumps(self._client.keys()))
            return verify_bundle(bundle, str(keys), bin=bin)

    # Redacting.
    def redact(
        self,
        reason: str,
        *,
        steps: Optional[Iterable[Union[str, int]]] = None,
        statistics: bool = False,
    ) -> Redacted:
        """Removes the run's diff details and kept data from the server, and with
        ``statistics=True`` the steps' column statistics too, keeping what proves it
        (records, row hashes, diff counts, seal); see :meth:`Client.redact`. The run must
        have ended, and the token needs the ``admin`` scope. Raises even when the client
        was made with ``on_error="warn"``.

        The run's :attr:`steps` are then read again from the server, so each step
        redacted shows when and why in :attr:`StepResult.redacted` (and
        :attr:`StepResult.statistics_redacted`; step objects held from before are left
        as they were).

        Args:
            reason: Why (an erasure request, a retention period); kept with each step and
                shown in the run's bundles.
            steps: Step names or 0-based indexes (a negative index counts from the last
                step); every step when ``None``.
            statistics: Also remove the steps' column statistics, whose minimum and
                maximum are values of the data (an erasure request).
        """
        self._require()
        indexes: Optional[List[int]] = None
        if steps is not None:
            if isinstance(steps, (str, bytes, int)) or not isinstance(steps, Iterable):
                raise ValueError(
                    f"steps must be a list of step names or indexes, such as [{steps!r}], "
                    f"or None, not {steps!r}"
                )
            indexes = [self._step_index(s) for s in steps]
        done = self._client.redact(
            self.id, reason, steps=indexes, statistics=statistics  # type: ignore[arg-type]
        )
        try:
            detail = self.detail()
        except PipeproofError as err:
            _warn(
                f"pipeproof: run {self.id} was redacted, but its steps could not be read "
                f"again ({err}); run.detail() reads them"
            )
            return done
        if self._started and self._steps is not None:
            # A run this object started keeps its own step objects (and whether each was
            # replayed); they are replaced with the server's, which show the redaction.
            fresh = {int(s["record"]["index"]): s for s in detail["steps"]}
            self._steps = [
                StepResult(fresh[s.index], replayed=s.replayed) if s.index in fresh else s
                for s in self._steps
            ]
        return done

    def _fail_detached(self, err: PipeproofError, reason: str) -> str:
        """Ends a run just detached as failed with ``reason``, in one request, unless the
        server could not be reached (``err``). Says what became of the run."""
        if isinstance(err, ConnectionError):
            return "it stays open on the server, which could not be reached"
        if getattr(err, "status", None) == 409:
            return "it had already ended on the server"
        try:
            reply = self._client._http.request(
                "POST", f"/runs/{self.id}/fail", retry=RETRY_NEVER, json_body={"error": reason}
            )
            self._data = reply.json()
        except PipeproofError as fail:
            return f"it stays open on the server, which refused to end it as failed: {fail}"
        return "it is ended as failed on the server, with that reason"

    def _step_count(self) -> int:
        """The number of steps, without asking the server: for a run made from a list's
        summary whose steps were not fetched, the summary's count."""
        if self._steps is not None:
            return len(self._steps)
        return int((self._data or {}).get("steps") or 0)

    def _label(self) -> str:
        return f"run of {self.pipeline!r}" if self._data is None else f"run {self.id}"

    def _require(self) -> None:
        if self._data is None:
            raise PipeproofError(
                f"the run of {self.pipeline!r} is detached: it was never started on the server"
            )


def _run_route(run_id: str) -> str:
    """The route of a run given by the caller, its id escaped as one path segment."""
    return f"/runs/{quote(str(run_id), safe='')}"


def verify_bundle(
    path: Union[str, "os.PathLike[str]"],
    pubkey: Optional[str] = None,
    *,
    data: Union[str, "os.PathLike[str]", None] = None,
    step: Union[str, int, None] = None,
    bin: Optional[str] = None,
) -> VerifyResult:
    """Verifies a bundle offline with ``pipeproof verify BUNDLE --format json``.

    Every root is recomputed from the row hashes, the diffs from consecutive steps, the
    chain walked and the seal checked. No server is involved.

    Args:
        path: The bundle file.
        pubkey: The public key you trust (64 hex digits, or a file with them or with the
            JSON of ``GET /api/v1/keys``). Without it the seal is checked against the key
            written in the bundle: that proves integrity, not origin.
        data: A data file (Parquet, CSV, Arrow) to prove to be exactly one step's output.
        step: The step ``data`` should be (name or index); without it the verifier finds
            which step's output the file is.
        bin: The ``pipeproof`` executable; defaults to ``PIPEPROOF_BIN``, then ``PATH``.

    Returns:
        The checks; ``result.passed`` is true when all of them passed.

    Raises:
        PipeproofError: the executable is missing, or verification could not run.
    """
    exe = bin or os.environ.get("PIPEPROOF_BIN") or shutil.which("pipeproof")
    if not exe:
        raise PipeproofError(
            "cannot find the pipeproof command to verify with: put it on PATH, set "
            "PIPEPROOF_BIN to its path, or pass bin="
        )
    args = [os.fspath(exe), "verify", os.fspath(path), "--format", "json"]
    if pubkey is not None:
        args += ["--pubkey", str(pubkey)]
    if data is not None:
        args += ["--data", os.fspath(data)]
        if step is not None:
            args += ["--step", str(step)]
    elif step is not None:
        raise ValueError("step= only makes sense with data=")
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    except OSError as err:
        raise PipeproofError(f"cannot run {exe}: {err}") from err
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = None
    if not isinstance(report, dict) or "checks" not in report:
        message = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise PipeproofError(f"pipeproof verify could not check {os.fspath(path)}: {message}")
    return VerifyResult(report)


def _own_columns(data_columns: "set[str]") -> "tuple[str, tuple[str, ...]]":
    """The names of run.diff's kind column and cell columns: underscores are prepended
    until no data column has one of them."""
    change = _CHANGE_COLUMN
    while change in data_columns:
        change = "_" + change
    cells = _CELL_COLUMNS
    while any(c in data_columns for c in cells):
        cells = tuple("_" + c for c in cells)
    return change, cells


def _detail_frame(pd: Any, records: List[Dict[str, Any]], columns: List[str]) -> Any:
    """A frame of detail rows. An integer or boolean column that some rows have no value
    in becomes nullable (``Int64``, ``boolean``) instead of float or object."""
    frame = pd.DataFrame.from_records(records, columns=columns)
    for name in columns:
        if frame[name].dtype.kind not in "fO":
            continue
        values = [r.get(name) for r in records]
        present = [v for v in values if v is not None]
        if not present or len(present) == len(values):
            continue
        if all(type(v) is int and -(2**63) <= v < 2**63 for v in present):
            frame[name] = pd.array(values, dtype="Int64")
        elif all(type(v) is bool for v in present):
            frame[name] = pd.array(values, dtype="boolean")
    return frame


def _columns(value: Columns, what: str) -> str:
    if isinstance(value, str):
        names = [value]
    else:
        names = [str(v) for v in value or []]
    for name in names:
        if "," in name:
            raise ValidationError(
                f"{what} column {name!r} contains a comma, which the API uses to separate "
                "columns; rename the column"
            )
    return ",".join(names)


def _want_progress(setting: Optional[bool]) -> bool:
    if setting is False:
        return False
    if importlib.util.find_spec("tqdm") is None:
        if setting:
            raise ImportError(
                "progress=True needs tqdm: pip install 'pipeproof[tqdm]'"
            ) from None
        return False
    return bool(setting) or sys.stderr.isatty()


def _with_progress(chunks: Iterable[bytes], estimate: int, step: str) -> Iterator[bytes]:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=estimate or None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"pipeproof {step}",
        delay=2.0,
        leave=False,
    )
    try:
        for chunk in chunks:
            bar.update(len(chunk))
            yield chunk
        bar.total = bar.n
        bar.refresh()
    finally:
        bar.close()


# Where warnings point: the first frame outside this package, i.e. the user's line that
# called the client (a decorated function's caller for ``@run.step``).
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _warn(message: str) -> None:
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, PipeproofWarning, stacklevel=level)


def _whole(value: Any) -> bool:
    """Whether ``value`` is a whole number, 0 or more (a Python or numpy integer, not a
    bool)."""
    numpy = sys.modules.get("numpy")
    if isinstance(value, bool) or (numpy is not None and isinstance(value, numpy.bool_)):
        return False
    if isinstance(value, int) or (numpy is not None and isinstance(value, numpy.integer)):
        return int(value) >= 0
    return False


def _key_text(value: Any) -> str:
    """A key value as the trace route reads it: text in the form its column's type parses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None:
        raise ValidationError("a key value is None: keys have no nulls")
    return str(value)


def _labels(labels: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for name, value in (labels or {}).items():
        if name is None:
            raise ValidationError("a label is named None: give every label a name")
        if value is None:
            raise ValidationError(
                f"label {str(name)!r} is None: give it a value (labels are text) or leave it out"
            )
        out[str(name)] = str(value)
    return out


def _params_json(params: Any, what: str, *, sort_keys: bool = False) -> str:
    """``params`` as JSON text: numpy numbers as numbers, other values JSON does not know
    as their ``str()``. NaN and infinity are refused: JSON has no spelling for them."""
    try:
        return json.dumps(params, sort_keys=sort_keys, default=_json_default, allow_nan=False)
    except ValueError as err:
        where = _non_finite(params, what)
        if where is None:
            raise ValidationError(f"{what} cannot be written as JSON: {err}") from err
        raise ValidationError(
            f"{where[0]} is {where[1]!r}, which JSON cannot hold; pass None or a string "
            f"such as {str(where[1])!r} instead"
        ) from err
    except TypeError as err:
        raise ValidationError(f"{what} cannot be written as JSON: {err}") from err


def _json_default(value: Any) -> Any:
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.integer, numpy.floating, numpy.bool_)):
        return value.item()
    return str(value)


def _non_finite(value: Any, path: str) -> "Optional[tuple[str, float]]":
    """The path and value of the first NaN or infinity in ``value``, if any."""
    if isinstance(value, float) or type(value).__module__ == "numpy":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return None if math.isfinite(number) else (path, number)
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _non_finite(item, f"{path}[{key!r}]")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _non_finite(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _flag(value: Any, name: str) -> bool:
    numpy = sys.modules.get("numpy")
    if isinstance(value, bool) or (numpy is not None and isinstance(value, numpy.bool_)):
        return bool(value)
    raise ValidationError(f"{name} must be True or False, not {value!r}")


def _encoded(chunks: Iterator[bytes], step: str) -> Iterator[bytes]:
    """The IPC stream, with a failure to encode it reported as the data's fault."""
    try:
        yield from chunks
    except Exception as err:
        raise ValidationError(
            f"cannot encode the data of step {step!r} as an Arrow IPC stream: "
            f"{type(err).__name__}: {err}"
        ) from err

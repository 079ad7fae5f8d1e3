"""Redaction: an ended run's diff details and kept data removed from the server, its proofs
kept."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import requests

import pipeproof as pp
from conftest import Server

REASON = "erasure request 2026-118"


def positions(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trade_id": list(range(1, n + 1)),
            "client": [f"client-{i % 7}" for i in range(n)],
            "notional": [1000.0 + i for i in range(n)],
        }
    )


def three_steps(client: pp.Client, *, keep_first: bool = True) -> pp.Run:
    """A sealed run: load (kept when ``keep_first``), clean (3 removed, 1 changed), cut
    (5 removed, kept)."""
    df = positions()
    cleaned = df[~df.trade_id.isin([3, 4, 5])].copy()
    cleaned.loc[cleaned.trade_id == 7, "notional"] = 1.0
    with client.run(f"redact-{uuid.uuid4().hex[:8]}") as run:
        run.snapshot(df, step="load", key="trade_id", artifact=keep_first)
        run.snapshot(cleaned, step="clean", key="trade_id")
        run.snapshot(cleaned.head(12), step="cut", key="trade_id", artifact=True)
    return run


def token(server: Server, *scopes: str) -> str:
    reply = requests.post(
        f"{server.url}/api/v1/tokens",
        json={"name": f"t-{uuid.uuid4().hex[:8]}", "scopes": list(scopes)},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


def raises_gone(call: Any, *args: Any, **kwargs: Any) -> pp.ValidationError:
    with pytest.raises(pp.ValidationError) as err:
        call(*args, **kwargs)
    assert err.value.status == 410, err.value
    assert err.value.problem and err.value.problem["type"].endswith("/redacted")
    return err.value


def test_a_sealed_run_redacted_whole_keeps_its_proofs(
    server: Server, client: pp.Client, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("PIPEPROOF_BIN", str(server.binary))
    run = three_steps(client)
    before = [s.to_dict()["record"] for s in run.steps]
    assert [s.redacted for s in run.steps] == [None, None, None]
    assert run.trace(7)["steps"][1]["redacted"] is False

    done = run.redact(REASON)
    assert isinstance(done, pp.Redacted)
    assert (done.run_id, done.steps, done.already, done.nothing) == (run.id, (0, 1, 2), (), ())
    assert done.blobs_removed > 0 and done.bytes_freed > 0
    assert done.to_dict()["steps"] == [0, 1, 2]

    # The run that made it shows the redaction on its steps, and so does a loaded copy.
    for steps in (run.steps, client.load_run(run.id).steps):
        assert [s.redacted for s in steps] == [pp.Redaction(at=done.at, reason=REASON)] * 3
        assert [s.artifact for s in steps] == [False, False, False]
        assert [s.to_dict()["record"] for s in steps] == before
        assert (steps[1].removed, steps[1].changed) == (3, 1), "the diff counts stay"
        assert f"redacted {done.at}" in repr(steps[1])

    # Details and kept data are gone, and reading them says when and why.
    for step in ("clean", 2, -1):
        err = raises_gone(run.diff, step)
        assert done.at in err.detail and REASON in err.detail
    raises_gone(run.diff, "cut", kind="changed")
    err = raises_gone(run.artifact, "load", tmp_path / "load.arrows")
    assert "kept data" in str(err) and REASON in str(err)
    assert not (tmp_path / "load.arrows").exists()

    # A trace follows the row by its hashes and says which steps it knows less of (a first
    # step's kept data is not what a trace reads).
    trace = run.trace(7)
    assert [s["state"] for s in trace["steps"]] == ["added", "changed", "unchanged"]
    assert [s["redacted"] for s in trace["steps"]] == [False, True, True]
    assert trace["steps"][1]["changes"] == []

    # The bundle, written anew without the details, verifies and says why they are missing.
    result = run.verify()
    assert result.passed, result
    assert [c.name for c in result.checks if c.name == "redactions"] == ["redactions"]
    details = [c for c in result.checks if c.name == "diff details"]
    assert [c.step for c in details] == ["1 clean", "2 cut"]
    assert all(f"redacted at {done.at} ({REASON})" in c.detail for c in details)


def test_steps_are_redacted_by_name_or_index_once(client: pp.Client, tmp_path: Path):
    made = three_steps(client, keep_first=False)
    run = client.load_run(made.id)

    done = run.redact("retention: 90 days", steps=["clean"])
    assert (done.steps, done.already, done.nothing) == ((1,), (), ())
    assert [s.redacted is not None for s in run.steps] == [False, True, False]
    first = run.steps[1].redacted
    assert first == pp.Redaction(at=done.at, reason="retention: 90 days")

    # The steps not asked for keep their details and data.
    raises_gone(run.diff, "clean")
    assert (run.diff("cut")["_change"] == "removed").sum() == 5
    run.artifact("cut", tmp_path / "cut.arrows")
    with pa.ipc.open_stream(tmp_path / "cut.arrows") as reader:
        assert reader.read_all().num_rows == 12
    assert [s["redacted"] for s in run.trace(7)["steps"]] == [False, True, False]

    # Again, with the step redacted before: it keeps its first redaction. A first step
    # stored without its data has nothing to remove.
    again = client.redact(run.id, "erasure request 2026-119", steps=[2, 1, 0])
    assert (again.steps, again.already, again.nothing) == ((2,), (1,), (0,))
    detail = client.load_run(run.id)
    assert [s.redacted for s in detail.steps] == [
        None,
        first,
        pp.Redaction(at=again.at, reason="erasure request 2026-119"),
    ]
    raises_gone(run.artifact, -1, tmp_path / "again.arrows")

    # Everything, once more: nothing left to do, nothing removed.
    last = made.redact("erasure request 2026-120")
    assert (last.steps, last.already, last.nothing) == ((), (1, 2), (0,))
    assert (last.blobs_removed, last.bytes_freed) == (0, 0)
    assert [s.redacted for s in made.steps] == [s.redacted for s in detail.steps]


def step_as_stored(server: Server, run: pp.Run, index: int) -> pp.StepResult:
    """One step as ``GET /runs/{id}/steps/{index}`` gives it."""
    reply = requests.get(
        f"{server.url}/api/v1/runs/{run.id}/steps/{index}",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return pp.StepResult(reply.json())


def test_statistics_are_removed_from_every_step_when_asked(
    server: Server, client: pp.Client
):
    run = three_steps(client)
    before = [s.to_dict()["record"] for s in run.steps]
    assert all(s.stats for s in run.steps)
    assert run.steps[0].stats[0]["min"] == "1", "trade_id's minimum, a value of the data"
    assert [s.statistics_redacted for s in run.steps] == [None, None, None]

    done = run.redact(REASON, statistics=True)
    assert (done.steps, done.statistics) == ((0, 1, 2), (0, 1, 2))
    assert (done.already, done.nothing) == ((), ())
    assert done.to_dict()["statistics"] == [0, 1, 2]
    assert pp.Redacted.from_dict(done.to_dict()) == done

    # Every step says when and why, the first one too, and keeps no statistics: in the run
    # that made it, a loaded or listed copy, and each step read on its own.
    redaction = pp.Redaction(at=done.at, reason=REASON)
    listed = [r for r in client.runs(run.pipeline) if r.id == run.id]
    single = [step_as_stored(server, run, i) for i in range(3)]
    for steps in (run.steps, client.load_run(run.id).steps, listed[0].steps, single):
        assert [s.statistics_redacted for s in steps] == [redaction] * 3
        assert [s.redacted for s in steps] == [redaction] * 3
        assert [s.stats for s in steps] == [[], [], []]
        assert [s.to_dict()["stats"] for s in steps] == [[], [], []]
        assert [s.to_dict()["record"] for s in steps] == before, "the records bind them"
        assert f"statistics redacted {done.at}" in repr(steps[0])

    # Again: nothing new to remove, and the first time and reason stay.
    again = client.redact(run.id, "erasure request 2026-119", statistics=True)
    assert (again.steps, again.statistics) == ((), ())
    assert (again.already, again.nothing) == ((0, 1, 2), ())
    assert (again.blobs_removed, again.bytes_freed) == (0, 0)
    steps = client.load_run(run.id).steps
    assert [s.statistics_redacted for s in steps] == [redaction] * 3


def test_statistics_stay_unless_asked_and_go_on_their_own(client: pp.Client):
    made = three_steps(client, keep_first=False)
    run = client.load_run(made.id)
    stats = [s.stats for s in run.steps]
    assert all(stats) and stats[0] != stats[2]

    # Without statistics: the details go, the statistics stay. A first step stored
    # without its data has nothing to remove.
    kept = run.redact(REASON, steps=[0, "clean"])
    assert (kept.steps, kept.statistics, kept.already, kept.nothing) == ((1,), (), (), (0,))
    assert kept.to_dict()["statistics"] == []
    for steps in (run.steps, client.load_run(run.id).steps):
        assert [s.stats for s in steps] == stats
        assert [s.statistics_redacted for s in steps] == [None, None, None]
        assert "statistics redacted" not in repr(steps[1])
    first = run.steps[1].redacted
    assert first is not None

    # With statistics, the first step has something to remove: its statistics, and only
    # them. A step whose details were redacted before has its statistics removed now.
    done = client.redact(run.id, "erasure request 2026-119", steps=[0, 1], statistics=True)
    assert (done.steps, done.statistics, done.already, done.nothing) == ((), (0, 1), (), ())
    redaction = pp.Redaction(at=done.at, reason="erasure request 2026-119")
    steps = client.load_run(run.id).steps
    assert [s.statistics_redacted for s in steps] == [redaction, redaction, None]
    assert [s.redacted for s in steps] == [None, first, None]
    assert [s.stats for s in steps] == [[], [], stats[2]]

    # The step left alone keeps its details and data.
    assert (made.diff("cut")["_change"] == "removed").sum() == 5

    # The rest: the last step's details and statistics; the others had both removed
    # before, or hold nothing more.
    last = made.redact("erasure request 2026-120", statistics=True)
    assert (last.steps, last.statistics) == ((2,), (2,))
    assert (last.already, last.nothing) == ((0, 1), ())
    assert [s.stats for s in made.steps] == [[], [], []]
    assert [s.statistics_redacted is not None for s in made.steps] == [True, True, True]


def test_redaction_is_refused_as_the_server_says(server: Server, client: pp.Client):
    # An open run keeps its last step's data to diff the next one against.
    opened = client.run(f"redact-open-{uuid.uuid4().hex[:8]}")
    opened.snapshot(positions(), step="load", key="trade_id", artifact=True)
    with pytest.raises(pp.ValidationError) as err:
        opened.redact(REASON)
    assert err.value.status == 409 and "open" in err.value.detail
    assert opened.steps[0].redacted is None
    opened.seal()
    assert opened.redact(REASON).steps == (0,)

    run = three_steps(client)
    with pytest.raises(pp.ValidationError) as err:
        run.redact("  ")
    assert err.value.status == 400 and "reason" in err.value.detail
    with pytest.raises(pp.ValidationError) as err:
        client.redact(run.id, REASON, steps=[1, 3])
    assert err.value.status == 404 and "no step 3" in err.value.detail
    with pytest.raises(pp.ValidationError) as err:
        client.redact("no-such-run", REASON)
    assert err.value.status == 404 and "no-such-run" in err.value.detail
    with pytest.raises(pp.ValidationError, match="no step named 'nope'"):
        run.redact(REASON, steps=["nope"])

    # Redacting takes the admin scope.
    for scopes in (("read", "ingest"), ("read",)):
        with pp.Client(server.url, token=token(server, *scopes), retries=0) as other:
            with pytest.raises(pp.AuthError) as err:
                other.redact(run.id, REASON)
            assert err.value.status == 403

    # Mistakes in the call are caught before sending.
    for steps in ("clean", 1, [-1], [True], [1.0]):
        with pytest.raises(ValueError, match="steps must be"):
            client.redact(run.id, REASON, steps=steps)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps must be"):
        run.redact(REASON, steps="clean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reason must be"):
        client.redact(run.id, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="run_id"):
        client.redact("", REASON)
    for flag in ("yes", 1, None):
        with pytest.raises(ValueError, match="statistics must be True or False"):
            client.redact(run.id, REASON, statistics=flag)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="statistics must be True or False"):
        run.redact(REASON, statistics="true")  # type: ignore[arg-type]

    # None of that changed anything, even with a client that warns instead of raising.
    warned = server.client(on_error="warn")
    with pytest.raises(pp.ValidationError):
        warned.load_run(run.id).redact("")
    steps = client.load_run(run.id).steps
    assert [s.redacted for s in steps] == [None, None, None]
    assert [s.statistics_redacted for s in steps] == [None, None, None]
    assert all(s.stats for s in steps)
    assert len(run.diff("clean")) == 4


class FailingReads(requests.Session):
    """A session whose reads of one run fail once ``broken`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = ""

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> Any:
        if self.broken and method == "GET" and url.endswith(self.broken):
            raise requests.ConnectionError("connection reset")
        reply = super().request(method, url, *args, **kwargs)
        if method == "POST" and url.endswith("/redact"):
            self.broken = url[: -len("/redact")]
        return reply


def test_a_redaction_whose_steps_cannot_be_read_again_is_still_returned(server: Server):
    session = FailingReads()
    client = server.client(session=session, retries=1, backoff=0.01)
    run = three_steps(client)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = run.redact(REASON)
    assert done.steps == (0, 1, 2)
    (warning,) = [w for w in caught if issubclass(w.category, pp.PipeproofWarning)]
    assert "was redacted" in str(warning.message) and "run.detail()" in str(warning.message)
    assert warning.filename == __file__
    session.broken = ""
    assert [s.redacted is not None for s in client.load_run(run.id).steps] == [True] * 3

"""Runs already on the server: listing them, loading one, and reading it back."""

from __future__ import annotations

import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pandas as pd
import pyarrow as pa
import pytest
import requests

import pipeproof as pp
import pipeproof.client
from conftest import Server


def positions(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trade_id": list(range(1, n + 1)),
            "book": ["rates", "fx", "credit", "fx"] * (n // 4) + ["rates"] * (n % 4),
            "notional": [1000.0 + i for i in range(n)],
        }
    )


def unique(name: str) -> str:
    """A pipeline name no other test uses (the server is shared)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


class Recording(requests.Session):
    """A session that records every request it sends, and can act after a reply."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: List[Tuple[str, str, dict]] = []
        self.after: Optional[Callable[[str, str, dict], None]] = None

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> Any:
        params = dict(kwargs.get("params") or {})
        reply = super().request(method, url, *args, **kwargs)
        self.sent.append((method, url, params))
        if self.after is not None:
            self.after(method, url, params)
        return reply

    def gets(self, suffix: str) -> List[dict]:
        """The query of every GET whose path ends with ``suffix``."""
        return [p for m, u, p in self.sent if m == "GET" and u.endswith(suffix)]


def recording_client(server: Server) -> Tuple[pp.Client, Recording]:
    session = Recording()
    return server.client(session=session), session


def sealed_run(client: pp.Client, pipeline: str, **labels: str) -> pp.Run:
    with client.run(pipeline, labels=labels) as run:
        run.snapshot(positions(), step="load", key="trade_id")
    return run


# Listing.


def test_runs_are_listed_newest_first_and_filtered(client: pp.Client):
    name = unique("daily_positions")
    sealed = sealed_run(client, name, env="prod", region="eu")
    failed = client.run(name, labels={"env": "prod", "region": "us"})
    failed.fail("the feed was late")
    opened = client.run(name, labels={"env": "test", "team=desk": "rates"})
    other = sealed_run(client, unique("other"), env="prod", region="eu")

    every = client.runs(name)
    assert [r.id for r in every] == [opened.id, failed.id, sealed.id]
    assert all(isinstance(r, pp.Run) for r in every)
    assert [r.status for r in every] == ["open", "failed", "sealed"]
    assert every[1].error == "the feed was late"
    assert every[2].labels == {"env": "prod", "region": "eu"}
    assert every[2].created_at and every[2].sealed_at and every[0].sealed_at is None
    assert every[0].to_dict()["steps"] == 0 and every[2].to_dict()["steps"] == 1

    assert [r.id for r in client.runs(name, status="sealed")] == [sealed.id]
    assert [r.id for r in client.runs(name, status="failed")] == [failed.id]
    assert [r.id for r in client.runs(name, status="open")] == [opened.id]
    assert [r.id for r in client.runs(name, labels={"env": "prod"})] == [failed.id, sealed.id]
    # Several labels: the server filters by one, the client by the others.
    assert [r.id for r in client.runs(name, labels={"env": "prod", "region": "eu"})] == [
        sealed.id
    ]
    assert [r.id for r in client.runs(name, labels={"region": "eu", "env": "prod"})] == [
        sealed.id
    ]
    assert client.runs(name, labels={"env": "prod", "region": "asia"}) == []
    assert client.runs(name, labels={"env": "prod"}, status="open") == []
    # A label name the server cannot filter by (it holds "=") is checked by the client.
    assert [r.id for r in client.runs(name, labels={"team=desk": "rates"})] == [opened.id]
    assert client.runs(name, labels={"team=desk": "fx"}) == []

    # Without a pipeline: every pipeline's runs, newest first.
    newest = client.runs(labels={"env": "prod", "region": "eu"}, limit=2)
    assert [r.id for r in newest] == [other.id, sealed.id]
    assert [r.id for r in client.runs(name, limit=2)] == [opened.id, failed.id]
    assert client.runs(name, limit=0) == []
    assert client.runs(unique("never-run")) == []


def test_runs_follows_the_pages_to_the_end_or_the_limit(
    server: Server, client: pp.Client, monkeypatch
):
    monkeypatch.setattr(pipeproof.client, "_RUNS_PAGE", 2)
    name = unique("paged")
    made = [
        sealed_run(client, name, env="prod" if i % 2 else "test", kind="nightly")
        for i in range(5)
    ]
    newest_first = [r.id for r in reversed(made)]
    reader, session = recording_client(server)

    assert [r.id for r in reader.runs(name)] == newest_first
    assert [(p["offset"], p["limit"]) for p in session.gets("/runs")] == [(0, 2), (2, 2), (4, 2)]

    session.sent.clear()
    assert [r.id for r in reader.runs(name, limit=3)] == newest_first[:3]
    assert [(p["offset"], p["limit"]) for p in session.gets("/runs")] == [(0, 2), (2, 1)]

    # Filtered by the client too (the server by "kind", the first label): pages of the
    # largest size are read until enough runs match (runs 4 and 2 are on the first two).
    session.sent.clear()
    test = reader.runs(name, labels={"kind": "nightly", "env": "test"}, limit=2)
    assert [r.id for r in test] == [made[4].id, made[2].id]
    assert [(p["offset"], p["limit"]) for p in session.gets("/runs")] == [(0, 2), (2, 2)]
    session.sent.clear()
    assert reader.runs(name, labels={"kind": "nightly", "env": "staging"}) == []
    assert len(session.gets("/runs")) == 3
    prod = reader.runs(name, labels={"env": "prod"})
    assert [r.id for r in prod] == [made[3].id, made[1].id]


def test_a_run_started_while_paging_does_not_list_another_twice(
    server: Server, client: pp.Client, monkeypatch
):
    monkeypatch.setattr(pipeproof.client, "_RUNS_PAGE", 2)
    name = unique("busy")
    made = [sealed_run(client, name) for _ in range(4)]
    reader, session = recording_client(server)
    late: List[pp.Run] = []

    def start_one(method: str, url: str, params: dict) -> None:
        # After the first page, a new run pushes every older one down a place.
        if method == "GET" and url.endswith("/runs") and params.get("offset") == 0 and not late:
            late.append(client.run(name))

    session.after = start_one
    listed = [r.id for r in reader.runs(name)]
    assert len(listed) == len(set(listed)), listed
    assert listed == [r.id for r in reversed(made)]
    assert late and [r.id for r in client.runs(name, limit=1)] == [late[0].id]


def test_runs_checks_its_arguments(client: pp.Client):
    with pytest.raises(ValueError, match="status must be one of 'open', 'sealed', 'failed'"):
        client.runs(status="done")
    with pytest.raises(ValueError, match="status"):
        client.runs(status="SEALED")
    with pytest.raises(ValueError, match="limit"):
        client.runs(limit=-1)
    with pytest.raises(ValueError, match="limit"):
        client.runs(limit=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="labels must be a mapping"):
        client.runs(labels=["env=prod"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pipeline"):
        client.runs("")
    with pytest.raises(pp.ValidationError, match="'env' is None"):
        client.runs(labels={"env": None})  # type: ignore[dict-item]


def test_a_listed_run_fetches_its_steps_when_first_needed(server: Server, client: pp.Client):
    name = unique("lazy")
    with client.run(name) as made:
        made.snapshot(positions(), step="load", key="trade_id")
        made.snapshot(positions().head(15), step="cut", key="trade_id")
    reader, session = recording_client(server)
    (run,) = reader.runs(name)
    assert repr(run) == f"Run({made.id} pipeline={name!r} status=sealed steps=2)"
    assert session.gets(f"/runs/{made.id}") == [], "listing fetches no run's steps"

    assert run.steps == made.steps
    assert len(session.gets(f"/runs/{made.id}")) == 1
    assert run.steps[1].removed == 5
    assert len(session.gets(f"/runs/{made.id}")) == 1, "the steps are fetched once"
    assert (run.diff("cut")["_change"] == "removed").sum() == 5
    assert run.trace(18)["steps"][1]["state"] == "removed"


# Loading.


def test_a_loaded_run_reads_back_like_the_run_that_made_it(
    server: Server, client: pp.Client, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("PIPEPROOF_BIN", str(server.binary))
    name = unique("daily_positions")
    df = positions()
    cleaned = df[df.trade_id != 3].copy()
    cleaned.loc[cleaned.trade_id == 7, "notional"] = 1.0
    with client.run(name, labels={"env": "prod"}, code_version="v1.4.2") as made:
        made.snapshot(df, step="load", key="trade_id", artifact=True)
        made.snapshot(cleaned, step="clean", key="trade_id")

    run = client.load_run(made.id)
    assert isinstance(run, pp.Run)
    assert (run.id, run.pipeline, run.status) == (made.id, name, "sealed")
    assert run.labels == {"env": "prod"} and run.code_version == "v1.4.2"
    assert run.steps == made.steps
    assert [s.step for s in run.steps] == ["load", "clean"]
    assert (run.steps[1].removed, run.steps[1].changed) == (1, 1)
    assert repr(run) == f"Run({made.id} pipeline={name!r} status=sealed steps=2)"

    pd.testing.assert_frame_equal(run.diff("clean"), made.diff("clean"))
    pd.testing.assert_frame_equal(run.diff(-1, kind="changed"), made.diff(1, kind="changed"))
    assert run.trace(3) == made.trace(3)
    assert [s["state"] for s in run.trace(7)["steps"]] == ["added", "changed"]

    path = run.export(tmp_path / "run.zip")
    assert zipfile.is_zipfile(path)
    assert client.verify_bundle(path, client.public_key()).passed
    assert run.verify().passed

    run.artifact("load", tmp_path / "load.arrows")
    with pa.ipc.open_stream(tmp_path / "load.arrows") as reader:
        table = reader.read_all()
    assert table.column("trade_id").to_pylist() == df["trade_id"].tolist()

    # get_run keeps answering with the API's dict.
    detail = client.get_run(made.id)
    assert isinstance(detail, dict) and detail["run"]["status"] == "sealed"


def test_an_ended_run_refuses_steps_and_seals_as_the_server_says(client: pp.Client):
    sealed = client.load_run(sealed_run(client, unique("ended")).id)
    with pytest.raises(pp.ValidationError) as err:
        sealed.snapshot(positions(), step="late")
    assert err.value.status == 409 and "sealed" in err.value.detail
    with pytest.raises(pp.ValidationError) as err:
        sealed.seal()
    assert err.value.status == 409 and "sealed" in err.value.detail
    with pytest.raises(pp.ValidationError) as err:
        sealed.fail("too late")
    assert err.value.status == 409

    failed = client.run(unique("ended"))
    failed.fail("bad input")
    loaded = client.load_run(failed.id)
    assert loaded.status == "failed" and loaded.error == "bad input"
    with pytest.raises(pp.ValidationError) as err:
        loaded.seal()
    assert err.value.status == 409 and "failed" in err.value.detail

    # The same for the run that was sealed: sealing it again is refused.
    with client.run(unique("twice")) as run:
        run.snapshot(positions(), step="load")
    with pytest.raises(pp.ValidationError) as err:
        run.seal()
    assert err.value.status == 409


def test_an_unknown_run_id_is_named_in_the_error(client: pp.Client):
    with pytest.raises(pp.ValidationError) as err:
        client.load_run("no-such-run")
    assert err.value.status == 404
    assert "'no-such-run'" in str(err.value) and client.url in str(err.value)
    assert err.value.problem and "no-such-run" in err.value.detail

    # An id is one path segment, whatever it holds.
    with pytest.raises(pp.ValidationError) as err:
        client.load_run("../keys")
    assert err.value.status == 404 and "'../keys'" in str(err.value)
    with pytest.raises(ValueError, match="run_id"):
        client.load_run("")


def test_leaving_a_block_ends_only_a_run_the_client_started(client: pp.Client):
    name = unique("resumed")
    started = client.run(name)
    started.snapshot(positions(), step="load", key="trade_id")

    # Another process picks the open run up, adds a step and leaves the block.
    with client.load_run(started.id) as run:
        assert [s.step for s in run.steps] == ["load"]
        step = run.snapshot(positions().head(18), step="cut", key="trade_id")
    assert step is not None and step.index == 1 and step.prev == run.steps[0].hash
    assert [s.step for s in run.steps] == ["load", "cut"]
    assert client.get_run(started.id)["run"]["status"] == "open"

    # An exception leaving the block propagates and does not mark the run failed.
    with pytest.raises(KeyError):
        with client.load_run(started.id) as run:
            raise KeyError("late")
    (listed,) = client.runs(name)
    with listed:
        pass
    assert client.get_run(started.id)["run"]["status"] == "open"

    # Ending it is the caller's to do, and the run that started it seals it as usual.
    started.seal()
    detail = client.get_run(started.id)
    assert detail["run"]["status"] == "sealed"
    assert [s["record"]["step"] for s in detail["steps"]] == ["load", "cut"]

    # A loaded open run can be sealed explicitly.
    other = client.run(name)
    assert client.load_run(other.id).seal()["status"] == "sealed"

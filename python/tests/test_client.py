"""The client against a real server: frames, runs, diffs, errors and faults."""

from __future__ import annotations

import datetime as dt
import decimal
import http.server
import socket
import subprocess
import threading
import time
import warnings
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import requests

import pipeproof as pp
from conftest import Server, free_port
from proxy import LosingProxy


def trades(n: int = 100, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "trade_id": np.arange(1, n + 1, dtype=np.int64),
            "book": rng.choice(["rates", "fx", "credit"], n),
            "notional": rng.normal(1e6, 2e5, n).round(2),
            "ccy": rng.choice(["EUR", "USD", "GBP"], n),
            "live": rng.random(n) > 0.2,
        }
    )


def run_detail(client: pp.Client, run: pp.Run) -> dict:
    return client.get_run(run.id)


# Runs, steps and results.


def test_pandas_steps_are_recorded_diffed_and_sealed(client: pp.Client):
    df = trades()
    with client.run(
        "positions", labels={"env": "test"}, code_version="abc123", params={"date": "2026-11-26"}
    ) as run:
        first = run.snapshot(df, step="load", key="trade_id")
        clean = df[df.trade_id != 5].copy()
        clean.loc[clean.trade_id == 7, "notional"] = 1.0
        clean = pd.concat([clean, trades(1, seed=1).assign(trade_id=1000)], ignore_index=True)
        second = run.snapshot(clean, step="clean", key="trade_id")
    assert run.status == "sealed"

    assert first.index == 0 and first.step == "load" and first.rows == 100
    assert first.diff is None and first.added is None and first.prev is None
    assert len(first.content_root) == 64 and first.key == ["trade_id"]
    assert (second.index, second.rows) == (1, 100)
    assert (second.added, second.removed, second.changed) == (1, 1, 1)
    assert second.unchanged == 98
    assert second.prev == first.hash
    assert not second.is_same

    text = repr(second)
    assert text.startswith("StepResult(#1 'clean' rows=100")
    assert "added=1 removed=1 changed=1" in text

    d = second.to_dict()
    assert set(d) >= {"record", "hash", "schema", "stats", "diff", "artifact"}
    assert [c["name"] for c in d["schema"]] == ["trade_id", "book", "notional", "ccy", "live"]
    d["record"]["rows"] = -1
    assert second.rows == 100, "to_dict() must be a copy"

    detail = run_detail(client, run)
    assert detail["run"]["status"] == "sealed"
    assert detail["run"]["labels"] == {"env": "test"}
    assert detail["run"]["code_version"] == "abc123"
    assert detail["seal"] is not None
    assert [s["hash"] for s in detail["steps"]] == [first.hash, second.hash]


def same_data_in_four_libraries():
    # pandas marks a missing float with NaN; like pyarrow and polars.from_pandas, the client
    # sends it as null, so the other libraries hold a null there. -0.0 and 0.0 are one value
    # in the fingerprint, and integer widths, timestamp units and string layouts do not matter.
    ts = pd.to_datetime(["2026-01-01 09:30", "2026-01-02 10:00", None]).astype("datetime64[ns]")
    pdf = pd.DataFrame(
        {
            "id": pd.array([1, 2, 3], dtype="int64"),
            "name": ["alpha", None, "gamma"],
            "x": [1.5, np.nan, -0.0],
            "flag": [True, False, True],
            "at": ts,
        }
    )
    plf = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["alpha", None, "gamma"],
            "x": [1.5, None, 0.0],
            "flag": [True, False, True],
            "at": [
                pd.Timestamp("2026-01-01 09:30").to_pydatetime(),
                pd.Timestamp("2026-01-02 10:00").to_pydatetime(),
                None,
            ],
        },
        schema_overrides={"id": pl.Int32, "at": pl.Datetime("us")},
    )
    patable = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int16()),
            "name": pa.array(["alpha", None, "gamma"], pa.large_string()),
            "x": pa.array([1.5, None, 0.0], pa.float32()),
            "flag": [True, False, True],
            "at": pa.array(
                [pd.Timestamp("2026-01-01 09:30"), pd.Timestamp("2026-01-02 10:00"), None],
                pa.timestamp("ms"),
            ),
        }
    )
    rel = duckdb.sql(
        """
        select * from (values
            (1, 'alpha', 1.5::double, true, timestamp '2026-01-01 09:30:00'),
            (2, null, null, false, timestamp '2026-01-02 10:00:00'),
            (3, 'gamma', 0.0::double, true, null)
        ) t(id, name, x, flag, "at") order by id
        """
    )
    return pdf, plf, patable, rel


def test_same_data_from_pandas_polars_pyarrow_duckdb_has_one_content_root(client: pp.Client):
    pdf, plf, patable, rel = same_data_in_four_libraries()
    with client.run("four-libraries") as run:
        results = [
            run.snapshot(pdf, step="pandas", key="id"),
            run.snapshot(plf, step="polars", key="id"),
            run.snapshot(patable, step="pyarrow", key="id"),
            run.snapshot(rel, step="duckdb", key="id"),
        ]
    roots = {r.step: r.content_root for r in results}
    assert len(set(roots.values())) == 1, roots
    for r in results[1:]:
        assert r.is_same, r
    # A different value gives a different root: the comparison above can fail.
    changed = pdf.copy()
    changed.loc[0, "x"] = 1.25
    with client.run("four-libraries") as run:
        other = run.snapshot(changed, step="pandas", key="id")
    assert other.content_root != results[0].content_root


def test_categorical_columns_after_the_first_step(client: pp.Client):
    df = trades(30)
    categorical = df.assign(book=df.book.astype("category"), ccy=df.ccy.astype("category"))
    with client.run("categorical") as run:
        plain = run.snapshot(df, step="plain", key="trade_id")
        cat = run.snapshot(categorical, step="categorical", key="trade_id")
        again = run.snapshot(categorical.head(20), step="cut", key="trade_id")
    assert cat.content_root == plain.content_root and cat.is_same
    assert again.removed == 10


def test_record_batches_readers_and_capsule_objects(client: pp.Client):
    table = pa.Table.from_pandas(trades(50), preserve_index=False)

    class Capsule:
        def __arrow_c_stream__(self, requested_schema=None):
            return table.__arrow_c_stream__(requested_schema)

    with client.run("arrow-inputs") as run:
        a = run.snapshot(table, step="table")
        b = run.snapshot(table.combine_chunks().to_batches()[0], step="batch")
        c = run.snapshot(pa.RecordBatchReader.from_batches(table.schema, table.to_batches(7)), step="reader")
        d = run.snapshot(Capsule(), step="capsule")
    assert a.rows == 50
    assert len({x.content_root for x in (a, b, c, d)}) == 1


def test_many_batches_give_the_same_roots_as_one(client: pp.Client):
    df = trades(50_000)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pieces = pa.Table.from_batches(table.to_batches(max_chunksize=999))
    with client.run("batching") as run:
        whole = run.snapshot(table.combine_chunks(), step="whole")
        split = run.snapshot(pieces, step="split")
    assert whole.rows == split.rows == 50_000
    assert (whole.content_root, whole.order_root) == (split.content_root, split.order_root)


def test_params_and_diff_options_are_recorded(client: pp.Client):
    df = trades(20)
    with client.run("options") as run:
        run.snapshot(df, step="a", key="trade_id")
        nudged = df.assign(notional=df.notional + 1e-9)
        r = run.snapshot(
            nudged,
            step="b",
            key=["trade_id"],
            params={"threshold": 3},
            abs_tol=1e-6,
            ignore=["live"],
            max_detail_rows=5,
        )
    assert r.changed == 0 and r.unchanged == 20
    assert r.diff["within_tolerance"] == 20
    assert r.params["threshold"] == 3
    with pytest.raises(TypeError, match="unknown option"):
        run.snapshot(df, step="c", tolerance=1)


def test_decorator_snapshots_the_returned_frame_under_the_function_name(client: pp.Client):
    with client.run("decorated") as run:

        @run.step(key="trade_id")
        def load() -> pd.DataFrame:
            return trades(30)

        @run.step(key="trade_id", name="without_fx")
        def clean(df: pd.DataFrame) -> pd.DataFrame:
            return df[df.book != "fx"]

        @run.step
        def total(df: pd.DataFrame) -> pd.DataFrame:
            return df.groupby("ccy", as_index=False).notional.sum()

        out = total(clean(load()))
    assert isinstance(out, pd.DataFrame) and set(out.columns) == {"ccy", "notional"}
    assert [s.step for s in run.steps] == ["load", "without_fx", "total"]
    assert run.steps[1].removed == (trades(30).book == "fx").sum()
    assert clean.__name__ == "clean"
    detail = run_detail(client, run)
    assert [s["record"]["step"] for s in detail["steps"]] == ["load", "without_fx", "total"]


def test_an_exception_marks_the_run_failed_with_the_error(client: pp.Client):
    with pytest.raises(ZeroDivisionError):
        with client.run("failing") as run:
            run.snapshot(trades(10), step="load", key="trade_id")
            1 / 0
    assert run.status == "failed"
    detail = run_detail(client, run)
    assert detail["run"]["status"] == "failed"
    assert "ZeroDivisionError" in detail["run"]["error"]
    assert "division by zero" in detail["run"]["error"]
    assert len(detail["steps"]) == 1
    assert detail["seal"] is not None


def test_diff_returns_the_details_as_a_dataframe(client: pp.Client):
    df = trades(40)
    after = df[~df.trade_id.isin([3, 4])].copy()
    after.loc[after.trade_id == 10, ["notional", "ccy"]] = [5.0, "JPY"]
    after = pd.concat([after, df.head(1).assign(trade_id=999)], ignore_index=True)
    with client.run("details") as run:
        run.snapshot(df, step="load", key="trade_id")
        run.snapshot(after, step="clean", key="trade_id")
    frame = run.diff("clean")
    assert list(frame.columns[:1]) == ["_change"]
    assert frame._change.value_counts().to_dict() == {"removed": 2, "changed": 2, "added": 1}
    # Changed rows have no row number; the others' stay integers.
    assert str(frame._row.dtype) == "Int64"
    assert frame._row.isna().tolist() == [r == "changed" for r in frame._change]
    assert sorted(frame._row.dropna().tolist()) == [2, 3, 38]
    changed = run.diff(1, kind="changed")
    assert set(changed.column) == {"notional", "ccy"}
    ccy = changed[changed.column == "ccy"].iloc[0]
    assert (ccy.old, ccy.new) == (df.loc[df.trade_id == 10, "ccy"].item(), "JPY")
    removed = run.diff("clean", kind="removed")
    assert sorted(removed.trade_id.astype(int)) == [3, 4]
    only_ccy = run.diff("clean", kind="changed", column="ccy")
    assert len(only_ccy) == 1
    with pytest.raises(pp.ValidationError, match="first"):
        run.diff("load")
    with pytest.raises(pp.ValidationError, match="no step named"):
        run.diff("nope")


def test_trace_follows_a_row_by_its_key(client: pp.Client):
    df = trades(20)
    with client.run("trace") as run:
        run.snapshot(df, step="load", key="trade_id")
        changed = df.copy()
        changed.loc[changed.trade_id == 7, "notional"] = 1.0
        run.snapshot(changed, step="clean", key="trade_id")
        run.snapshot(changed[changed.trade_id != 7], step="drop", key="trade_id")
    t = run.trace(7)
    assert t["key"] == ["trade_id"] and t["value"] == "7"
    assert [s["state"] for s in t["steps"]] == ["added", "changed", "removed"], t
    assert t["steps"][1]["changes"][0]["column"] == "notional", t
    assert run.trace(np.int64(7)) == t
    with pytest.raises(pp.ValidationError, match="not a value of the key"):
        run.trace("seven")
    with pytest.raises(pp.ValidationError, match="needs the key's value"):
        run.trace()

    # A key of two columns, one of whose values holds `|`.
    codes = pd.DataFrame({"region": ["EU", "EU"], "code": ["A|7", "B"], "n": [1, 2]})
    with client.run("trace-composite") as run:
        run.snapshot(codes, step="load", key=["region", "code"])
        run.snapshot(codes.assign(n=[5, 2]), step="bump", key=["region", "code"])
    t = run.trace("EU", "A|7")
    assert [s["state"] for s in t["steps"]] == ["added", "changed"], t
    assert t["steps"][1]["changes"][0] == {"column": "n", "old": "1", "new": "5"}, t


def test_diff_keeps_data_columns_named_like_its_own_apart(client: pp.Client):
    before = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "old": [10, 20, 30],
            "new": ["a", "b", "c"],
            "column": ["x", "y", "z"],
            "_change": [7, 8, 9],
        }
    )
    after = before.copy()
    after.loc[1, "old"] = 25
    after.loc[2] = [4, 40, "d", "w", 9]
    with client.run("diff-names") as run:
        run.snapshot(before, step="load", key="id")
        run.snapshot(after, step="clean", key="id")
    frame = run.diff("clean")
    assert list(frame.columns) == [
        "__change", "id", "old", "new", "column", "_change", "_row", "_column", "_old", "_new"
    ]
    assert frame["__change"].tolist() == ["added", "removed", "changed"]
    added, removed, changed = (frame.iloc[i] for i in range(3))
    assert (added.id, added.old, added.new, added.column, added._change) == (4, 40, "d", "w", 9)
    assert (removed.id, removed.old, removed.new, removed.column) == (3, 30, "c", "z")
    assert (changed.id, changed._column, changed._old, changed._new) == (2, "old", "20", "25")
    assert frame[["old", "new", "column", "_change", "_row"]].iloc[2].isna().all()
    # Integers stay integers where changed rows have no value.
    assert str(frame["_row"].dtype) == "Int64" and frame["_row"][:2].tolist() == [2, 2]
    assert str(frame["old"].dtype) == "Int64" and str(frame["_change"].dtype) == "Int64"
    # The names come from the steps' columns, not from the rows a filter leaves.
    only = run.diff("clean", kind="changed")
    assert list(only.columns) == ["__change", "id", "_column", "_old", "_new"]
    assert only["_old"].tolist() == ["20"]


def test_diff_with_a_key_named_like_the_kind_column(client: pp.Client):
    with client.run("diff-key-names") as run:
        run.snapshot(pd.DataFrame({"_change": [1, 2, 3], "v": [1, 2, 3]}), step="a", key="_change")
        run.snapshot(pd.DataFrame({"_change": [1, 2, 4], "v": [1, 5, 3]}), step="b", key="_change")
    frame = run.diff("b")
    assert list(frame.columns) == ["__change", "_change", "v", "_row", "column", "old", "new"]
    assert frame["__change"].tolist() == ["added", "removed", "changed"]
    assert frame["_change"].tolist() == [4, 3, 2]
    assert str(frame["_row"].dtype) == "Int64" and str(frame["v"].dtype) == "Int64"
    assert frame[["column", "old", "new"]].iloc[2].tolist() == ["v", "2", "5"]


def test_diff_pages_through_many_rows(client: pp.Client):
    df = trades(2500)
    with client.run("paging") as run:
        run.snapshot(df.head(0), step="empty", key="trade_id")
        run.snapshot(df, step="all", key="trade_id")
    added = run.diff("all", kind="added")
    assert len(added) == 2500
    assert sorted(added.trade_id.astype(int)) == list(range(1, 2501))


def test_a_kept_step_comes_back_as_sent(client: pp.Client, tmp_path: Path):
    df = trades(40)
    with client.run("kept") as run:
        kept = run.snapshot(df, step="load", key="trade_id", artifact=True)
        run.snapshot(df.head(30), step="cut", key="trade_id")
    assert kept.artifact
    path = run.artifact("load", tmp_path / "load.arrows")
    with pa.ipc.open_stream(path) as reader:
        table = reader.read_all()
    assert table.num_rows == 40
    assert table.column("trade_id").to_pylist() == df["trade_id"].tolist()
    with pytest.raises(pp.ValidationError) as err:
        run.artifact("cut", tmp_path / "cut.arrows")
    assert err.value.status == 404
    assert "artifact=true" in str(err.value)
    assert not (tmp_path / "cut.arrows").exists()


def test_export_writes_a_bundle_that_verifies(
    server: Server, client: pp.Client, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("PIPEPROOF_BIN", str(server.binary))
    with client.run("bundled") as run:
        run.snapshot(trades(30), step="load", key="trade_id")
        run.snapshot(trades(30).head(25), step="cut", key="trade_id")
    path = run.export(tmp_path / "run.zip")
    assert zipfile.is_zipfile(path)
    result = client.verify_bundle(path, client.public_key())
    assert result.passed, result
    assert result.checks and all(c.passed for c in result.checks)
    assert "passed" in repr(result)
    assert run.verify().passed

    # One flipped byte in the manifest makes verification fail, saying where.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".json") and b'"rows":25' in data:
                data = data.replace(b'"rows":25', b'"rows":24', 1)
            dst.writestr(info, data)
    bad = client.verify_bundle(tampered, client.public_key())
    assert not bad.passed and bad.failed
    assert "FAILED" in repr(bad)


def test_verify_bundle_without_the_binary_says_how_to_fix(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PIPEPROOF_BIN", str(tmp_path / "missing"))
    with pytest.raises(pp.PipeproofError, match="cannot run"):
        pp.verify_bundle(tmp_path / "x.zip")


# Errors.


def test_wrong_or_missing_token_is_an_auth_error(server: Server, monkeypatch):
    with pp.Client(server.url, token="not-the-token", retries=0) as bad:
        with pytest.raises(pp.AuthError) as err:
            bad.run("nope")
    assert err.value.status == 401
    assert isinstance(err.value, pp.PipeproofError)
    monkeypatch.delenv("PIPEPROOF_TOKEN", raising=False)
    with pp.Client(server.url, retries=0) as none:
        with pytest.raises(pp.AuthError, match="PIPEPROOF_TOKEN"):
            none.run("nope")


def test_a_read_only_token_cannot_ingest(server: Server, client: pp.Client):
    reply = requests.post(
        f"{server.url}/api/v1/tokens",
        json={"name": "reader", "scopes": ["read"]},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    with pp.Client(server.url, token=reply.json()["token"], retries=0) as reader:
        assert reader.whoami()["scopes"] == ["read"]
        with pytest.raises(pp.AuthError) as err:
            reader.run("nope")
    assert err.value.status == 403


def test_an_unsupported_dtype_is_refused_before_anything_is_sent(client: pp.Client):
    df = trades(5)
    df["note"] = pd.Series([1, "x", 2.5, None, "y"], dtype=object)
    with client.run("dtypes") as run:
        with pytest.raises(pp.ValidationError, match="column 'note'"):
            run.snapshot(df, step="load")
        assert run_detail(client, run)["steps"] == []
        assert run.snapshot(df.drop(columns="note"), step="load").rows == 5


def test_the_server_problem_detail_reaches_the_exception(client: pp.Client):
    with client.run("problems") as run:
        with pytest.raises(pp.ValidationError) as err:
            run.snapshot(trades(5), step="load", key="no_such_column")
    assert 400 <= err.value.status < 500
    assert "no_such_column" in str(err.value)
    assert err.value.problem and "no_such_column" in err.value.detail


def test_a_sealed_run_refuses_steps(client: pp.Client):
    with client.run("sealed") as run:
        run.snapshot(trades(5), step="load")
    with pytest.raises(pp.ValidationError) as err:
        run.snapshot(trades(5), step="late")
    assert err.value.status == 409


def test_warn_mode_a_step_of_a_run_ended_elsewhere_says_so(client: pp.Client):
    warned = pp.Client(client.url, token=client._http.token, on_error="warn")
    run = warned.run("ended-elsewhere")
    run.snapshot(trades(5), step="load")
    client._http.request("POST", f"/runs/{run.id}/seal", retry="never")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run.snapshot(trades(5), step="late") is None
    messages = _pipeproof_warnings(caught)
    assert len(messages) == 1 and "it had already ended on the server" in messages[0], messages
    assert client.get_run(run.id)["run"]["status"] == "sealed"


def test_a_body_over_the_limit_gets_the_server_message_while_streaming(tmp_path: Path):
    small = Server(tmp_path / "data", args=["--max-body", "64KiB"])
    small.start()
    try:
        c = small.client(retries=1)
        with c.run("too-big") as run:
            big = pd.DataFrame({"x": np.arange(2_000_000)})
            with pytest.raises(pp.ValidationError, match="--max-body") as err:
                run.snapshot(big, step="big")
            assert err.value.status == 413
            assert run.snapshot(big.head(100), step="small").rows == 100
    finally:
        small.stop()


def test_unknown_run_is_a_validation_error(client: pp.Client):
    with pytest.raises(pp.ValidationError) as err:
        client.get_run("no-such-run")
    assert err.value.status == 404


# Faults.


def test_warn_mode_carries_on_when_the_server_is_down():
    down = pp.Client(f"http://127.0.0.1:{free_port()}", token="t", retries=1, backoff=0.01, on_error="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with down.run("offline") as run:
            result = run.snapshot(trades(5), step="load")
            ran_on = True
    assert ran_on and result is None and run.detached
    assert run.steps == [] and run.skipped == ["load"]
    messages = [str(w.message) for w in caught if issubclass(w.category, pp.PipeproofWarning)]
    assert any("could not start a run" in m for m in messages), messages
    assert any("step 'load'" in m for m in messages), messages
    assert any("not sealed" in m and "never started" in m for m in messages), messages


def test_raise_mode_reports_the_server_as_unreachable():
    down = pp.Client(f"http://127.0.0.1:{free_port()}", token="t", retries=1, backoff=0.01)
    with pytest.raises(pp.ConnectionError, match="unreachable"):
        down.run("offline")


def test_warn_mode_when_the_server_dies_mid_run(own_server: Server):
    c = own_server.client(on_error="warn", retries=1, backoff=0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with c.run("dies") as run:
            assert run.snapshot(trades(5), step="load") is not None
            own_server.stop()
            assert run.snapshot(trades(5), step="clean") is None
    assert any(issubclass(w.category, pp.PipeproofWarning) for w in caught)
    assert [s.step for s in run.steps] == ["load"]


def _pipeproof_warnings(caught) -> list:
    return [str(w.message) for w in caught if issubclass(w.category, pp.PipeproofWarning)]


def test_warn_mode_detaches_a_run_whose_server_died_and_waits_no_more(own_server: Server):
    # Each failed call waits about 0.2 + 0.4 + 0.8 s between its attempts.
    c = own_server.client(on_error="warn", retries=3, backoff=0.2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with c.run("dies") as run:
            assert run.snapshot(trades(5), step="load") is not None
            own_server.stop()
            started = time.monotonic()
            assert run.snapshot(trades(5), step="clean") is None
            failed = time.monotonic()
            assert run.snapshot(trades(5), step="enrich") is None
            assert run.snapshot(trades(5), step="report") is None
        after = time.monotonic() - failed
    assert failed - started > 1.0, "the failed step should have been retried"
    assert after < 0.5, f"later steps and the seal took {after:.2f} s"
    assert run.detached and run.id is not None
    assert [s.step for s in run.steps] == ["load"]
    assert run.skipped == ["clean", "enrich", "report"]
    messages = _pipeproof_warnings(caught)
    assert len(messages) == 4, messages
    first, *later, seal = messages
    assert f"step 'clean' of run {run.id} not recorded" in first and "unreachable" in first
    assert "incomplete from step 1 ('clean') on" in first, first
    assert "will not be sealed" in first, first
    assert "it stays open on the server, which could not be reached" in first, first
    for step, message in zip(["enrich", "report"], later):
        assert message == (
            f"pipeproof: step {step!r} not recorded: run {run.id} is detached (its record "
            "is incomplete from step 1 ('clean') on) and will not be sealed"
        )
    assert seal == (
        f"pipeproof: run {run.id} not sealed: it is detached (its record is incomplete "
        "from step 1 ('clean') on)"
    )
    own_server.start()
    detail = own_server.client().get_run(run.id)
    assert [s["record"]["step"] for s in detail["steps"]] == ["load"]
    assert detail["run"]["status"] == "open" and detail["seal"] is None


def test_warn_mode_a_step_lost_to_a_transient_fault_leaves_no_gap(own_server: Server):
    c = own_server.client(on_error="warn", retries=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with c.run("gap") as run:
            run.snapshot(trades(10), step="load", key="trade_id")
            own_server.stop()
            assert run.snapshot(trades(10).head(8), step="clean", key="trade_id") is None
            own_server.start()
            # The server is back, but "report" would be diffed against "load" as if
            # "clean" had not run.
            assert run.snapshot(trades(10).head(5), step="report", key="trade_id") is None
    assert run.skipped == ["clean", "report"] and run.status == "open"
    detail = c.get_run(run.id)
    assert [s["record"]["step"] for s in detail["steps"]] == ["load"]
    assert detail["run"]["status"] == "open" and detail["seal"] is None
    assert any("not sealed" in m for m in _pipeproof_warnings(caught))
    assert "detached" in repr(run) and "skipped=2" in repr(run)


def test_warn_mode_a_failed_seal_is_not_retried_at_the_end_of_the_block(own_server: Server):
    c = own_server.client(on_error="warn", retries=3, backoff=0.2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with c.run("seal-dies") as run:
            run.snapshot(trades(5), step="load")
            own_server.stop()
            assert run.seal() is None
            failed = time.monotonic()
        after = time.monotonic() - failed
    assert after < 0.5, f"the seal at the end of the block took {after:.2f} s"
    messages = _pipeproof_warnings(caught)
    assert len(messages) == 2, messages
    assert f"could not seal run {run.id}" in messages[0], messages
    assert messages[1] == (
        f"pipeproof: run {run.id} not sealed: it is detached (it could not be sealed)"
    )


def test_retries_across_a_server_restart_store_the_step_once(own_server: Server, caplog):
    c = own_server.client(retries=8, backoff=0.2)
    with c.run("restart") as run:
        run.snapshot(trades(100), step="load", key="trade_id")
        own_server.stop()
        restarter = threading.Timer(1.0, own_server.start)
        restarter.start()
        with caplog.at_level("WARNING", logger="pipeproof"):
            clean = run.snapshot(trades(100).head(90), step="clean", key="trade_id")
        restarter.join()
    retried = [r for r in caplog.records if "/steps" in r.getMessage() and "retrying" in r.getMessage()]
    assert retried, "the post must have failed at least once while the server was down"
    assert clean.removed == 10
    detail = c.get_run(run.id)
    assert [s["record"]["step"] for s in detail["steps"]] == ["load", "clean"]
    assert detail["run"]["status"] == "sealed"


def test_a_lost_reply_is_retried_with_the_same_idempotency_key(server: Server):
    proxy = LosingProxy(server.port, lose_after=b"/steps?")
    try:
        c = pp.Client(proxy.url, token=server.token, retries=3, backoff=0.05)
        with c.run("lost-reply") as run:
            first = run.snapshot(trades(20), step="load", key="trade_id")
        assert proxy.lost == 1, "the proxy must have dropped one reply"
        assert first.replayed, "the retry should get the stored step back"
        detail = server.client().get_run(run.id)
        assert len(detail["steps"]) == 1
        assert detail["steps"][0]["hash"] == first.hash
    finally:
        proxy.close()


def test_progress_bar_option_uploads_the_same(client: pp.Client):
    with client.run("progress") as run:
        a = run.snapshot(trades(1000), step="quiet")
    loud = pp.Client(client.url, token=client._http.token, progress=True)
    with loud.run("progress") as run:
        b = run.snapshot(trades(1000), step="loud")
    assert a.content_root == b.content_root


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail`` requests, then a WhoAmI."""

    fail = 2
    seen = 0

    def do_GET(self):
        type(self).seen += 1
        if type(self).seen <= type(self).fail:
            body = b'{"type":"about:blank","title":"Unavailable","status":503,"detail":"busy"}'
            self.send_response(503)
            self.send_header("Content-Type", "application/problem+json")
        else:
            body = b'{"name":"t","scopes":["read"]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_5xx_replies_are_retried_then_reported():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        _Flaky.seen, _Flaky.fail = 0, 2
        assert pp.Client(url, token="t", retries=2, backoff=0.01).whoami()["name"] == "t"
        assert _Flaky.seen == 3
        _Flaky.seen, _Flaky.fail = 0, 10
        with pytest.raises(pp.ServerError, match="busy") as err:
            pp.Client(url, token="t", retries=2, backoff=0.01).whoami()
        assert err.value.status == 503 and _Flaky.seen == 3
    finally:
        httpd.shutdown()


def test_a_silent_server_is_a_timeout():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # accepts connections, never answers
    try:
        c = pp.Client(f"http://127.0.0.1:{listener.getsockname()[1]}", token="t", timeout=0.3, retries=1, backoff=0.01)
        with pytest.raises(pp.ConnectionError, match="did not answer in time"):
            c.whoami()
    finally:
        listener.close()


# Results, options and parameters.


def test_is_same_is_false_when_columns_were_added_or_removed(client: pp.Client):
    df = pd.DataFrame({"id": [1, 2], "v": [1, 2]})
    with client.run("schema-changes") as run:
        run.snapshot(df, step="load", key="id")
        text = df.assign(v=["1", "2"])
        retyped = run.snapshot(text, step="text", key="id")
        added = run.snapshot(text.assign(ssn=["123-45", "999-99"]), step="enrich", key="id")
        removed = run.snapshot(df[["id"]], step="trim", key="id")
        noted = df[["id"]].assign(note=["a", "b"])
        ignored = run.snapshot(noted, step="noted", key="id", ignore="note")
        reordered = run.snapshot(noted[["note", "id"]], step="swap", key="id")
    assert retyped.is_same is False and "columns=~v" in repr(retyped)
    assert (added.added, added.removed, added.changed) == (0, 0, 0)
    assert added.is_same is False and "columns=+ssn" in repr(added)
    assert added.schema_changes == {"added": ["ssn"], "removed": [], "retyped": []}
    assert (removed.added, removed.removed, removed.changed) == (0, 0, 0)
    assert removed.is_same is False and "columns=-v,-ssn" in repr(removed)
    # An ignored column and a new column order leave the data as it was.
    assert ignored.is_same is True and "columns=" not in repr(ignored)
    assert reordered.is_same is True and "columns=" not in repr(reordered)


def test_a_frame_without_columns_is_recorded_with_its_rows(client: pp.Client):
    with client.run("no-columns") as run:
        from_pandas = run.snapshot(pd.DataFrame(index=range(3)), step="pandas")
        from_arrow = run.snapshot(pa.table({"a": [1, 2, 3]}).select([]), step="arrow")
    assert from_pandas.rows == 3
    assert from_pandas.content_root == from_arrow.content_root


def test_artifact_takes_only_a_bool(client: pp.Client):
    with client.run("artifact-flag") as run:
        for value in ("false", "true", 1, "0"):
            with pytest.raises(pp.ValidationError, match="artifact must be True or False"):
                run.snapshot(trades(5), step="load", artifact=value)
        assert run_detail(client, run)["steps"] == []
        assert run.snapshot(trades(5), step="load", artifact=False).artifact is False
        assert run.snapshot(trades(5), step="kept", artifact=True).artifact is True


def test_a_wrong_artifact_flag_raises_even_in_warn_mode(server):
    # A mistake in the call, as an unknown option is: raised, and the run not detached.
    client = server.client(on_error="warn")
    with client.run("artifact-flag-warn") as run:
        with pytest.raises(pp.ValidationError, match="artifact must be True or False"):
            run.snapshot(trades(5), step="load", artifact=1)
        assert run.snapshot(trades(5), step="load", artifact=True).artifact is True
    assert run_detail(client, run)["run"]["status"] == "sealed"


def test_run_and_step_params_are_encoded_alike(client: pp.Client):
    params = {"day": dt.date(2024, 1, 1), "n": np.int64(3), "share": np.float32(0.5)}
    with client.run("params", params=params) as run:
        step = run.snapshot(trades(5), step="load", params=params)
    expected = {"day": "2024-01-01", "n": 3, "share": 0.5}
    assert run.to_dict()["params"] == expected
    assert {k: step.params[k] for k in expected} == expected


def test_nan_params_and_none_labels_are_refused_before_sending(client: pp.Client):
    with client.run("nan-params") as run:
        with pytest.raises(pp.ValidationError, match=r"step params\['x'\] is nan") as err:
            run.snapshot(trades(5), step="load", params={"x": float("nan")})
        assert err.value.status is None
        with pytest.raises(pp.ValidationError, match=r"params\['w'\]\[1\] is inf"):
            run.snapshot(trades(5), step="load", params={"w": [1.0, np.inf]})
        assert run_detail(client, run)["steps"] == []
    with pytest.raises(pp.ValidationError, match=r"run params\['x'\] is nan"):
        client.run("nan-params", params={"x": float("nan")})
    with pytest.raises(pp.ValidationError, match="label 'k' is None"):
        client.run("none-label", labels={"k": None})


def test_negative_step_indexes_count_from_the_last_step(client: pp.Client, tmp_path: Path):
    df = trades(10)
    with client.run("negative") as run:
        run.snapshot(df, step="load", key="trade_id")
        run.snapshot(df.head(8), step="cut", key="trade_id", artifact=True)
    assert len(run.diff(-1, kind="removed")) == 2
    assert run.diff(-1).equals(run.diff("cut"))
    with pytest.raises(pp.ValidationError, match="first"):
        run.diff(-2)
    with pytest.raises(pp.ValidationError, match="index -3 is out of range"):
        run.diff(-3)
    path = run.artifact(-1, tmp_path / "cut.arrows")
    assert pa.ipc.open_stream(path.read_bytes()).read_all().num_rows == 8


# Errors in warn mode.


def test_an_unusable_server_url_is_a_configuration_error(monkeypatch):
    with pytest.raises(pp.ValidationError, match=r"url='localhost:8080'.*http://localhost:8080"):
        pp.Client("localhost:8080", token="t")
    for bad in ("ftp://127.0.0.1/", "http://[::1", "http://127.0.0.1:99999"):
        monkeypatch.setenv("PIPEPROOF_URL", bad)
        with pytest.raises(pp.ValidationError, match="PIPEPROOF_URL="):
            pp.Client(token="t")
        warned = pp.Client(token="t", on_error="warn", retries=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with warned.run("misconfigured") as run:
                assert run.snapshot(trades(5), step="load") is None
        assert run.detached
        messages = [str(w.message) for w in caught if issubclass(w.category, pp.PipeproofWarning)]
        assert any("PIPEPROOF_URL=" in m and "not a usable server URL" in m for m in messages)


def test_warn_mode_turns_unconvertible_data_into_warnings(client: pp.Client):
    class Broken:
        def __arrow_c_stream__(self, requested_schema=None):
            raise RuntimeError("the source went away")

    base = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    bad = {
        "huge": pd.DataFrame({"c": pd.Series([2**70, 1], dtype=object)}),
        "sparse": pd.DataFrame({"c": pd.arrays.SparseArray([0, 0, 1, 2])}),
        "infinite": pd.DataFrame({"c": [decimal.Decimal("Infinity"), decimal.Decimal(1)]}),
        "int128": pl.DataFrame({"c": [1, 2]}, schema={"c": pl.Int128}),
        "object": pl.DataFrame({"c": [decimal.Decimal("1.5"), "x"]}, schema={"c": pl.Object}),
        "index": base.set_axis(pd.Index([7, 8, 9], name="a"), axis=0),
        "series": base["a"],
        "array": pa.array([1, 2, 3]),
        "nothing": None,
        "broken": Broken(),
    }
    warned = pp.Client(client.url, token=client._http.token, on_error="warn")
    for step, data in bad.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with warned.run("warn-data") as run:
                assert run.snapshot(trades(5), step="load") is not None
                assert run.snapshot(data, step=step) is None, step
                # A step that cannot be recorded detaches the run: "fine" would otherwise
                # be diffed against "load" as if the refused step had not run.
                assert run.snapshot(trades(5), step="fine") is None, step
        assert [s.step for s in run.steps] == ["load"] and run.skipped == [step, "fine"]
        # The server could be told: the run is ended as failed, saying which step and why.
        detail = client.get_run(run.id)
        assert len(detail["steps"]) == 1 and detail["run"]["status"] == "failed", step
        assert detail["run"]["error"].startswith(f"step 1 ({step!r}) was not recorded: "), detail
        assert run.status == "failed" and detail["seal"] is not None
        # The block's end does not try to seal a run that ended: no third warning.
        messages = _pipeproof_warnings(caught)
        assert len(messages) == 2, messages
        assert f"step {step!r} of run {run.id} not recorded" in messages[0], messages
        assert f"incomplete from step 1 ({step!r}) on" in messages[0], messages
        assert "it is ended as failed on the server, with that reason" in messages[0], messages
        assert "step 'fine' not recorded" in messages[1], messages


def test_unexpected_conversion_errors_name_the_step_and_keep_the_cause(client: pp.Client):
    class Broken:
        def __arrow_c_stream__(self, requested_schema=None):
            raise RuntimeError("the source went away")

    with client.run("broken-data") as run:
        with pytest.raises(pp.ValidationError) as err:
            run.snapshot(Broken(), step="load")
        assert "step 'load'" in str(err.value)
        assert "RuntimeError: the source went away" in str(err.value)
        assert isinstance(err.value.__cause__, RuntimeError)


def test_a_failure_to_encode_the_stream_names_the_step(client: pp.Client, monkeypatch):
    import pipeproof.client

    def failing(table, batch_rows=65536):
        yield b""
        raise pa.ArrowInvalid("cannot write this batch")

    monkeypatch.setattr(pipeproof.client, "ipc_stream", failing)
    with client.run("unencodable") as run:
        with pytest.raises(pp.ValidationError, match="step 'load'.*cannot write this batch"):
            run.snapshot(trades(5), step="load")


def test_warnings_point_at_the_line_that_called_the_client(own_server: Server):
    down = pp.Client(f"http://127.0.0.1:{free_port()}", token="t", retries=0, on_error="warn")
    live = own_server.client(on_error="warn", retries=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = down.run("offline"); line_run = _line()
        run.snapshot(trades(5), step="load"); line_snapshot = _line()

        with live.run("dies") as alive:

            @alive.step
            def load() -> pd.DataFrame:
                return trades(5)

            own_server.stop()
            load(); line_decorated = _line()
            alive.seal(); line_seal = _line()
    found = [(w.filename, w.lineno) for w in caught if issubclass(w.category, pp.PipeproofWarning)]
    here = str(Path(__file__))
    assert found[:4] == [
        (here, line_run),
        (here, line_snapshot),
        (here, line_decorated),
        (here, line_seal),
    ], found
    # The seal when the block ends is reported at the block, in this file.
    assert len(found) == 5 and found[4][0] == here, found


def _line() -> int:
    """The caller's line number."""
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def test_runs_sealed_before_a_key_rotation_still_verify(own_server: Server):
    frame = pd.DataFrame({"id": [1, 2], "v": [1.5, 2.5]})
    with own_server.client() as c:
        with c.run("rotated") as before:
            before.snapshot(frame, step="load", key="id")
        old_key = c.public_key()
    own_server.stop()
    done = subprocess.run(
        [str(own_server.binary), "key", "rotate", "--data-dir", str(own_server.data_dir)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    own_server.start()
    with own_server.client() as c:
        keys = c.keys()["keys"]
        assert [k["public_key"] for k in keys][1:] == [old_key]
        assert keys[0]["handover"]["from"] == old_key and "retired_at" in keys[1]
        assert c.public_key() == keys[0]["public_key"] != old_key
        with c.run("rotated") as after:
            after.snapshot(frame, step="load", key="id")
        # Each run verifies against the key that sealed it, from the keys the server lists.
        for run in (c.load_run(before.id), after):
            result = run.verify()
            assert result.passed, result.failed
        # Pinned to the old key alone, the new run does not.
        assert not pp.verify_bundle(after.export(own_server.data_dir.parent / "a.zip"), old_key).passed

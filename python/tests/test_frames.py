"""Frame conversion and the chunked IPC stream, without a server."""

from __future__ import annotations

import datetime as dt
import decimal
import time

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import pipeproof as pp
from pipeproof.frames import batch_rows_for, ipc_stream, to_arrow


def sample() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["a", "b", None],
            "x": [1.0, np.nan, 3.5],
        }
    )


def test_row_numbers_are_dropped_and_other_indexes_are_kept_first():
    df = sample()
    assert to_arrow(df).column_names == ["id", "name", "x"]
    assert to_arrow(df.set_index("id")).column_names == ["id", "name", "x"]
    assert to_arrow(df.set_index(["id", "name"])).column_names == ["id", "name", "x"]
    # What filters, sorts and concatenations leave of the row numbers is not data: the
    # filtered frame is sent as polars would send the same rows.
    filtered = df[df["id"] != 2]
    assert list(filtered.index) == [0, 2]
    assert to_arrow(filtered).to_pylist() == pl.from_pandas(filtered).to_arrow().to_pylist()
    assert to_arrow(pd.concat([df, df])).column_names == ["id", "name", "x"]
    unnamed = df.copy()
    unnamed.index = pd.Index(["a", "b", "c"])
    table = to_arrow(unnamed)
    assert table.column_names == ["index", "id", "name", "x"]
    assert table.column("index").to_pylist() == ["a", "b", "c"]
    dates = df.copy()
    dates.index = pd.date_range("2026-01-01", periods=3)
    assert to_arrow(dates).column_names == ["index", "id", "name", "x"]
    numbered = df.copy()
    numbered.index = pd.Index([10, 11, 12], name="line")
    assert to_arrow(numbered).column("line").to_pylist() == [10, 11, 12]
    named_range = df.copy()
    named_range.index.name = "row"
    assert to_arrow(named_range).column_names == ["row", "id", "name", "x"]


def test_pandas_metadata_is_not_sent():
    assert to_arrow(sample().set_index("id")).schema.metadata is None


def test_mixed_object_column_is_refused_naming_the_column():
    df = sample()
    df["mixed"] = pd.Series([1, "two", 3.0], dtype=object)
    with pytest.raises(pp.ValidationError) as err:
        to_arrow(df)
    message = str(err.value)
    assert "'mixed'" in message and "mixed" in message and "astype" in message


def test_nested_object_column_is_refused_as_nested():
    df = sample()
    df["tags"] = pd.Series([["a"], ["b", "c"], []], dtype=object)
    with pytest.raises(pp.ValidationError, match="column 'tags' holds list values"):
        to_arrow(df)


def test_single_type_object_columns_are_accepted():
    df = pd.DataFrame(
        {
            "s": pd.Series(["a", None, "c"], dtype=object),
            "d": pd.Series([dt.date(2026, 1, 1), None, dt.date(2026, 1, 3)], dtype=object),
            "dec": pd.Series([decimal.Decimal("1.10"), None, decimal.Decimal("2.25")], dtype=object),
        }
    )
    table = to_arrow(df)
    assert table.schema.field("s").type in (pa.string(), pa.large_string())
    assert table.schema.field("d").type == pa.date32()
    assert pa.types.is_decimal(table.schema.field("dec").type)


def test_duplicate_column_names_are_refused():
    df = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(pp.ValidationError, match="duplicate column names"):
        to_arrow(df)


def test_polars_duckdb_pyarrow_and_capsules_convert():
    table = pa.table({"id": [1, 2, 3], "v": ["x", "y", "z"]})
    assert to_arrow(pl.from_arrow(table)).to_pylist() == table.to_pylist()
    assert to_arrow(pl.from_arrow(table).lazy()).to_pylist() == table.to_pylist()
    assert to_arrow(table.to_batches()[0]).to_pylist() == table.to_pylist()
    assert to_arrow(pa.RecordBatchReader.from_batches(table.schema, table.to_batches())).equals(table)
    rel = duckdb.sql("select * from (values (1, 'x'), (2, 'y'), (3, 'z')) t(id, v) order by id")
    assert to_arrow(rel).to_pylist() == table.to_pylist()

    class OnlyCapsule:
        def __init__(self, t: pa.Table) -> None:
            self.t = t

        def __arrow_c_stream__(self, requested_schema=None):
            return self.t.__arrow_c_stream__(requested_schema)

    assert to_arrow(OnlyCapsule(table)).equals(table)


def test_unknown_objects_are_a_type_error():
    with pytest.raises(TypeError, match="cannot snapshot a builtins.list"):
        to_arrow([1, 2, 3])


def test_ipc_stream_comes_in_pieces_and_can_be_replayed():
    n = 10_000
    table = pa.table(
        {
            "id": pa.array(np.arange(n)),
            "cat": pa.array(["a", "b"] * (n // 2)).dictionary_encode(),
        }
    )
    pieces = list(ipc_stream(table, batch_rows=1000))
    assert len(pieces) >= 10
    again = b"".join(ipc_stream(table, batch_rows=1000))
    assert b"".join(pieces) == again
    assert pa.ipc.open_stream(again).read_all().equals(table)


def test_ipc_stream_of_an_empty_table_has_the_schema():
    table = pa.table({"id": pa.array([], pa.int64())})
    data = b"".join(ipc_stream(table))
    back = pa.ipc.open_stream(data).read_all()
    assert back.schema == table.schema and back.num_rows == 0


def test_batch_rows_aim_at_a_few_megabytes():
    table = pa.table({"id": np.arange(1_000_000, dtype=np.int64)})
    rows = batch_rows_for(table, target_bytes=8 << 20)
    assert rows == (8 << 20) // 8


# Data Arrow would change on the way, or that would escape as a library error.


def refused(df, *fragments: str) -> str:
    with pytest.raises(pp.ValidationError) as err:
        to_arrow(df)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_polars_object_columns_are_refused_naming_the_column_and_the_fix():
    df = pl.DataFrame({"c": [decimal.Decimal("1.5"), "x"]}, schema={"c": pl.Object})
    refused(df, "column 'c'", "Object", "map_elements")
    refused(df.lazy(), "column 'c'", "Object")


def test_polars_int128_columns_are_refused_naming_the_column():
    df = pl.DataFrame({"c": [1, 2]}, schema={"c": pl.Int128})
    refused(df, "column 'c'", "Int128", "cast(pl.Int64)")


def test_pandas_dates_mixed_with_datetimes_are_refused_in_either_order():
    day, moment = dt.date(2024, 1, 1), dt.datetime(2024, 1, 2, 13, 45)
    for values in ([day, moment], [moment, day], [None, day, moment]):
        df = pd.DataFrame({"when": pd.Series(values, dtype=object)})
        refused(df, "column 'when'", "datetime.date and datetime.datetime", "pd.to_datetime")


def test_pandas_naive_and_aware_datetimes_are_refused():
    naive = dt.datetime(2024, 1, 1)
    aware = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    df = pd.DataFrame({"at": pd.Series([naive, aware], dtype=object)})
    refused(df, "column 'at'", "naive and time-zone-aware", "utc=True")
    # All aware, or all naive, is fine.
    assert to_arrow(pd.DataFrame({"at": pd.Series([aware, aware], dtype=object)})).num_rows == 2
    assert to_arrow(pd.DataFrame({"at": pd.Series([naive, naive], dtype=object)})).num_rows == 2


def test_pandas_nanoseconds_in_object_columns_are_not_cut_silently():
    stamps = pd.Series(
        [pd.Timestamp("2024-01-01 00:00:00.000000001"), dt.datetime(2024, 1, 1)], dtype=object
    )
    refused(pd.DataFrame({"t": stamps}), "column 't'", "nanoseconds", "pd.to_datetime")
    spans = pd.Series([dt.timedelta(days=1), pd.Timedelta(1, "ns")], dtype=object)
    refused(pd.DataFrame({"d": spans}), "column 'd'", "nanoseconds", "pd.to_timedelta")
    # The suggested conversions keep the nanoseconds.
    table = to_arrow(pd.DataFrame({"t": pd.to_datetime(stamps), "d": pd.to_timedelta(spans)}))
    assert table.column("t").type == pa.timestamp("ns")
    assert table.column("d").cast(pa.int64()).to_pylist() == [86_400 * 10**9, 1]
    # Whole microseconds in object columns convert as before.
    whole = pd.Series([pd.Timestamp("2024-01-01 00:00:00.000001")], dtype=object)
    assert to_arrow(pd.DataFrame({"t": whole})).num_rows == 1


def test_pandas_periods_are_refused_not_sent_as_ordinals():
    df = pd.DataFrame({"month": pd.period_range("2024-01", periods=3, freq="M")})
    refused(df, "column 'month'", "period", "astype(str)")
    as_objects = pd.DataFrame({"month": pd.Series(list(df.month), dtype=object)})
    refused(as_objects, "column 'month'", "period")


def test_values_arrow_cannot_take_are_validation_errors_naming_the_column():
    refused(
        pd.DataFrame({"big": pd.Series([2**70, 1], dtype=object)}),
        "column 'big'",
        "64 bits",
    )
    refused(
        pd.DataFrame({"sparse": pd.arrays.SparseArray([0, 0, 1, 2])}),
        "column 'sparse'",
        "sparse.to_dense()",
    )
    for special in ("Infinity", "-Infinity", "NaN"):
        values = pd.Series([decimal.Decimal(special), decimal.Decimal("1")], dtype=object)
        refused(pd.DataFrame({"amount": values}), "column 'amount'", special)


def test_other_conversion_failures_are_validation_errors_naming_the_column():
    # An int beyond 2**53 beside a float: Arrow refuses to round it.
    df = pd.DataFrame({"id": [1, 2], "x": pd.Series([2**53 + 1, 0.5], dtype=object)})
    with pytest.raises(pp.ValidationError, match="column 'x'") as err:
        to_arrow(df)
    assert isinstance(err.value.__cause__, pa.ArrowInvalid)


def test_an_index_named_like_a_column_is_refused():
    base = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    refused(base.set_axis(pd.Index([7, 8, 9], name="a"), axis=0), "['a']", "rename_axis")
    unnamed = pd.MultiIndex.from_tuples([(1, "p"), (2, "q"), (3, "r")])
    refused(base.rename(columns={"a": "level_0"}).set_axis(unnamed, axis=0), "['level_0']")


def test_a_series_or_array_is_refused_asking_for_a_table():
    for column in (
        pd.Series([1, 2, 3], name="a"),
        pl.Series("a", [1, 2, 3]),
        pa.array([1, 2, 3]),
        pa.chunked_array([[1, 2], [3]]),
    ):
        with pytest.raises(pp.ValidationError, match="single column, not a table") as err:
            to_arrow(column)
        assert "DataFrame or Table" in str(err.value)
        assert isinstance(err.value, TypeError)


def test_unexpected_library_errors_become_validation_errors_keeping_the_message():
    class Broken:
        def __arrow_c_stream__(self, requested_schema=None):
            raise RuntimeError("the source went away")

    with pytest.raises(pp.ValidationError, match="RuntimeError: the source went away") as err:
        to_arrow(Broken())
    assert isinstance(err.value.__cause__, RuntimeError)


def test_a_frame_without_columns_keeps_its_rows():
    assert to_arrow(pd.DataFrame(index=range(3))).num_rows == 3
    assert to_arrow(pd.DataFrame({"a": [1, 2, 3]})[[]]).num_rows == 3
    assert to_arrow(pd.DataFrame()).num_rows == 0
    table = to_arrow(pd.DataFrame(index=range(3)))
    back = pa.ipc.open_stream(b"".join(ipc_stream(table))).read_all()
    assert back.num_rows == 3 and back.num_columns == 0


def test_name_checks_take_linear_time():
    n = 40_000
    names = [f"c{i}" for i in range(n)]
    schema = pa.schema([(name, pa.int8()) for name in names])
    table = pa.Table.from_batches([], schema=schema)
    started = time.perf_counter()
    assert to_arrow(table).num_columns == n
    # The same frame from pandas, with one name repeated at the end: refused before
    # anything is converted.
    df = pd.DataFrame(np.zeros((1, n), dtype=np.int8), columns=names[:-1] + [names[0]])
    with pytest.raises(pp.ValidationError, match=r"duplicate column names \['c0'\]"):
        to_arrow(df)
    # Counting each name across all the names took over 30 s for these two.
    assert time.perf_counter() - started < 5


def test_the_mixed_type_message_names_every_type_nat_included():
    df = pd.DataFrame({"x": pd.Series([1.0, pd.NaT, None], dtype=object)})
    refused(df, "column 'x'", "float, NaT")

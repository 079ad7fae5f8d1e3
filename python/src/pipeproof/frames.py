"""Turning data frames into Arrow, and Arrow into an IPC stream sent in chunks.

Accepted inputs: pandas DataFrames, polars DataFrames and LazyFrames, pyarrow Tables,
RecordBatches and RecordBatchReaders, DuckDB relations, and any object implementing the
Arrow PyCapsule stream interface (``__arrow_c_stream__``). pandas, polars and DuckDB are
optional: they are only imported when a frame of theirs is passed.

Everything becomes a :class:`pyarrow.Table` first. A table can be streamed again, so a
step post that is retried after a lost connection sends the very same bytes; one-shot
streams (readers, capsules) are read into a table once for that reason.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sys
from collections import Counter
from typing import Any, Iterable, Iterator, List, Optional

import pyarrow as pa

from .errors import PipeproofError, UnsupportedDataError, ValidationError

__all__ = ["to_arrow", "ipc_stream", "ARROW_STREAM_MEDIA_TYPE"]

#: The ``Content-Type`` of an Arrow IPC stream.
ARROW_STREAM_MEDIA_TYPE = "application/vnd.apache.arrow.stream"

# pandas' ``infer_dtype`` results that mean one Python type per object column, which Arrow
# converts without guessing. Anything else ("mixed", "mixed-integer", ...) is refused.
_PANDAS_OBJECT_KINDS = {
    "empty",
    "string",
    "bytes",
    "boolean",
    "integer",
    "floating",
    "mixed-integer-float",
    "decimal",
    "date",
    "datetime",
    "datetime64",
    "time",
    "timedelta",
    "timedelta64",
}


def to_arrow(data: Any) -> pa.Table:
    """Converts a supported frame to a :class:`pyarrow.Table`.

    Raises:
        ValidationError: the frame holds something the fingerprint cannot encode, or that
            Arrow would change on the way (a pandas object column of mixed types, a polars
            Object column, duplicate column names, ...), naming the column and saying how
            to fix it; or the conversion failed (the library's error is chained).
        UnsupportedDataError: the object is not a table this client knows (also a
            :class:`TypeError`).
    """
    return convert(data)


def convert(data: Any, step: Optional[str] = None) -> pa.Table:
    """:func:`to_arrow`, naming ``step`` when the conversion fails unexpectedly."""
    try:
        table = _convert(data)
        _check_names(table.schema)
    except PipeproofError:
        raise
    except Exception as err:
        what = f"the data of step {step!r}" if step is not None else "the data"
        raise ValidationError(
            f"cannot convert {what} ({_type_name(data)}) to Arrow: "
            f"{type(err).__name__}: {err}"
        ) from err
    # Library metadata (pandas' index description, polars' flags) is not data: drop it so
    # that the same rows give the same schema whatever library produced them.
    if table.schema.metadata:
        table = table.replace_schema_metadata(None)
    return table


def _convert(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    _refuse_single_columns(data)
    if _is_instance(data, "pandas", "DataFrame"):
        return _from_pandas(data)
    if _is_instance(data, "polars", "DataFrame"):
        return _from_polars(data)
    if _is_instance(data, "polars", "LazyFrame"):
        return _from_polars(data.collect())
    if _is_duckdb_relation(data):
        return _from_duckdb(data)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data).read_all()
    if hasattr(data, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(data)])
    raise UnsupportedDataError(
        f"cannot snapshot a {_type_name(data)}: pass a pandas or polars DataFrame, a "
        "pyarrow Table or RecordBatch, a DuckDB relation, or an object implementing "
        "__arrow_c_stream__"
    )


def _refuse_single_columns(data: Any) -> None:
    """A Series or an Arrow array is one column without a name, not a table."""
    if _is_instance(data, "pandas", "Series"):
        hint = "series.to_frame()"
    elif _is_instance(data, "polars", "Series"):
        hint = "series.to_frame()"
    elif isinstance(data, (pa.Array, pa.ChunkedArray)):
        hint = 'pa.table({"name": array})'
    else:
        return
    raise UnsupportedDataError(
        f"cannot snapshot a {_type_name(data)}: it is a single column, not a table; pass a "
        f"DataFrame or Table instead, e.g. {hint}"
    )


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def ipc_stream(table: pa.Table, batch_rows: int = 65536) -> Iterator[bytes]:
    """Yields an Arrow IPC stream of ``table`` in pieces of about ``batch_rows`` rows.

    The stream is produced batch by batch, so at most one encoded batch is held in memory
    beside the table. Calling it again yields the same stream again.
    """
    sink = _Chunks()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
            piece = sink.take()
            if piece:
                yield piece
        # The schema alone (an empty table) is written on the first batch or on close.
    tail = sink.take()
    if tail:
        yield tail


class _Chunks:
    """A write-only file object that hands out what was written since the last take."""

    closed = False

    def __init__(self) -> None:
        self._parts: List[bytes] = []

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self._parts.append(piece)
        return len(piece)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        if not self._parts:
            return b""
        piece = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        return piece


def _duplicates(names: Iterable[str]) -> List[str]:
    """The names that occur more than once, sorted (in linear time)."""
    return sorted(n for n, count in Counter(names).items() if count > 1)


def _check_names(schema: pa.Schema) -> None:
    dupes = _duplicates(schema.names)
    if dupes:
        raise ValidationError(
            f"the data has duplicate column names {dupes}: rename them so that each "
            "column has its own name"
        )


def _is_instance(obj: Any, module: str, name: str) -> bool:
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls is not None and isinstance(obj, cls)


def _is_duckdb_relation(obj: Any) -> bool:
    return type(obj).__module__.startswith("duckdb") and hasattr(obj, "fetch_arrow_reader")


def _from_duckdb(rel: Any) -> pa.Table:
    if hasattr(rel, "to_arrow_table"):
        return rel.to_arrow_table()
    result = rel.arrow()
    if isinstance(result, pa.RecordBatchReader):
        return result.read_all()
    return result


def _from_polars(df: Any) -> pa.Table:
    import polars as pl

    wide_ints = tuple(getattr(pl, name) for name in ("Int128", "UInt128") if hasattr(pl, name))
    for name, dtype in df.schema.items():
        if dtype == pl.Object:
            raise ValidationError(
                f"column {name!r} is a polars Object column: Arrow would get the objects' "
                "memory addresses, not their values, so the same data would fingerprint "
                "differently every time; convert it to a concrete type first, e.g. "
                f"df.with_columns(pl.col({name!r}).map_elements(str, return_dtype=pl.String)), "
                "or build the frame with a concrete dtype (pl.String, pl.Decimal, ...)"
            )
        if wide_ints and dtype in wide_ints:
            raise ValidationError(
                f"column {name!r} is a polars {dtype} column, which Arrow cannot take; cast "
                f"it first, e.g. df.with_columns(pl.col({name!r}).cast(pl.Int64)) when the "
                "values fit in 64 bits, else .cast(pl.String)"
            )
    return df.to_arrow()


def _from_pandas(df: Any) -> pa.Table:
    import pandas as pd

    columns = [str(c) for c in df.columns]
    dupes = _duplicates(columns)
    if dupes:
        raise ValidationError(
            f"the DataFrame has duplicate column names {dupes}: rename them "
            "(df.columns = [...]) so that each column has its own name"
        )
    for position, (label, dtype) in enumerate(zip(columns, df.dtypes)):
        if isinstance(dtype, pd.SparseDtype):
            raise ValidationError(
                f"column {label!r} is a pandas sparse column, which Arrow cannot take; "
                f"make it dense first: df[{label!r}] = df[{label!r}].sparse.to_dense()"
            )
        if dtype == object:
            _check_object_values(df.iloc[:, position], f"column {label!r}", f"df[{label!r}]")
    index = df.index
    # An unnamed integer index is the row numbers pandas gives a frame and keeps through
    # filters, sorts and concatenations (df[mask] has 0, 2, 5...): not data, so it is not
    # sent, as polars and DuckDB frames have none. A named index, or one of other values
    # (dates, strings), or of several levels, is data and goes first, as reset_index() puts it.
    keep_index = not (
        index.nlevels == 1
        and index.name is None
        and (isinstance(index, pd.RangeIndex) or pd.api.types.is_integer_dtype(index.dtype))
    )
    if keep_index:
        for level in range(index.nlevels):
            values = index.get_level_values(level)
            if values.dtype == object:
                _check_object_values(
                    values, f"index level {level}", f"df.index.get_level_values({level})"
                )
    try:
        table = pa.Table.from_pandas(df, preserve_index=keep_index)
    except Exception as err:
        culprit = _failing_column(df, columns)
        where = f"column {culprit!r}" if culprit is not None else "the DataFrame"
        raise ValidationError(
            f"cannot convert {where} to Arrow: {type(err).__name__}: {err}; convert it to "
            "a type Arrow takes first (numbers, strings, dates and times, decimals)"
        ) from err
    if keep_index:
        names = _index_names(table.column_names, index, columns)
        dupes = _duplicates(names)
        if dupes:
            raise ValidationError(
                f"the DataFrame's index would be sent as column(s) {dupes}, which are also "
                "the names of columns; rename the index (df.rename_axis([...])) or drop it "
                "(df.reset_index(drop=True))"
            )
        table = table.rename_columns(names)
        # The index first, as DataFrame.reset_index() would put it.
        taken = set(columns)
        index_columns = [n for n in names if n not in taken]
        table = table.select(index_columns + [n for n in names if n in taken])
    elif table.num_columns == 0 and len(df) > 0:
        # pyarrow makes no rows of a frame with no columns; a table keeps its row count.
        table = pa.table({"_": pa.nulls(len(df))}).drop_columns(["_"])
    for field in table.schema:
        if isinstance(field.type, pa.ExtensionType) and field.type.extension_name.startswith(
            "pandas."
        ):
            kind = field.type.extension_name[len("pandas.") :]
            raise ValidationError(
                f"column {field.name!r} is a pandas {kind} column, which Arrow would send as "
                f"{field.type.storage_type} values that mean nothing without pandas; convert "
                f"it first, e.g. df[{field.name!r}] = df[{field.name!r}].astype(str)"
                + (" or .dt.to_timestamp()" if kind == "period" else "")
            )
    return table


def _check_object_values(values: Any, what: str, expr: str) -> None:
    """Refuses an object column Arrow would not take as it is, or would change on the way."""
    from pandas.api.types import infer_dtype

    kind = infer_dtype(values, skipna=True)
    if kind not in _PANDAS_OBJECT_KINDS:
        types = _sample_types(values)
        if types in ("list", "dict", "tuple", "set", "ndarray"):
            raise ValidationError(
                f"{what} holds {types} values: nested values are not supported (fingerprint "
                f"v1 encodes flat columns); flatten it or store it as text, e.g. "
                f"{expr}.map(json.dumps)"
            )
        if kind in ("period", "interval"):
            raise ValidationError(
                f"{what} holds pandas {kind} values, which have no Arrow type; convert them "
                f"first, e.g. {expr}.astype(str)"
            )
        raise ValidationError(
            f"{what} is an object column of mixed types (pandas infers {kind!r}: {types}); "
            f"convert it to one type first, e.g. {expr}.astype(str)"
        )
    if kind not in ("date", "datetime", "datetime64", "timedelta", "timedelta64", "decimal", "integer"):
        return
    present = [v for v in values if not _is_missing(v)]
    if kind == "date" and any(isinstance(v, dt.datetime) for v in present):
        raise ValidationError(
            f"{what} mixes datetime.date and datetime.datetime values, which Arrow would "
            "send as dates without their times (or refuse); convert it to one type first, "
            f"e.g. pd.to_datetime({expr})"
        )
    if kind in ("datetime", "datetime64"):
        aware = {isinstance(v, dt.datetime) and v.tzinfo is not None for v in present}
        if len(aware) > 1:
            raise ValidationError(
                f"{what} mixes naive and time-zone-aware datetimes, which Arrow would send "
                "as naive times shifted to UTC; make them all aware or all naive first, e.g. "
                f"pd.to_datetime({expr}, utc=True)"
            )
        if any(getattr(v, "nanosecond", 0) for v in present):
            raise ValidationError(
                f"{what} holds pandas Timestamps with nanoseconds, which an object column "
                "sends as microseconds; convert it to datetime64[ns] first, e.g. "
                f"pd.to_datetime({expr})"
            )
    if kind in ("timedelta", "timedelta64"):
        if any(getattr(v, "nanoseconds", 0) for v in present):
            raise ValidationError(
                f"{what} holds pandas Timedeltas with nanoseconds, which an object column "
                "sends as microseconds; convert it to timedelta64[ns] first, e.g. "
                f"pd.to_timedelta({expr})"
            )
    if kind == "decimal":
        bad = next((v for v in present if not v.is_finite()), None)
        if bad is not None:
            raise ValidationError(
                f"{what} holds Decimal({str(bad)!r}), which an Arrow decimal cannot hold "
                "(NaN would become null); replace such values (with None, say) or convert "
                f"the column to float first, e.g. {expr}.astype(float)"
            )
    if kind == "integer":
        big = next((v for v in present if not _INT64_MIN <= v <= _INT64_MAX), None)
        if big is not None:
            raise ValidationError(
                f"{what} holds the integer {big}, which does not fit in 64 bits; convert "
                f"the column to decimals or text first, e.g. {expr}.map(decimal.Decimal) or "
                f"{expr}.astype(str)"
            )


_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _is_missing(value: Any) -> bool:
    """None, a float NaN, pandas' NA and NaT: what ``infer_dtype(skipna=True)`` skips."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    if isinstance(value, decimal.Decimal):
        return False
    name = type(value).__name__
    return name in ("NAType", "NaTType")


def _failing_column(df: Any, columns: List[str]) -> Optional[str]:
    """The first column Arrow cannot convert on its own, to name it in the error."""
    for position, label in enumerate(columns):
        try:
            pa.array(df.iloc[:, position], from_pandas=True)
        except Exception:
            return label
    return None


def _index_names(names: List[str], index: Any, columns: List[str]) -> List[str]:
    """Names the index columns as ``DataFrame.reset_index()`` would."""
    taken = set(columns)
    out = list(names)
    for level, name in enumerate(index.names):
        internal = f"__index_level_{level}__"
        if internal not in out:
            continue
        if name is not None:
            wanted = str(name)
        elif index.nlevels == 1:
            wanted = "index" if "index" not in taken else "level_0"
        else:
            wanted = f"level_{level}"
        out[out.index(internal)] = wanted
        taken.add(wanted)
    return out


def _sample_types(column: Any, limit: int = 4) -> str:
    seen: List[str] = []
    for value in column:
        if value is None or (isinstance(value, float) and value != value):
            continue
        if type(value).__name__ == "NAType":
            continue
        name = "NaT" if type(value).__name__ == "NaTType" else type(value).__name__
        if name not in seen:
            seen.append(name)
            if len(seen) == limit:
                break
    return ", ".join(seen) if seen else "no values"


def batch_rows_for(table: pa.Table, target_bytes: int = 8 << 20) -> int:
    """A batch size that makes IPC pieces of about ``target_bytes`` (at least 1024 rows)."""
    if table.num_rows == 0:
        return 1024
    per_row = max(1, table.nbytes // max(1, table.num_rows))
    return max(1024, int(target_bytes // per_row))



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

import sys
from collections import Counter
from typing import Any, Iterable, Iterator, List

import pyarrow as pa

from .errors import ValidationError

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
        ValidationError: the frame holds something the fingerprint cannot encode (a
            pandas object column of mixed types, duplicate column names), naming the
            column and saying how to fix it.
        TypeError: the object is not a frame this client knows.
    """
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif isinstance(data, pa.RecordBatchReader):
        table = data.read_all()
    elif _is_instance(data, "pandas", "DataFrame"):
        table = _from_pandas(data)
    elif _is_instance(data, "polars", "DataFrame"):
        table = _from_polars(data)
    elif _is_instance(data, "polars", "LazyFrame"):
        table = _from_polars(data.collect())
    elif _is_duckdb_relation(data):
        table = _from_duckdb(data)
    elif hasattr(data, "__arrow_c_stream__"):
        table = pa.RecordBatchReader.from_stream(data).read_all()
    elif hasattr(data, "__arrow_c_array__"):
        table = pa.Table.from_batches([pa.record_batch(data)])
    else:
        raise TypeError(
            f"cannot snapshot a {type(data).__module__}.{type(data).__qualname__}: pass a "
            "pandas or polars DataFrame, a pyarrow Table or RecordBatch, a DuckDB relation, "
            "or an object implementing __arrow_c_stream__"
        )
    _check_names(table.schema)
    # Library metadata (pandas' index description, polars' flags) is not data: drop it so
    # that the same rows give the same schema whatever library produced them.
    if table.schema.metadata:
        table = table.replace_schema_metadata(None)
    return table


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
    from pandas.api.types import infer_dtype

    columns = [str(c) for c in df.columns]
    dupes = _duplicates(columns)
    if dupes:
        raise ValidationError(
            f"the DataFrame has duplicate column names {dupes}: rename them "
            "(df.columns = [...]) so that each column has its own name"
        )
    for name in df.columns:
        column = df[name]
        if column.dtype == object:
            kind = infer_dtype(column, skipna=True)
            if kind not in _PANDAS_OBJECT_KINDS:
                types = _sample_types(column)
                if types in ("list", "dict", "tuple", "set", "ndarray"):
                    raise ValidationError(
                        f"column {str(name)!r} holds {types} values: nested values are not "
                        "supported (fingerprint v1 encodes flat columns); flatten the column "
                        f"or store it as text, e.g. df[{str(name)!r}].map(json.dumps)"
                    )
                raise ValidationError(
                    f"column {str(name)!r} is an object column of mixed types "
                    f"(pandas infers {kind!r}: {types}); convert it to one "
                    f"type first, e.g. df[{str(name)!r}] = df[{str(name)!r}].astype(str)"
                )
    index = df.index
    keep_index = not (
        isinstance(index, pd.RangeIndex) and all(n is None for n in index.names)
    )
    if keep_index:
        index_kinds = [
            (level, infer_dtype(index.get_level_values(level), skipna=True))
            for level in range(index.nlevels)
            if index.get_level_values(level).dtype == object
        ]
        for level, kind in index_kinds:
            if kind not in _PANDAS_OBJECT_KINDS:
                raise ValidationError(
                    f"index level {level} is an object index of mixed types (pandas infers "
                    f"{kind!r}); convert it to one type first"
                )
    try:
        table = pa.Table.from_pandas(df, preserve_index=keep_index)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        raise ValidationError(f"cannot convert the DataFrame to Arrow: {err}") from err
    if keep_index:
        names = _index_names(table.column_names, index, columns)
        table = table.rename_columns(names)
        # The index first, as DataFrame.reset_index() would put it.
        taken = set(columns)
        index_columns = [n for n in names if n not in taken]
        table = table.select(index_columns + [n for n in names if n in taken])
    return table


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
    for value in column.dropna():
        name = type(value).__name__
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



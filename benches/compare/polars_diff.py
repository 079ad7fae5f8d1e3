"""Keyed diff of two Parquet files as a polars full join.

Null-safe (`ne_missing`) and NaN-aware (NaN equals NaN) per column; prints the counts as one
JSON object: added, removed, changed rows and changed cells per column.

Usage: python3 polars_diff.py BEFORE.parquet AFTER.parquet --key id
"""

import argparse
import json

import polars as pl


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--key", required=True)
    args = p.parse_args()
    key = args.key
    # Read through pyarrow: polars 1.33's own Parquet reader rejects files written by
    # parquet-rs 60 ("Invalid thrift: bad data"), which pyarrow, DuckDB and pipeproof read.
    b = pl.read_parquet(args.before, use_pyarrow=True).lazy()
    a = pl.read_parquet(args.after, use_pyarrow=True).lazy()
    bs, as_ = b.collect_schema(), a.collect_schema()
    if key not in bs or key not in as_:
        raise SystemExit(f"key column {key!r} is missing from one of the files")
    columns = sorted(c for c in bs.names() if c != key and c in as_)
    j = b.join(a, on=key, how="full", suffix="_after", coalesce=False)
    both = pl.col(key).is_not_null() & pl.col(key + "_after").is_not_null()

    def differs(c: str) -> pl.Expr:
        x, y = pl.col(c), pl.col(c + "_after")
        d = x.ne_missing(y)
        if bs[c].is_float():
            d = d & ~(x.is_nan() & y.is_nan()).fill_null(False)
        return d

    flags = [differs(c).alias("d_" + c) for c in columns]
    any_changed = pl.any_horizontal([pl.col("d_" + c) for c in columns])
    out = (
        j.select(
            pl.col(key).is_null().alias("only_after"),
            pl.col(key + "_after").is_null().alias("only_before"),
            both.alias("both"),
            *flags,
        )
        .select(
            pl.col("only_after").sum().alias("added"),
            pl.col("only_before").sum().alias("removed"),
            (pl.col("both") & any_changed).sum().alias("changed"),
            *[(pl.col("both") & pl.col("d_" + c)).sum().alias(c) for c in columns],
        )
        .collect()
        .row(0, named=True)
    )
    print(json.dumps({
        "added": out["added"],
        "removed": out["removed"],
        "changed": out["changed"],
        "columns": {c: out[c] for c in columns},
    }))


if __name__ == "__main__":
    main()

"""Keyed diff of two Parquet files as one DuckDB FULL OUTER JOIN query.

Null-safe (`IS DISTINCT FROM`) and NaN-aware (NaN equals NaN) per column; prints the counts
as one JSON object: added, removed, changed rows and changed cells per column.

Usage: python3 duckdb_diff.py BEFORE.parquet AFTER.parquet --key id
"""

import argparse
import json

import duckdb


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--key", required=True)
    args = p.parse_args()
    con = duckdb.connect()
    lit = lambda s: "'" + s.replace("'", "''") + "'"
    describe = lambda path: con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({lit(path)})").fetchall()
    types = {r[0]: r[1] for r in describe(args.before)}
    after_cols = {r[0] for r in describe(args.after)}
    if args.key not in types or args.key not in after_cols:
        raise SystemExit(f"key column {args.key!r} is missing from one of the files")
    columns = sorted(c for c in types if c != args.key and c in after_cols)
    k = quote(args.key)

    def distinct(c: str) -> str:
        b, a = f"b.{quote(c)}", f"a.{quote(c)}"
        if types[c] in ("DOUBLE", "FLOAT", "REAL"):
            return f"(CASE WHEN isnan({b}) AND isnan({a}) THEN false ELSE {b} IS DISTINCT FROM {a} END)"
        return f"({b} IS DISTINCT FROM {a})"

    flags = ",\n".join(f"{distinct(c)} AS {quote('d_' + c)}" for c in columns)
    any_changed = " OR ".join(quote("d_" + c) for c in columns) or "false"
    per_column = ",\n".join(
        f"count(*) FILTER (WHERE both_sides AND {quote('d_' + c)}) AS {quote(c)}" for c in columns
    )
    sql = f"""
    WITH j AS (
      SELECT b.{k} IS NULL AS only_after, a.{k} IS NULL AS only_before,
             b.{k} IS NOT NULL AND a.{k} IS NOT NULL AS both_sides,
             {flags}
      FROM read_parquet({lit(args.before)}) b
      FULL OUTER JOIN read_parquet({lit(args.after)}) a ON b.{k} = a.{k}
    )
    SELECT count(*) FILTER (WHERE only_after) AS added,
           count(*) FILTER (WHERE only_before) AS removed,
           count(*) FILTER (WHERE both_sides AND ({any_changed})) AS changed,
           {per_column}
    FROM j
    """
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    row = dict(zip(names, cur.fetchone()))
    print(json.dumps({
        "added": row["added"],
        "removed": row["removed"],
        "changed": row["changed"],
        "columns": {c: row[c] for c in columns},
    }))


if __name__ == "__main__":
    main()

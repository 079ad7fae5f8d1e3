"""Keyed diff of two Parquet files with datacompy (PandasCompare or PolarsCompare).

Exact comparison (abs_tol = rel_tol = 0; datacompy treats null = null and NaN = NaN as
equal); prints the counts as one JSON object: added, removed, changed rows and changed
cells per column.

Usage: python3 datacompy_diff.py {pandas,polars} BEFORE.parquet AFTER.parquet --key id
"""

import argparse
import json

import datacompy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("engine", choices=["pandas", "polars"])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--key", required=True)
    args = p.parse_args()
    if args.engine == "pandas":
        import pandas as pd

        df1, df2 = pd.read_parquet(args.before), pd.read_parquet(args.after)
        compare = datacompy.PandasCompare(df1, df2, join_columns=[args.key])
    else:
        import polars as pl

        # Through pyarrow: see polars_diff.py.
        df1 = pl.read_parquet(args.before, use_pyarrow=True)
        df2 = pl.read_parquet(args.after, use_pyarrow=True)
        compare = datacompy.PolarsCompare(df1, df2, join_columns=[args.key])
    columns = {
        s["column"]: int(s["unequal_cnt"])
        for s in compare.column_stats
        if s["column"] != args.key
    }
    changed = len(compare.intersect_rows) - int(compare.count_matching_rows())
    print(json.dumps({
        "added": len(compare.df2_unq_rows),
        "removed": len(compare.df1_unq_rows),
        "changed": changed,
        "columns": dict(sorted(columns.items())),
    }))


if __name__ == "__main__":
    main()

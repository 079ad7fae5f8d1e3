#!/usr/bin/env python3
"""A daily positions job, recorded step by step with pipeproof.

The job is typical of a bank's end-of-day batch: load the day's trade messages, drop
re-sent duplicates, repair currency codes, join the book reference table and FX rates,
and aggregate positions per desk and currency. Every step's output goes to the pipeproof
server, which records what each step did to the data.

The data is generated (deterministically, from ``--seed`` and the business date), with
the defects real feeds have: re-sent messages with a newer version, currency codes in
lower case, padded, or in legacy spellings.

    export PIPEPROOF_URL=http://127.0.0.1:8080 PIPEPROOF_TOKEN=...
    python examples/daily_positions.py [--days 3] [--rows 20000] [--date 2026-11-24]

Needs pandas and the pipeproof package (``pip install './python[pandas]'``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

import numpy as np
import pandas as pd

try:
    import pipeproof as pp
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python", "src"))
    import pipeproof as pp

BOOKS = pd.DataFrame(
    {
        "book": [f"BK{i:03d}" for i in range(24)],
        "desk": [["rates", "fx", "credit", "equities"][i % 4] for i in range(24)],
        "legal_entity": [["PP-LDN", "PP-FRA", "PP-NYC"][i % 3] for i in range(24)],
    }
)

#: Units of each currency per EUR, on the business date.
FX_TO_EUR = {"EUR": 1.0, "USD": 1.08, "GBP": 0.85, "JPY": 162.3, "CHF": 0.96}

#: Spellings found in the feed, and what they mean.
LEGACY_CCY = {"UKP": "GBP", "STG": "GBP", "YEN": "JPY", "SFR": "CHF"}


def load(date: dt.date, rows: int, seed: int) -> pd.DataFrame:
    """The day's trade messages as they arrive: some trades are sent twice."""
    rng = np.random.default_rng([seed, date.toordinal()])
    ccy_pool = ["EUR", "USD", "GBP", "JPY", "CHF", "usd", " EUR", "Gbp", "UKP", "YEN", "SFR"]
    weights = np.array([30, 25, 12, 6, 5, 6, 5, 4, 3, 2, 2], dtype=float)
    trades = pd.DataFrame(
        {
            "trade_id": np.arange(100_000, 100_000 + rows, dtype=np.int64),
            "version": np.ones(rows, dtype=np.int64),
            "book": rng.choice(BOOKS.book.to_numpy(), rows),
            "counterparty": [f"CP{n:05d}" for n in rng.integers(0, 4000, rows)],
            "ccy": rng.choice(ccy_pool, rows, p=weights / weights.sum()),
            "notional": rng.lognormal(13, 1.2, rows).round(2)
            * rng.choice([-1, 1], rows),
            "trade_time": pd.Timestamp(date, tz="UTC")
            + pd.to_timedelta(rng.integers(7 * 3600, 19 * 3600, rows), unit="s"),
        }
    )
    # Re-sent messages: about 2% of trades arrive again, with a newer version that
    # sometimes amends the notional.
    resent = trades.sample(frac=0.02, random_state=int(rng.integers(1 << 31))).copy()
    resent["version"] = 2
    amend = rng.random(len(resent)) < 0.5
    resent.loc[amend, "notional"] = (resent.loc[amend, "notional"] * 1.1).round(2)
    feed = pd.concat([trades, resent]).sample(frac=1.0, random_state=seed)
    return feed.reset_index(drop=True)


def deduplicate(feed: pd.DataFrame) -> pd.DataFrame:
    """Keeps the latest version of each trade."""
    latest = feed.sort_values(["trade_id", "version"]).drop_duplicates("trade_id", keep="last")
    return latest.reset_index(drop=True)


def fix_currencies(trades: pd.DataFrame) -> pd.DataFrame:
    """Trims and upper-cases currency codes and maps legacy spellings to ISO 4217."""
    out = trades.copy()
    ccy = out["ccy"].str.strip().str.upper()
    out["ccy"] = ccy.replace(LEGACY_CCY)
    unknown = sorted(set(out["ccy"]) - set(FX_TO_EUR))
    if unknown:
        raise ValueError(f"unknown currencies after repair: {unknown}")
    return out


def enrich(trades: pd.DataFrame) -> pd.DataFrame:
    """Joins the book reference table and converts notionals to EUR."""
    out = trades.merge(BOOKS, on="book", how="left", validate="many_to_one")
    missing = out["desk"].isna()
    if missing.any():
        raise ValueError(f"{int(missing.sum())} trades book into unknown books")
    rates = pd.Series(FX_TO_EUR, name="fx_per_eur")
    out = out.merge(rates, left_on="ccy", right_index=True, how="left")
    out["notional_eur"] = (out["notional"] / out["fx_per_eur"]).round(2)
    return out.drop(columns="fx_per_eur")


def aggregate(trades: pd.DataFrame) -> pd.DataFrame:
    """Positions per legal entity, desk and currency."""
    return (
        trades.groupby(["legal_entity", "desk", "ccy"], as_index=False, observed=True)
        .agg(
            trades=("trade_id", "count"),
            notional=("notional", "sum"),
            notional_eur=("notional_eur", "sum"),
        )
        .round({"notional": 2, "notional_eur": 2})
    )


def run_day(client: pp.Client, date: dt.date, rows: int, seed: int) -> pp.Run:
    """Runs the job for one business date, recording each step."""
    with client.run(
        "daily_positions",
        labels={"env": os.environ.get("PIPELINE_ENV", "demo"), "desk_set": "global"},
        code_version="daily_positions.py@1.3.0",
        params={"business_date": date.isoformat(), "rows": rows, "seed": seed},
    ) as run:
        feed = load(date, rows, seed)
        run.snapshot(feed, step="load", params={"source": "trade-feed"})

        trades = deduplicate(feed)
        run.snapshot(trades, step="deduplicate", params={"keep": "latest version"})

        trades = fix_currencies(trades)
        run.snapshot(trades, step="fix_currencies", key="trade_id")

        trades = enrich(trades)
        run.snapshot(trades, step="enrich", key="trade_id")

        positions = aggregate(trades)
        # A new grain: (legal_entity, desk, ccy) is not a key of the trades before, so
        # this step is compared as whole rows.
        run.snapshot(positions, step="aggregate")
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 24))
    parser.add_argument("--days", type=int, default=1, help="business days to run, from --date")
    parser.add_argument("--rows", type=int, default=20_000, help="trades per day")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    client = pp.Client()
    for day in range(args.days):
        date = args.date + dt.timedelta(days=day)
        run = run_day(client, date, args.rows, args.seed)
        print(f"{date}: run {run.id} {run.status}")
        for step in run.steps:
            print(f"  {step!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

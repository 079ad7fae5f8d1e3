"""Client-side overhead of ``run.snapshot`` for a 1M-row pandas frame.

Measures what the client itself costs: converting the frame to Arrow, producing the IPC
stream and sending it over loopback HTTP. The receiving end is a sink in another process
that reads the chunked body, discards it and answers at once, so no server work is in the
number. With ``--url``/``--token`` (or PIPEPROOF_URL / PIPEPROOF_TOKEN) it also times the
same snapshot against a real server, end to end.

    python python/bench/snapshot_overhead.py [--rows 1000000] [--repeat 5] [--url URL]

The frame is the reference workload's shape: 12 columns of ints, floats with NaN and
nulls, timestamps, categorical and free-text strings, booleans.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import time
from typing import Callable, List

import numpy as np
import pandas as pd

import pipeproof as pp
from pipeproof.frames import batch_rows_for, ipc_stream, to_arrow


def workload(rows: int, seed: int = 42) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.normal(100.0, 30.0, rows)
    amount[rng.random(rows) < 0.01] = np.nan
    fee = pd.array(rng.random(rows).round(4), dtype="Float64")
    fee[rng.random(rows) < 0.02] = pd.NA
    words = np.array(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"])
    memo = (
        pd.Series(words[rng.integers(0, len(words), rows)])
        + " "
        + pd.Series(rng.integers(0, 100_000, rows)).astype(str)
    )
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "account": rng.integers(0, 50_000, rows, dtype=np.int32),
            "amount": amount,
            "fee": fee,
            "qty": rng.integers(-1000, 1000, rows, dtype=np.int64),
            "at": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 86_400 * 365, rows), unit="s"),
            "booked": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 86_400 * 365, rows), unit="s"),
            "ccy": pd.Categorical(rng.choice(["EUR", "USD", "GBP", "JPY", "CHF"], rows)),
            "desk": pd.Categorical(rng.choice([f"desk-{i}" for i in range(40)], rows)),
            "memo": memo,
            "flag": rng.random(rows) > 0.5,
            "score": rng.random(rows).astype(np.float32),
        }
    )


FAKE_STEP = {
    "record": {
        "spec": "pipeproof-record-v1",
        "run_id": "bench",
        "pipeline": "bench",
        "index": 0,
        "step": "bench",
        "created_at": "2026-01-01T00:00:00Z",
        "code_version": None,
        "params": {},
        "key": [],
        "rows": 0,
        "schema_hash": "0" * 64,
        "content_root": "0" * 64,
        "order_root": "0" * 64,
        "columns": [],
        "stats_digest": "0" * 64,
        "diff_summary_hash": None,
        "details_hash": None,
        "row_table_hash": "0" * 64,
        "prev": None,
    },
    "hash": "0" * 64,
    "schema": [],
    "stats": [],
    "diff": None,
    "artifact": False,
}


def sink(listener: socket.socket) -> None:
    """A minimal HTTP/1.1 server: creates runs, swallows step bodies, answers at once."""
    run = json.dumps(
        {
            "id": "bench",
            "pipeline": "bench",
            "labels": {},
            "code_version": None,
            "params": {},
            "status": "open",
            "error": None,
            "created_at": "2026-01-01T00:00:00Z",
            "sealed_at": None,
            "steps": 0,
            "rows": None,
            "head": None,
        }
    ).encode()
    step = json.dumps(FAKE_STEP).encode()
    while True:
        conn, _ = listener.accept()
        f = conn.makefile("rb", buffering=1 << 20)
        try:
            while True:
                line = f.readline()
                if not line:
                    break
                headers = {}
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b""):
                        break
                    name, _, value = h.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                received = 0
                if headers.get("transfer-encoding") == "chunked":
                    while True:
                        size = int(f.readline().split(b";")[0], 16)
                        if size == 0:
                            f.readline()
                            break
                        received += len(f.read(size))
                        f.readline()
                else:
                    received += len(f.read(int(headers.get("content-length", "0"))))
                body = step if b"/steps" in line else run
                status = b"201 Created"
                conn.sendall(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                    b"X-Received: " + str(received).encode() + b"\r\n\r\n" + body
                )
        finally:
            f.close()
            conn.close()


def timed(fn: Callable[[], object], repeat: int) -> List[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def report(name: str, times: List[float]) -> None:
    print(
        f"{name:<44} median {statistics.median(times):7.3f} s   "
        f"min {min(times):7.3f} s   (n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", default=os.environ.get("PIPEPROOF_URL"))
    parser.add_argument("--token", default=os.environ.get("PIPEPROOF_TOKEN"))
    args = parser.parse_args()

    df = workload(args.rows)
    table = to_arrow(df)
    ipc_bytes = sum(len(p) for p in ipc_stream(table, batch_rows_for(table)))
    print(
        f"frame: {args.rows} rows x {df.shape[1]} columns, pandas {pd.__version__}; "
        f"IPC stream {ipc_bytes / 1e6:.1f} MB"
    )

    report("to_arrow (pandas -> Arrow)", timed(lambda: to_arrow(df), args.repeat))
    report(
        "to_arrow + IPC stream (no network)",
        timed(
            lambda: sum(
                len(p) for p in ipc_stream(to_arrow(df), batch_rows_for(table))
            ),
            args.repeat,
        ),
    )

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    proc = multiprocessing.Process(target=sink, args=(listener,), daemon=True)
    proc.start()
    try:
        client = pp.Client(f"http://127.0.0.1:{port}", token="bench", retries=0, progress=False)
        run = client.run("bench")
        overhead = timed(lambda: run.snapshot(df, step="bench"), args.repeat)
        report("snapshot() to a discarding loopback sink", overhead)
    finally:
        proc.terminate()
        listener.close()

    if args.url:
        client = pp.Client(args.url, token=args.token, retries=0, progress=False, timeout=600)
        times = []
        for i in range(args.repeat):
            # One run per repetition: each snapshot is a first step (fingerprint, stats,
            # row table, record), without a diff.
            with client.run("bench-python-client") as run:
                t = time.perf_counter()
                run.snapshot(df, step="load", key="id")
                times.append(time.perf_counter() - t)
        report(f"snapshot() end to end (first step), {args.url}", times)

    verdict = "meets" if statistics.median(overhead) < 0.5 else "MISSES"
    print(f"client-side overhead {statistics.median(overhead):.3f} s: {verdict} the 0.5 s target")


if __name__ == "__main__":
    main()

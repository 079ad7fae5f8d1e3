"""Whole-process figures of the server and of bundle verification, over real HTTP on loopback.

Started by benches/run.sh (`make bench`) after the diff comparison; it can also run alone:

    python3 benches/server.py --pipeproof target/release/pipeproof --data bench-data/1m

What it measures, on a new store in a temporary directory:
  ingest    five 1M-row steps of the reference workload posted as Arrow IPC streams
            (before, after, before, ...), keyed by `id`: each POST's wall time seen by the
            client, which includes the upload, the fingerprint, the diff against the previous
            step and the commit;
  reads     a page of 100 diff details of a stored 1M-row step, GET 200 times in a row:
            p50 / p99 / max;
  clients   16 clients each posting 50 steps of 10k rows to runs of their own at once:
            errors, steps stored, p50 / p99 latency;
  verify    the five-step run sealed and exported, then `pipeproof verify` on the bundle (wall
            time and peak RSS), and (when web/dist, node and Chromium are there) the same
            bundle verified by the web app in headless Chromium (tests/browser/verify-bench.mjs).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

TOKEN = "pp_bench_" + "b" * 32
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, method: str = "GET", body: bytes | None = None,
            content_type: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ok(status: int, body: bytes, what: str) -> dict:
    if status >= 300:
        raise RuntimeError(f"{what}: HTTP {status}: {body[:400]!r}")
    return json.loads(body) if body else {}


def arrow_stream(parquet: Path, rows: int | None = None, mark: int | None = None) -> bytes:
    """The table as an Arrow IPC stream; with `mark`, the amount of its first row set to
    `mark`, so that no two steps of a run store the same row table or details (the store
    would keep one copy of equal blobs, and writing blobs is part of an ingest)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    if rows is not None:
        table = table.slice(0, rows)
    if mark is not None:
        first = pc.equal(table["id"], table["id"][0])
        i = table.schema.get_field_index("amount")
        table = table.set_column(i, "amount", pc.if_else(first, float(mark), table["amount"]))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=64 * 1024)
    return sink.getvalue().to_pybytes()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def details_pages(api: str, run: str, changed: int, size: str) -> None:
    """Times 200 GETs of a page of 100 changed cells of step 1, at offsets across the details."""
    lat = []
    for i in range(200):
        t = time.perf_counter()
        ok(*request(f"{api}/runs/{run}/steps/1/details?kind=changed&offset={(i * 100) % changed}&limit=100"),
           "details page")
        lat.append((time.perf_counter() - t) * 1000)
    print(f"details page of 100 rows of a stored {size}-row step, 200 GETs: "
          f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms")


def run_measured(cmd: list) -> tuple[float, int, str]:
    """Runs `cmd` under GNU time: (wall seconds, its peak RSS in KiB, stdout). Not wait4 from
    here: Python starts a child with vfork, so the child's peak RSS would count this process's
    own (hundreds of MB, after holding the bundle)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *map(str, cmd)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited with {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return wall, int(p.stderr.strip().splitlines()[-1]), p.stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeproof", default=str(ROOT / "target/release/pipeproof"))
    ap.add_argument("--data", default=str(ROOT / "bench-data/1m"))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--client-steps", type=int, default=50)
    ap.add_argument("--data-10m", help="also store the 10M pair (Parquet bodies) and time the "
                    "details page of the 10M-row step")
    args = ap.parse_args()
    data = Path(args.data)
    work = Path(tempfile.mkdtemp(prefix="pipeproof-bench-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    env = dict(os.environ, PIPEPROOF_ADMIN_TOKEN=TOKEN, PIPEPROOF_LOG="warn")
    server = subprocess.Popen(
        [args.pipeproof, "serve", "--data-dir", str(work / "store"), "--bind", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "wb"))
    try:
        for _ in range(100):
            try:
                if request(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        # Steps alternate between the pair's two sides, each one marked apart (arrow_stream).
        pair = [data / "before.parquet", data / "after.parquet"]
        run = ok(*request(f"{api}/runs", "POST", json.dumps({"pipeline": "bench"}).encode(),
                          "application/json"), "create run")["id"]
        times = []
        for i in range(args.steps):
            body = arrow_stream(pair[i % 2], mark=None if i < 2 else 1_000_000 + i)
            t = time.perf_counter()
            ok(*request(f"{api}/runs/{run}/steps?step=s{i}&key=id", "POST", body,
                        "application/vnd.apache.arrow.stream"), f"step {i}")
            times.append(time.perf_counter() - t)
        rows = 1_000_000 if data.name == "1m" else None
        label = f"{rows:,}-row" if rows else data.name
        print(f"ingest of {label} steps as Arrow IPC ({len(body) / 1e6:.0f} MB each), keyed by id, over loopback:")
        print(f"  first step (fingerprint only)   {times[0]:.2f} s")
        diffs = times[1:]
        print(f"  next steps (fingerprint + diff against the previous + commit): "
              f"median {statistics.median(diffs):.2f} s, min {min(diffs):.2f} s, max {max(diffs):.2f} s")

        details_pages(api, run, 10000, "1M")

        small = arrow_stream(data / "before.parquet", 10_000)

        def client(c: int) -> tuple[list[float], int]:
            r = ok(*request(f"{api}/runs", "POST", json.dumps({"pipeline": f"client-{c}"}).encode(),
                            "application/json"), "create run")["id"]
            lat, errors = [], 0
            for s in range(args.client_steps):
                t = time.perf_counter()
                status, _ = request(f"{api}/runs/{r}/steps?step=s{s}&key=id", "POST", small,
                                    "application/vnd.apache.arrow.stream")
                lat.append((time.perf_counter() - t) * 1000)
                errors += status != 201
            return lat, errors

        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(client, range(args.clients)))
        wall = time.perf_counter() - t
        lat = [x for r in results for x in r[0]]
        errors = sum(r[1] for r in results)
        listed = ok(*request(f"{api}/runs?limit=100"), "list runs")
        items = listed["items"]
        stored = sum(r["steps"] for r in items if r["pipeline"].startswith("client-"))
        print(f"{args.clients} clients x {args.client_steps} steps of 10,000 rows: {len(lat)} posts in {wall:.1f} s, "
              f"{errors} errors, {stored} steps stored, p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms")

        if args.data_10m:
            big = Path(args.data_10m)
            r10 = ok(*request(f"{api}/runs", "POST", json.dumps({"pipeline": "bench-10m"}).encode(),
                              "application/json"), "create run")["id"]
            for i, name in enumerate(["before", "after"]):
                t = time.perf_counter()
                ok(*request(f"{api}/runs/{r10}/steps?step={name}&key=id&chunk_rows=1000000", "POST",
                            (big / f"{name}.parquet").read_bytes(), "application/vnd.apache.parquet"),
                   f"10M step {name}")
                print(f"10M-row step {name} (Parquet body) stored in {time.perf_counter() - t:.1f} s")
            details_pages(api, r10, 10000, "10M")

        ok(*request(f"{api}/runs/{run}/seal", "POST"), "seal")
        bundle = work / "bundle.zip"
        t = time.perf_counter()
        status, body = request(f"{api}/runs/{run}/bundle")
        if status != 200:
            raise RuntimeError(f"export: HTTP {status}")
        bundle.write_bytes(body)
        export = time.perf_counter() - t
        # The second export of the sealed run is its kept bundle, checked against its hash.
        t = time.perf_counter()
        status, again = request(f"{api}/runs/{run}/bundle")
        if status != 200 or again != body:
            raise RuntimeError(f"second export: HTTP {status}, {len(again)} bytes")
        export_kept = time.perf_counter() - t
        key = ok(*request(f"{api}/keys"), "keys")["keys"][0]["public_key"]
        native, rss_kb, out = run_measured([args.pipeproof, "verify", str(bundle), "--pubkey", key])
        print(f"bundle of the {args.steps}-step run: {len(body) / 1048576:.0f} MiB, exported in {export:.1f} s "
              f"(again, kept: {export_kept:.2f} s); "
              f"pipeproof verify {native:.2f} s, {rss_kb / 1024:.0f} MB peak RSS ({out.strip().splitlines()[-1]})")
        dist = ROOT / "web" / "dist"
        if (dist / "index.html").exists() and shutil.which("node") and os.path.exists(
                os.environ.get("CHROMIUM", "/usr/bin/chromium")):
            r = subprocess.run(["node", str(ROOT / "tests/browser/verify-bench.mjs"), str(bundle), key],
                               capture_output=True, text=True, env=dict(os.environ, PIPEPROOF_BIN=args.pipeproof))
            print("in headless Chromium (tests/browser/verify-bench.mjs):")
            for line in (r.stdout or r.stderr).strip().splitlines():
                print("  " + line)
        else:
            print("browser verify skipped: needs web/dist (make web), node and Chromium")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Whole-process benchmark of pipeproof against other tools on the reference workload.

Runs every tool as its own process, RUNS times (median wall time; peak RSS of the process
from wait4), in rounds that run each tool of a table once, after one untimed warm-up round
(see `measure`); checks that every diff reports exactly the counts in expected.json (added,
removed, changed rows, changed cells per column) and prints one side-by-side table with the
ratios to pipeproof and the DESIGN/issue targets. Exits 1 when any tool disagrees with
expected.json (or, with BENCH_STRICT=1, when a target is missed), 2 on a usage error.

Usage: python3 bench.py --pipeproof target/release/pipeproof --data bench-data/1m
           [--runs 3] [--data-10m bench-data/10m]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Result:
    """One tool's measurements."""

    name: str
    group: str
    walls: list = field(default_factory=list)
    rss_kb: list = field(default_factory=list)
    counts: dict | None = None
    error: str | None = None

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def rss_mb(self) -> float:
        return max(self.rss_kb) / 1024


def run_once(cmd: list, ok_codes=(0,)) -> tuple[float, int, str]:
    """Runs `cmd`, returning (wall seconds, peak RSS in KiB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode()
        if proc.returncode not in ok_codes:
            raise RuntimeError(
                f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n"
                + err.read().decode()[-2000:]
            )
        return wall, usage.ru_maxrss, stdout


@dataclass
class Tool:
    """A command to time, and how to read the counts it prints."""

    name: str
    group: str
    cmd: list
    parse: object
    ok_codes: tuple = (0,)


def measure(tools: list, runs: int, warmup: int) -> list:
    """Runs every tool `warmup` + `runs` times, in rounds that run each tool once, so that
    each tool's n-th run meets the machine as the others' n-th runs do. The warm-up rounds are
    not timed: on a VM whose host takes back the memory its guest frees (as these machines'
    does, seconds after), the first process after a pause pays for faulting that memory in
    again, whichever tool it is. Every run's counts are checked."""
    results = [Result(t.name, t.group) for t in tools]
    for n in range(warmup + runs):
        timed = n >= warmup
        print(f"  {'run ' + str(n - warmup + 1) if timed else 'warm-up'}:", end="",
              file=sys.stderr, flush=True)
        for t, r in zip(tools, results):
            if r.error:
                continue
            try:
                wall, rss, stdout = run_once(t.cmd, t.ok_codes)
                counts = t.parse(stdout)
                if r.counts is not None and counts != r.counts:
                    raise RuntimeError(f"{t.name} gave different counts on two runs")
                r.counts = counts
                if timed:
                    r.walls.append(wall)
                    r.rss_kb.append(rss)
                print(f"  {t.name} {wall:.2f}s", end="", file=sys.stderr, flush=True)
            except Exception as e:  # reported in the table and fails the run
                r.error = str(e)
                print(f"  {t.name} failed", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    return results


def pipeproof_diff_counts(stdout: str) -> dict:
    s = json.loads(stdout)["summary"]
    return {
        "added": s["added"],
        "removed": s["removed"],
        "changed": s["changed"],
        "columns": {c["name"]: c["changed"] for c in s["columns"]},
    }


def pipeproof_fingerprint_counts(stdout: str) -> dict:
    return {"rows": json.loads(stdout)["fingerprint"]["rows"]}


def b3sum_counts(stdout: str) -> dict:
    digest = stdout.split()[0]
    if len(digest) != 64:
        raise RuntimeError(f"b3sum printed {stdout!r}")
    return {}


def json_counts(stdout: str) -> dict:
    return json.loads(stdout)


def check(r: Result, want: dict) -> list:
    """The ways a result disagrees with expected.json."""
    if r.error:
        return [r.error]
    got = r.counts or {}
    problems = []
    for k, v in want.items():
        if k not in got:
            continue
        if got[k] != v:
            problems.append(f"{r.name}: {k} = {got[k]}, expected {v}")
    return problems


def arrow_bytes(paths: list) -> int:
    """In-memory Arrow size of the tables (pyarrow's buffer sizes)."""
    import pyarrow.parquet as pq

    return sum(pq.read_table(p).nbytes for p in paths)


def fmt_rate(rows: int, wall: float) -> str:
    r = rows / wall
    return f"{r / 1e6:.1f} M/s" if r >= 1e6 else f"{r / 1e3:.0f} k/s"


def table(results: list, rows: int, base: Result) -> str:
    head = f"{'tool':<28}{'wall s':>9}{'rows/s':>12}{'peak RSS':>11}{'wall ÷ pp':>11}{'RSS ÷ pp':>10}  counts"
    lines = [head, "-" * len(head)]
    for r in results:
        if r.error or not r.walls:
            lines.append(f"{r.name:<28}{'failed':>9}")
            continue
        ok = "-" if r.group == "hash" else "ok"
        if base.error or not base.walls:
            ratios = f"{'-':>11}{'-':>10}"
        else:
            ratios = f"{r.wall / base.wall:>10.2f}×{r.rss_mb / base.rss_mb:>9.2f}×"
        lines.append(
            f"{r.name:<28}{r.wall:>9.3f}{fmt_rate(rows, r.wall):>12}{r.rss_mb:>8.0f} MB"
            f"{ratios}  {ok}"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeproof", required=True, help="the pipeproof binary")
    p.add_argument("--data", required=True, help="directory written by pipeproof-gen")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data-10m", help="also diff this (10M-row) pair with --chunk-rows 1000000")
    args = p.parse_args()
    data = Path(args.data)
    try:
        want = json.loads((data / "expected.json").read_text())
    except FileNotFoundError:
        print(f"bench: {data}/expected.json is missing: run pipeproof-gen first", file=sys.stderr)
        return 2
    pp = str(Path(args.pipeproof).resolve())
    key = want["key"]
    before, after, arrow = (str(data / n) for n in ("before.parquet", "after.parquet", "before.arrow"))
    rows = want["rows_before"]
    py = sys.executable
    want_diff = {k: want[k] for k in ("added", "removed", "changed", "columns")}
    runs = args.runs

    warmup = int(os.environ.get("BENCH_WARMUP", "1"))
    print(f"bench: {rows:,} rows × 12 columns, {warmup} warm-up and {runs} timed runs each, "
          f"{os.cpu_count()} cores", file=sys.stderr)
    hashers = [Tool("pipeproof fingerprint", "hash", [pp, "fingerprint", arrow, "--format", "json"],
                    pipeproof_fingerprint_counts)]
    b3 = shutil.which("b3sum")
    if b3:
        hashers.append(Tool("b3sum", "hash", [b3, arrow], b3sum_counts))
    fp = measure(hashers, runs, warmup)
    if not b3:
        fp.append(Result("b3sum", "hash", error="b3sum is not installed: scripts/bootstrap.sh bench"))

    diff_cmd = [pp, "diff", before, after, "--key", key, "--format", "json"]
    diffs = measure([
        # Exit status 1 means "the files differ", which they do.
        Tool("pipeproof diff", "diff", diff_cmd, pipeproof_diff_counts, ok_codes=(1,)),
        Tool("DuckDB FULL OUTER JOIN", "diff",
             [py, str(HERE / "duckdb_diff.py"), before, after, "--key", key], json_counts),
        Tool("polars join-diff", "diff",
             [py, str(HERE / "polars_diff.py"), before, after, "--key", key], json_counts),
        Tool("datacompy PolarsCompare", "diff",
             [py, str(HERE / "datacompy_diff.py"), "polars", before, after, "--key", key],
             json_counts),
    ], runs, warmup)
    # About 20 s a run on a quiet machine: run it BENCH_SLOW_RUNS times (default 1), right
    # after the others, with no warm-up.
    diffs += measure([
        Tool("datacompy PandasCompare", "diff",
             [py, str(HERE / "datacompy_diff.py"), "pandas", before, after, "--key", key],
             json_counts),
    ], int(os.environ.get("BENCH_SLOW_RUNS", "1")), 0)

    problems = check(fp[0], {"rows": rows})
    problems += [e for r in fp[1:] for e in ([r.error] if r.error else [])]
    for r in diffs:
        problems += check(r, want_diff)

    arrow_size = arrow_bytes([before, after])
    arrow_file = Path(arrow).stat().st_size
    print()
    print(f"pipeproof bench: {rows:,} rows × 12 columns; medians of {runs} runs after {warmup} warm-up "
          f"(datacompy PandasCompare: {os.environ.get('BENCH_SLOW_RUNS', '1')}, no warm-up), round-robin, "
          f"whole process, peak RSS the max")
    print(f"expected: {want['added']:,} added, {want['removed']:,} removed, {want['changed']:,} changed; "
          f"per column {json.dumps(want['columns'])}")
    print()
    print(f"fingerprint of before.arrow ({arrow_file / 1e6:.0f} MB Arrow IPC file)")
    print(table(fp, rows, fp[0]))
    print()
    print(f"keyed diff on `{key}` of before.parquet → after.parquet "
          f"(in-memory Arrow size of both: {arrow_size / 2**20:.0f} MiB)")
    print(table(diffs, rows, diffs[0]))

    targets = []
    by = {r.name: r for r in fp + diffs if not r.error and r.walls}

    def target(label: str, ok: bool, detail: str) -> None:
        targets.append((label, ok, detail))

    if "pipeproof fingerprint" in by:
        f = by["pipeproof fingerprint"]
        target("fingerprint ≥ 10M rows/s", rows / f.wall >= 10e6, fmt_rate(rows, f.wall))
        if "b3sum" in by:
            ratio = f.wall / by["b3sum"].wall
            target("fingerprint within 5× of b3sum", ratio <= 5, f"{ratio:.1f}×")
    if "pipeproof diff" in by:
        d = by["pipeproof diff"]
        if "DuckDB FULL OUTER JOIN" in by:
            q = by["DuckDB FULL OUTER JOIN"]
            target("diff faster than DuckDB", d.wall < q.wall, f"{d.wall:.3f} s vs {q.wall:.3f} s")
        if "datacompy PandasCompare" in by:
            ratio = by["datacompy PandasCompare"].wall / d.wall
            target("diff 20× faster than datacompy", ratio >= 20, f"{ratio:.1f}×")
        if "polars join-diff" in by:
            q = by["polars join-diff"]
            target("diff faster than polars join-diff", d.wall < q.wall,
                   f"{d.wall:.3f} s vs {q.wall:.3f} s")
        ratio = d.rss_mb * 2**20 / arrow_size
        target("diff peak RSS ≤ 3× Arrow size of inputs", ratio <= 3,
               f"{d.rss_mb:.0f} MB = {ratio:.2f}× of {arrow_size / 2**20:.0f} MiB")

    if args.data_10m:
        d10 = Path(args.data_10m)
        want10 = json.loads((d10 / "expected.json").read_text())
        cmd = [pp, "diff", str(d10 / "before.parquet"), str(d10 / "after.parquet"), "--key", key,
               "--format", "json", "--chunk-rows", "1000000"]
        print(file=sys.stderr)
        [r10] = measure([Tool("pipeproof diff 10M chunked", "diff", cmd, pipeproof_diff_counts,
                              ok_codes=(1,))], 1, 0)
        problems += check(r10, {k: want10[k] for k in ("added", "removed", "changed", "columns")})
        print()
        print(f"10M pair, --chunk-rows 1000000 (one run)")
        if r10.walls:
            rows10 = want10["rows_before"]
            print(f"pipeproof diff: {r10.wall:.2f} s, {fmt_rate(rows10, r10.wall)}, peak RSS {r10.rss_mb:.0f} MB")
            target("10M chunked diff under 3 GiB", r10.rss_mb < 3 * 1024, f"{r10.rss_mb:.0f} MB")

    print()
    print("targets")
    for label, ok, detail in targets:
        print(f"  {'PASS' if ok else 'MISS'}  {label:<42} {detail}")

    if problems:
        print()
        print("bench: FAILED: the tools do not all report the expected counts:", file=sys.stderr)
        for pr in problems:
            print(f"  {pr}", file=sys.stderr)
        return 1
    print()
    print("all tools report the expected counts")
    if os.environ.get("BENCH_STRICT") == "1" and not all(ok for _, ok, _ in targets):
        print("bench: BENCH_STRICT=1 and a target was missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# `make bench`: builds release, generates the reference workload if missing, and prints one
# side-by-side table of pipeproof against b3sum, DuckDB, polars and datacompy (see
# benches/compare/bench.py). Fails when any tool disagrees with the generated expected counts.
#
# Environment:
#   BENCH_ROWS=1m     size of the main pair (100k, 1m, ...)
#   BENCH_RUNS=3      runs per tool (the median wall time is reported)
#   BENCH_10M=1       also diff the 10M pair with --chunk-rows 1000000, one run, and store it
#                     on the server to time reads of a 10M-row step (the 10M
#                     pair takes about 1.3 GB of disk)
#   BENCH_SLOW_RUNS=1 runs of datacompy PandasCompare (about 20 s each)
#   BENCH_WARMUP=1    untimed warm-up rounds before the timed ones (see benches/compare/bench.py)
#   BENCH_STRICT=1    also fail when a performance target is missed
#   BENCH_NO_INSTALL=1  skip scripts/bootstrap.sh bench (tools already installed)
#   BENCH_SERVER=0    skip the server and verification figures (benches/server.py)
set -euo pipefail
cd "$(dirname "$0")/.."

rows="${BENCH_ROWS:-1m}"
runs="${BENCH_RUNS:-3}"

log() { printf '==> %s\n' "$*" >&2; }

[ "${BENCH_NO_INSTALL:-0}" = 1 ] || scripts/bootstrap.sh bench

log "cargo build --release (pipeproof, pipeproof-gen)"
cargo build --release --quiet -p pipeproof-server --bin pipeproof
cargo build --release --quiet -p pipeproof-benches --bin pipeproof-gen

gen() { # gen SIZE [extra args]: writes bench-data/SIZE unless it is already complete
  local size="$1"; shift
  if [ -f "bench-data/$size/expected.json" ]; then
    log "bench-data/$size exists (delete it to regenerate)"
  else
    log "generating bench-data/$size"
    target/release/pipeproof-gen --rows "$size" --out "bench-data/$size" "$@"
  fi
}

gen "$rows" --csv
extra=()
if [ "${BENCH_10M:-0}" = 1 ]; then
  gen 10m
  extra=(--data-10m bench-data/10m)
fi

python3 benches/compare/bench.py --pipeproof target/release/pipeproof \
  --data "bench-data/$rows" --runs "$runs" "${extra[@]}"

if [ "${BENCH_SERVER:-1}" = 1 ]; then
  log "server: ingest, reads, concurrent clients, bundle verification (benches/server.py)"
  python3 benches/server.py --pipeproof target/release/pipeproof --data "bench-data/$rows" "${extra[@]}"
fi

#!/usr/bin/env bash
# Tests the Python client (python/) against a real server: builds the server binary,
# installs the package, runs pytest. The tests start the server themselves on a free
# loopback port with a fresh data directory. Exits non-zero when anything fails.
#
#   scripts/test-python.sh [pytest args...]
#
# PIPEPROOF_BIN selects another server binary (then nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"

if [ -z "${PIPEPROOF_BIN:-}" ]; then
  echo "==> cargo build -p pipeproof-server" >&2
  cargo build --quiet -p pipeproof-server
  export PIPEPROOF_BIN="$PWD/target/debug/pipeproof"
fi

for mod in requests pyarrow pandas polars duckdb pytest; do
  if ! "$PYTHON" -c "import $mod" >/dev/null 2>&1; then
    echo "test-python: the Python module '$mod' is missing; run scripts/bootstrap.sh python" >&2
    exit 2
  fi
done

echo "==> pip install ./python" >&2
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall ./python
# An in-tree build leaves python/build behind; it is not ours to keep.
rm -rf python/build python/src/*.egg-info

echo "==> pytest python/tests" >&2
# Run from outside the source tree so the installed package is what gets tested.
cd python/tests
exec "$PYTHON" -m pytest -q -p no:cacheprovider "$@" .

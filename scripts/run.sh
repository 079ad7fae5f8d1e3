#!/usr/bin/env bash
# What `make run` starts: the release server with the web app on $BIND, data in $DATA_DIR.
# On a new store it loads the demo run by running the example pandas pipeline through the
# Python client (or, where Python's packages are missing, the server's built-in demo), and it
# always prints the URL and a token to sign in with.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-.data}
BIND=${BIND:-127.0.0.1:8080}
BIN=target/release/pipeproof
URL="http://$BIND"

fresh=0
[ -f "$DATA_DIR/pipeproof.sqlite" ] || fresh=1
python_ok=0
python3 -c 'import pandas, pyarrow, requests' >/dev/null 2>&1 && python_ok=1

if [ "$fresh" = 1 ] && [ "$python_ok" = 1 ]; then
  TOKEN="pp_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  PIPEPROOF_ADMIN_TOKEN="$TOKEN" "$BIN" serve --data-dir "$DATA_DIR" --bind "$BIND" --static-dir web/dist &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' INT TERM
  for _ in $(seq 1 200); do
    curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
    kill -0 $SERVER 2>/dev/null || exit 1
    sleep 0.1
  done
  echo "loading the demo run: examples/daily_positions.py through the Python client"
  PYTHONPATH="$PWD/python/src${PYTHONPATH:+:$PYTHONPATH}" PIPEPROOF_URL="$URL" PIPEPROOF_TOKEN="$TOKEN" \
    python3 examples/daily_positions.py --days 3 \
    || echo "the demo pipeline failed; the server goes on without it" >&2
else
  "$BIN" serve --demo --data-dir "$DATA_DIR" --bind "$BIND" --static-dir web/dist &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' INT TERM
  for _ in $(seq 1 200); do
    curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
    kill -0 $SERVER 2>/dev/null || exit 1
    sleep 0.1
  done
  TOKEN=$("$BIN" token create --scope admin --name "make run" --data-dir "$DATA_DIR")
fi
cat <<MSG

  pipeproof is running: $URL
  sign in with this token: $TOKEN
  (the CLI and the Python client take it as PIPEPROOF_TOKEN; Ctrl-C stops the server)

MSG
wait $SERVER

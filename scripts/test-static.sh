#!/usr/bin/env bash
# The Docker image's promise, checked without a Docker engine: the release binary built for
# x86_64-unknown-linux-musl is static, and it serves the web app and the API when started from
# an otherwise empty directory tree (as in a `scratch` image), in a fresh mount namespace, as a
# non-root user, with its data in a given directory.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'test-static: FAILED: %s\n' "$*" >&2; exit 1; }

dpkg -s musl-tools >/dev/null 2>&1 || {
  log "apt-get install musl-tools"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
}
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

log "cargo build --profile dist --target $TARGET -p pipeproof-server"
cargo build --profile dist --locked --target "$TARGET" -p pipeproof-server
BIN="target/$TARGET/dist/pipeproof"

out=$(ldd "$BIN" 2>&1 || true)
case "$out" in
  *"not a dynamic executable"*|*"statically linked"*) log "ldd: $out" ;;
  *) fail "the musl binary is not static: ldd says: $out" ;;
esac
[ -d web/dist ] || fail "web/dist is missing: run 'make web' first"

ROOT=$(mktemp -d /tmp/pipeproof-scratch.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
chmod 755 "$ROOT"
mkdir -p "$ROOT/data"
cp "$BIN" "$ROOT/pipeproof"
cp -r web/dist "$ROOT/web"
chown 10001:10001 "$ROOT/data"
[ "$(find "$ROOT" -mindepth 1 -maxdepth 1 | wc -l)" -eq 3 ] || fail "the root tree is not empty"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log "starting in an empty root, new mount namespace, uid 10001, port $PORT"
# unshare -m: a mount namespace of its own; chroot: nothing but the binary, web/ and data/ are
# visible, no /etc, no /tmp, no /proc, no shell; --userspec: not root. unshare ignores SIGTERM
# while it waits, so the exit trap stops the server (unshare's child) itself.
unshare --mount --fork chroot --userspec=10001:10001 "$ROOT" /pipeproof serve \
  --data-dir /data --bind "127.0.0.1:$PORT" --static-dir /web \
  > "$ROOT.log" 2>&1 &
PID=$!
trap 'pkill -TERM -P $PID 2>/dev/null || true; rm -rf "$ROOT" "$ROOT.log"' EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { cat "$ROOT.log" >&2; fail "the server exited at start"; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/healthz" | grep -q '"ok"' || fail "/healthz"
curl -fsS "http://127.0.0.1:$PORT/" | grep -qi '<html' || fail "the web app is not served at /"
ADMIN=$(grep -o 'pp_[A-Za-z0-9_]*' "$ROOT.log" | head -1)
[ -n "$ADMIN" ] || { cat "$ROOT.log" >&2; fail "no admin token printed on first start"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/runs")
[ "$code" = 401 ] || fail "/api/v1/runs without a token answered $code, not 401"
curl -fsS -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"pipeline":"static-check"}' "http://127.0.0.1:$PORT/api/v1/runs" > "$ROOT/run.json" \
  || fail "creating a run"
RUN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$ROOT/run.json")
printf 'id,v\n1,a\n2,b\n' | curl -fsS -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/csv' \
  --data-binary @- "http://127.0.0.1:$PORT/api/v1/runs/$RUN/steps?step=load&key=id" >/dev/null \
  || fail "posting a step"
curl -fsS -X POST -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/api/v1/runs/$RUN/seal" >/dev/null \
  || fail "sealing the run"
curl -fsS -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/api/v1/runs/$RUN/bundle" -o "$ROOT/run.zip" \
  || fail "exporting the bundle"
target/release/pipeproof verify "$ROOT/run.zip" >/dev/null 2>&1 || "$BIN" verify "$ROOT/run.zip" \
  || fail "the exported bundle does not verify"
owner=$(stat -c %u "$ROOT/data/$(ls "$ROOT/data" | head -1)")
[ "$owner" = 10001 ] || fail "the data files are owned by uid $owner, not 10001"
log "static binary: $(du -h "$BIN" | cut -f1), served the web app and the API from an empty root as uid 10001"
echo "test-static: passed"

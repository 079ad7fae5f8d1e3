#!/usr/bin/env bash
# Installs what building and testing pipeproof needs on a fresh machine (see docs/DEVELOPING.md).
# Idempotent: every step is skipped when the right version is already there, so a warm machine
# pays nothing. Usage: scripts/bootstrap.sh [native|wasm|browser|python|all] ...
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130

log() { printf '==> %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

native() {
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
}

wasm() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  if ! { have wasm-bindgen && wasm-bindgen --version | grep -q " $WASM_BINDGEN_VERSION"; }; then
    log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 min)"
    # Not --locked: its lockfile pins a webpki-roots version the registry does not serve.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --quiet
  fi
  if ! { have trunk && trunk --version | grep -q " $TRUNK_VERSION"; }; then
    log "cargo install trunk $TRUNK_VERSION (about 6 min)"
    cargo install trunk --version "$TRUNK_VERSION" --locked --quiet
  fi
  if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] \
    || [ ! -d node_modules/puppeteer-core ]; then
    log "npm ci (binaryen for wasm-opt, playwright-core, puppeteer-core)"
    npm ci --no-audit --no-fund --silent
  fi
}

browser() {
  apt_packages chromium chromium-driver firefox-esr
}

python() {
  if ! python3 -c 'import pandas, pyarrow, polars, duckdb, pytest, blake3, requests, tqdm' >/dev/null 2>&1; then
    log "pip install pandas pyarrow polars duckdb pytest blake3 requests tqdm"
    python3 -m pip install --quiet --disable-pip-version-check pandas pyarrow polars duckdb pytest blake3 requests tqdm
  fi
}

bench() {
  python
  if ! python3 -c 'import datacompy' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check datacompy
  fi
  have b3sum || apt_packages b3sum
  # GNU time, for the peak RSS of a command started by a process that is itself large.
  apt_packages time
}

[ $# -eq 0 ] && set -- all
for what in "$@"; do
  case "$what" in
    native) native ;;
    wasm) wasm ;;
    browser) browser ;;
    python) python ;;
    bench) bench ;;
    all) native; browser; wasm; python ;;
    *) echo "bootstrap: unknown part '$what' (native|wasm|browser|python|bench|all)" >&2; exit 2 ;;
  esac
done

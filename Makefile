# pipeproof: `make run` builds everything and starts the server with its web app;
# `make test` runs every check. Both install what they need on a fresh machine
# (scripts/bootstrap.sh, idempotent: a warm machine pays nothing).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

DATA_DIR ?= .data
BIND ?= 127.0.0.1:8080

.PHONY: run test bootstrap fmt clippy test-native test-wasm web test-reference test-python \
	test-browser test-static bench clean

## run: build the server and the web app, start on $(BIND) with a demo run when the store is empty
run:
	scripts/bootstrap.sh native wasm python
	$(MAKE) web
	cargo build --release -p pipeproof-server
	DATA_DIR=$(DATA_DIR) BIND=$(BIND) scripts/run.sh

## test: every check, in the order a failure is cheapest to find
test: bootstrap fmt clippy test-native test-wasm web test-reference test-python test-browser \
		test-static
	@echo "make test: all checks passed"

bootstrap:
	scripts/bootstrap.sh all

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --all-targets -- -D warnings
	cargo clippy -p pipeproof-web -p pipeproof-core --target wasm32-unknown-unknown --all-targets -- -D warnings

test-native:
	cargo test
	cargo test -p pipeproof-web

## test-wasm: core's tests (golden vectors included) compiled to wasm32, in headless Chromium
test-wasm:
	cargo test --target wasm32-unknown-unknown -p pipeproof-core

## web: the single-page app, release build, into web/dist
web:
	cd web && trunk build --release --offline --locked

## test-reference: the independent Python implementation against the golden vectors
test-reference:
	python3 -m pytest -q tests/reference

## test-python: the Python client against a live server
test-python:
	scripts/test-python.sh

## test-browser: the web app in headless Chromium against a live server
test-browser: web
	cargo build -p pipeproof-server
	node tests/browser/run.mjs

## test-static: the image's promise without Docker: a static musl binary serving from an empty root
test-static: web
	scripts/test-static.sh

## bench: whole-process figures: pipeproof against other tools, then the server (ingest, reads,
## concurrent clients) and bundle verification natively and in headless Chromium
## (the criterion benches of core: cargo bench -p pipeproof-benches)
bench:
	scripts/bootstrap.sh native wasm bench
	$(MAKE) web
	benches/run.sh

clean:
	cargo clean
	rm -rf web/dist tests/artifacts

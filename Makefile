# Hookscope: `make run` starts the app, `make test` runs every test. Both set up what they
# need on a fresh Debian/Ubuntu machine (system packages through apt, as root or via sudo).

SHELL := /bin/bash
.DEFAULT_GOAL := run

# release (default) or debug
PROFILE ?= release
CARGO_PROFILE := $(if $(filter release,$(PROFILE)),--release,)
BIN_DIR := target/$(if $(filter release,$(PROFILE)),release,debug)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

APT_BUILD := build-essential pkg-config libssl-dev curl ca-certificates
APT_BENCH := wrk

# Installs the Debian packages in $(1) that are missing; a warm machine skips apt.
define apt_ensure
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

.PHONY: run build test bench deps lint clean

deps:
	$(call apt_ensure,$(APT_BUILD))

## Every binary, under target/$(PROFILE)/
build: deps
	cargo build $(CARGO_PROFILE) --workspace --bins

## Starts Hookscope: the headless server (prints the webhook URL and the UI URL).
run: build
	@echo "Starting the headless server (hookscope serve); Ctrl-C stops it."
	@exec $(BIN_DIR)/hookscope serve

lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## Every test. cargo test runs last: CI reads its summary lines.
test: deps lint
	cargo test --workspace

## Figures, not pass/fail: ingest vs a no-op handler, a store of a million events, export.
bench: deps
	$(call apt_ensure,$(APT_BENCH))
	cargo bench -p hookscope-cli --bench capture

clean:
	cargo clean

# Hookscope: `make run` starts the app, `make test` runs every test. Both set up what they
# need on a fresh Debian/Ubuntu machine (system packages through apt, as root or via sudo).

SHELL := /bin/bash
# cargo install puts tools (tauri-driver) here.
export PATH := $(HOME)/.cargo/bin:$(PATH)
.DEFAULT_GOAL := run

# release (default) or debug
PROFILE ?= release
CARGO_PROFILE := $(if $(filter release,$(PROFILE)),--release,)
BIN_DIR := target/$(if $(filter release,$(PROFILE)),release,debug)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

APT_BUILD := build-essential pkg-config libssl-dev curl ca-certificates file \
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev \
  libsoup-3.0-dev libjavascriptcoregtk-4.1-dev libxdo-dev
# zsh and fish: copied commands are run in every shell a user may paste them into.
APT_BROWSER := chromium fonts-dejavu-core zsh fish
APT_WINDOW := xvfb xauth webkit2gtk-driver dbus
APT_BENCH := wrk
# cargo deb works out the libraries a binary needs with dpkg-shlibdeps.
APT_PACKAGE := dpkg-dev

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

.PHONY: run build ui packages api-types test test-ui test-browser test-desktop test-fuzz test-packages soak bench deps lint clean

deps:
	$(call apt_ensure,$(APT_BUILD))
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' 2>/dev/null \
	  || { echo "Node.js 20.19 or newer is needed to build the UI (found: $$(node --version 2>/dev/null || echo none))."; exit 1; }

# npm packages, reinstalled only when a lock file changes.
ui/node_modules/.package-lock.json: ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
tests/browser/node_modules/.package-lock.json: tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund

## The UI (ui/dist), which `hookscope serve` serves and release binaries embed. Rebuilt
## only when its sources change: a new ui/dist makes cargo re-embed it.
UI_SOURCES := $(shell find ui/src ui/public -type f 2>/dev/null) ui/index.html ui/vite.config.ts \
  ui/svelte.config.js ui/tsconfig.json ui/package-lock.json
ui/dist/index.html: $(UI_SOURCES) | ui/node_modules/.package-lock.json
	cd ui && npm run build
ui: deps ui/dist/index.html

## Every binary, under target/$(PROFILE)/, with the UI built in:
## hookscope (CLI and headless server) and hookscope-desktop (the app).
build: ui
	cargo build $(CARGO_PROFILE) --workspace --bins --features hookscope-desktop/custom-protocol

## Starts Hookscope: the desktop app, or the headless server when there is no display.
run: build
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  echo "Starting the Hookscope desktop app."; \
	  exec $(BIN_DIR)/hookscope-desktop; \
	else \
	  echo "No display (DISPLAY/WAYLAND_DISPLAY unset): starting the headless server (hookscope serve); Ctrl-C stops it."; \
	  exec $(BIN_DIR)/hookscope serve; \
	fi

## Two Debian packages in target/debian/: `hookscope` (the command, its man pages and
## completions, and the hookscope service; no GUI libraries) and `hookscope-desktop` (the
## window; depends on the first).
packages: ui
	$(call apt_ensure,$(APT_BUILD) $(APT_PACKAGE))
	@command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version '^3.8'
	cargo build --release -p hookscope-cli
	rm -rf target/release/packaging target/debian
	mkdir -p target/release/packaging/completions
	target/release/hookscope man-pages target/release/packaging/man
	gzip -9n target/release/packaging/man/*.1
	target/release/hookscope completions bash > target/release/packaging/completions/hookscope
	target/release/hookscope completions zsh > target/release/packaging/completions/_hookscope
	target/release/hookscope completions fish > target/release/packaging/completions/hookscope.fish
	cargo deb -p hookscope-cli --no-build
	cargo deb -p hookscope-desktop
	@ls -l target/debian/*.deb

## Installs both packages on this machine, runs what they hold (the command, the service's
## command line, the window under Xvfb), and removes them.
test-packages: packages
	$(call apt_ensure,$(APT_WINDOW))
	$(SUDO) tests/packages/check.sh

FUZZ_MANIFEST := src-tauri/core/fuzz/Cargo.toml

lint: deps ui/node_modules/.package-lock.json tests/browser/node_modules/.package-lock.json
	cargo fmt --all -- --check
	# The UI's API types are generated from the Rust types: fails while out of date.
	cargo test -p hookscope-core --test api_types
	cargo clippy --workspace --all-targets -- -D warnings
	# The fuzz crate is not a workspace member (cargo fuzz builds it apart).
	cargo fmt --manifest-path $(FUZZ_MANIFEST) -- --check
	cargo clippy --manifest-path $(FUZZ_MANIFEST) --all-targets -- -D warnings
	cd ui && npm run check
	cd tests/browser && npx tsc -p .

## Regenerates ui/src/lib/api.generated.ts from the API's Rust types.
api-types:
	UPDATE_API_TYPES=1 cargo test -p hookscope-core --test api_types

## UI unit tests (Vitest).
test-ui: ui/node_modules/.package-lock.json
	cd ui && npm test

## The UI in a real headless Chromium against real `hookscope serve` processes.
test-browser: ui tests/browser/node_modules/.package-lock.json
	$(call apt_ensure,$(APT_BROWSER))
	cargo build -p hookscope-cli
	cd tests/browser && HOOKSCOPE_BIN=$(CURDIR)/target/debug/hookscope npx playwright test

## The desktop app in a real window (Xvfb), driven through tauri-driver + WebKitWebDriver.
test-desktop: ui
	$(call apt_ensure,$(APT_WINDOW))
	@command -v tauri-driver >/dev/null || cargo install tauri-driver --locked --version '^2'
	cargo build -p hookscope-cli
	dbus-run-session -- xvfb-run -a -s "-screen 0 1400x900x24" timeout 900 \
	  cargo test -p hookscope-desktop --test window -- --ignored --test-threads=1

## cargo fuzz (libFuzzer) on the decoder and the export/import round trip, FUZZ_SECONDS
## each, from the fixtures and the kept regression inputs.
FUZZ_SECONDS ?= 30
test-fuzz: ui
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	src-tauri/core/fuzz/run.sh $(FUZZ_SECONDS)

## Every test. cargo test runs last: CI reads its summary lines.
test: lint test-ui test-browser test-desktop test-packages test-fuzz
	cargo test --workspace

## The long runs: a 10-minute soak (steady load, readers, exports, stalled streams) and
## 10 minutes of fuzzing per target.
soak:
	HOOKSCOPE_SOAK_SECONDS=600 cargo test --release -p hookscope-cli --test soak -- --nocapture
	$(MAKE) test-fuzz FUZZ_SECONDS=600

## Figures, not pass/fail: the writer alone, ingest vs a no-op handler, a store of a million
## events, export, forgetting, following a relay.
bench: ui tests/browser/node_modules/.package-lock.json
	$(call apt_ensure,$(APT_BENCH) $(APT_BROWSER))
	cargo bench -p hookscope-cli --bench writer --bench capture --bench follow
	cargo build --release -p hookscope-cli
	cd tests/browser && HOOKSCOPE_BIN=$(CURDIR)/target/release/hookscope npx playwright test -c bench.config.ts
	$(call apt_ensure,$(APT_WINDOW))
	cargo build --release -p hookscope-desktop --features custom-protocol
	tests/desktop/measure.sh

clean:
	cargo clean

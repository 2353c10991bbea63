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
# A desktop's fonts: the browser tests run with them (wider metrics than DejaVu alone).
APT_FONTS := fonts-liberation fonts-noto-core
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

.PHONY: run build ui packages api-types test test-ui test-browser test-desktop test-fuzz test-packages test-rust build-tests deps-all soak bench deps lint clean

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
## window; depends on the first). PACKAGE_PROFILE=dev packages the test build instead
## (what `make test` installs: the same files, built once for every test).
PACKAGE_PROFILE ?= release
PACKAGE_DIR := target/$(if $(filter release,$(PACKAGE_PROFILE)),release,debug)
packages: ui
	$(call apt_ensure,$(APT_BUILD) $(APT_PACKAGE))
	@command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version '=3.8.0'
	$(if $(filter release,$(PACKAGE_PROFILE)),cargo build --release --workspace --bins --features hookscope-desktop/custom-protocol)
	rm -rf $(PACKAGE_DIR)/packaging target/debian
	mkdir -p $(PACKAGE_DIR)/packaging/completions
	$(PACKAGE_DIR)/hookscope man-pages $(PACKAGE_DIR)/packaging/man
	gzip -9n $(PACKAGE_DIR)/packaging/man/*.1
	$(PACKAGE_DIR)/hookscope completions bash > $(PACKAGE_DIR)/packaging/completions/hookscope
	$(PACKAGE_DIR)/hookscope completions zsh > $(PACKAGE_DIR)/packaging/completions/_hookscope
	$(PACKAGE_DIR)/hookscope completions fish > $(PACKAGE_DIR)/packaging/completions/hookscope.fish
	cargo deb -p hookscope-cli --no-build --profile $(PACKAGE_PROFILE)
	cargo deb -p hookscope-desktop --no-build --profile $(PACKAGE_PROFILE)
	@ls -l target/debian/*.deb
	@# What users install stays small.
	$(if $(filter release,$(PACKAGE_PROFILE)),@for deb in target/debian/*.deb; do \
	  [ $$(stat -c %s $$deb) -lt $$((10 * 1024 * 1024)) ] || { echo "$$deb is 10 MiB or more"; exit 1; }; done)

## Installs both packages on this machine, runs what they hold (the command, the service's
## command line, the window under Xvfb), and removes them. Packages the test build.
test-packages: build-tests
	$(call apt_ensure,$(APT_WINDOW))
	$(MAKE) --no-print-directory packages PACKAGE_PROFILE=dev
	$(SUDO) env HOOKSCOPE_PACKAGE_MIB=16 tests/packages/check.sh

FUZZ_MANIFEST := src-tauri/core/fuzz/Cargo.toml

## Every Rust crate is linted as `make test` compiles it (clippy-driver wraps the
## workspace's crates, warnings are errors): one build serves the lint and every test.
CLIPPY_DRIVER := $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
LINTED := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) RUSTFLAGS="-D warnings"
# Same packages and features in every test build, so none builds a dependency again.
TEST_SELECTION := --workspace --features hookscope-desktop/custom-protocol

## Formatting, the UI's types and the browser tests' types; clippy runs with the build.
lint: deps ui/node_modules/.package-lock.json tests/browser/node_modules/.package-lock.json
	cargo fmt --all -- --check
	cd ui && npm run check
	cd tests/browser && npx tsc -p .

## Regenerates ui/src/lib/api.generated.ts from the API's Rust types.
api-types:
	UPDATE_API_TYPES=1 cargo test -p hookscope-core --test core api_types

## UI unit tests (Vitest).
test-ui: ui/node_modules/.package-lock.json
	cd ui && npm test

## One debug build of everything (the command, the window with its pages, every test,
## the benches), linted as it compiles.
build-tests: ui
	$(LINTED) cargo build $(TEST_SELECTION) --all-targets

## The Rust tests (cargo-nextest: each test in its own process, several at once). The
## window's tests and the soak are left to their targets.
test-rust: build-tests
	@command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
	$(LINTED) cargo nextest run $(TEST_SELECTION) --profile make-test

## The UI in a real headless Chromium against real `hookscope serve` processes, with a
## desktop's fonts (and the layout with the fewest fonts too: see playwright.config.ts).
test-browser: build-tests tests/browser/node_modules/.package-lock.json
	$(call apt_ensure,$(APT_BROWSER) $(APT_FONTS))
	cd tests/browser && HOOKSCOPE_BIN=$(CURDIR)/target/debug/hookscope npx playwright test

## The desktop app in a real window (Xvfb), driven through tauri-driver + WebKitWebDriver.
test-desktop: build-tests
	$(call apt_ensure,$(APT_WINDOW))
	@command -v tauri-driver >/dev/null || cargo install tauri-driver --locked --version '^2'
	dbus-run-session -- xvfb-run -a -s "-screen 0 1400x900x24" timeout 900 \
	  env $(LINTED) cargo nextest run $(TEST_SELECTION) --profile make-window \
	    --run-ignored only -E 'binary(window)'

## cargo fuzz (libFuzzer) on the decoder and the export/import round trip, FUZZ_SECONDS
## each, from the fixtures and the kept regression inputs. (`make test` replays those
## inputs through the same checks; this looks for new ones.)
FUZZ_SECONDS ?= 30
test-fuzz: ui
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	src-tauri/core/fuzz/run.sh $(FUZZ_SECONDS)

## Every test, each stage timed. Vitest, the Rust tests, the browser, the window, the
## packages; a cargo-test-style summary line last (CI reads it).
test: deps-all
	@$(call stage,lint) $(MAKE) --no-print-directory lint
	@$(call stage,vitest) $(MAKE) --no-print-directory test-ui
	@$(call stage,build) $(MAKE) --no-print-directory build-tests
	@$(call stage,rust tests) $(MAKE) --no-print-directory test-rust
	@$(call stage,browser) $(MAKE) --no-print-directory test-browser
	@$(call stage,window) $(MAKE) --no-print-directory test-desktop
	@$(call stage,packages) $(MAKE) --no-print-directory test-packages
	@python3 tests/summary.py target/nextest/make-test/junit.xml target/nextest/make-window/junit.xml

# Prints how long a stage took once it ends (stage NAME, then the command).
stage = s=$$(date +%s); trap 'echo "== stage $(1): $$(( $$(date +%s) - s )) s"' EXIT;

## Every system package `make test` needs, in one apt run.
deps-all: deps
	$(call apt_ensure,$(APT_BROWSER) $(APT_FONTS) $(APT_WINDOW) $(APT_PACKAGE))

## The long runs: a 10-minute soak (steady load, readers, exports, stalled streams),
## many SIGKILL rounds, more property-test cases, and 10 minutes of fuzzing per target.
soak:
	HOOKSCOPE_SOAK_SECONDS=600 cargo test --release -p hookscope-cli --test cli soak -- --ignored --nocapture
	HOOKSCOPE_KILL_ROUNDS=40 PROPTEST_CASES=20000 cargo test --release --workspace -- kill prop
	$(MAKE) test-fuzz FUZZ_SECONDS=600

## Figures, not pass/fail: the writer alone, ingest vs a no-op handler, a store of a million
## events, export, forgetting, following a relay.
bench: ui tests/browser/node_modules/.package-lock.json
	$(call apt_ensure,$(APT_BENCH) $(APT_BROWSER))
	cargo bench -p hookscope-cli --bench writer --bench capture --bench follow
	# The binaries `make build` and `make packages` make: one release build for both.
	cargo build --release --workspace --bins --features hookscope-desktop/custom-protocol
	cd tests/browser && HOOKSCOPE_BIN=$(CURDIR)/target/release/hookscope npx playwright test -c bench.config.ts
	$(call apt_ensure,$(APT_WINDOW))
	tests/desktop/measure.sh

clean:
	cargo clean

#!/usr/bin/env bash
# `make bench` (desktop part): figures, not pass/fail. Under Xvfb, starts the release
# desktop app with an empty data folder and prints
# - cold start: process start to "Webhook URL:" (the listener is accepting deliveries),
#   median of 5 starts;
# - idle memory after 10 s: the app and its WebKit processes (RSS and PSS);
# - the packages' sizes, when `make packages` has built them.
set -euo pipefail
cd "$(dirname "$0")/../.."
app=${HOOKSCOPE_DESKTOP_BIN:-target/release/hookscope-desktop}
[ -x "$app" ] || { echo "build it first: make build" >&2; exit 1; }
# A private X server, so the figures do not depend on the desktop this runs in.
if [ -z "${HOOKSCOPE_MEASURE_UNDER_XVFB:-}" ]; then
  HOOKSCOPE_MEASURE_UNDER_XVFB=1 exec xvfb-run -a -s "-screen 0 1400x900x24" "$0" "$@"
fi

tree_pids() { # a pid and all its descendants
  local pid=$1; echo "$pid"
  for child in $(pgrep -P "$pid" || true); do tree_pids "$child"; done
}

measure() { # $1: a label; more environment for the app after it
  local label=$1; shift
  local starts=() data out pid
  for i in 1 2 3 4 5; do
    data=$(mktemp -d); out=$(mktemp)
    local t0; t0=$(date +%s%N)
    env "$@" HOOKSCOPE_DATA_DIR=$data HOOKSCOPE_INGEST=127.0.0.1:0 HOOKSCOPE_UI=127.0.0.1:0 HOOKSCOPE_LOG=error \
      "$app" >"$out" 2>/dev/null &
    pid=$!
    until grep -q '^Webhook URL:' "$out" 2>/dev/null; do sleep 0.005; done
    starts+=($(( ($(date +%s%N) - t0) / 1000000 )))
    if [ "$i" = 5 ]; then
      sleep 10
      local rss=0 pss=0 each=()
      for p in $(tree_pids "$pid"); do
        local r s
        r=$(awk '/^VmRSS/ {print $2}' /proc/$p/status)
        s=$(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup)
        rss=$(( rss + r )); pss=$(( pss + s ))
        each+=("$(cat /proc/$p/comm) $((s / 1024))")
      done
      echo "$label: idle memory after 10 s: RSS $((rss / 1024)) MiB, PSS $((pss / 1024)) MiB; PSS MiB per process: $(IFS=,; echo "${each[*]}")"
    fi
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data" "$out"
  done
  local sorted; sorted=$(printf '%s\n' "${starts[@]}" | sort -n | tr '\n' ' ')
  echo "$label: cold start to listening, 5 starts (ms, sorted): $sorted→ median $(printf '%s\n' "${starts[@]}" | sort -n | sed -n 3p) ms"
}

echo "## Desktop app (release build, Xvfb)"
measure "WebKit as Hookscope sets it (no GPU compositing, document viewer cache, no back-forward cache)"
measure "WebKit's defaults (for comparison)" HOOKSCOPE_WEBKIT_DEFAULTS=1
debs=$(ls target/debian/*.deb 2>/dev/null || true)
if [ -n "$debs" ]; then
  for deb in $debs; do echo ".deb: $(basename "$deb"), $(( $(stat -c %s "$deb") / 1024 )) KiB"; done
else
  echo ".deb: not built (make packages)"
fi

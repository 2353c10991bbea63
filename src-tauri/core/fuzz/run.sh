#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 30), starting from the fixtures and the kept
# regression inputs. A crash stops the run and leaves its input under artifacts/TARGET/:
# fix it, then copy the input into regressions/TARGET/ so every later run replays it.
set -euo pipefail
seconds="${1:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="$here/../../../fixtures"
cd "$here/.."

# Seeds: every fixture body, under each content type and encoding an input's first byte picks.
seeds="$here/target/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"
n=0
for body in "$fixtures"/*/*; do
  case "$body" in *.headers) continue ;; esac
  for claim in 0 1 2 4; do
    { printf "\\x0$claim"; cat "$body"; } > "$seeds/$n-$claim"
  done
  n=$((n + 1))
done

for target in decode export_import; do
  corpus="$here/target/corpus/$target"
  mkdir -p "$corpus" "$here/regressions/$target"
  log="$here/target/$target.log"
  echo "fuzzing $target for ${seconds}s ($n fixtures as seeds, $(ls "$here/regressions/$target" | wc -l) regression inputs)"
  if ! cargo fuzz run -s none --features fuzzing "$target" "$corpus" "$here/regressions/$target" "$seeds" -- \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 > "$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz target $target failed: the input is under $here/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  speed=$(grep -o 'exec/s: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  echo "fuzz $target: $runs executions (${speed}/s), $cov, no crash"
done

#!/usr/bin/env bash
# `make test-packages`: the two packages a user installs, on this machine. Checks their
# sizes and dependencies, installs both, runs `hookscope --version`, the hookscope
# service's command line (as an unprivileged user, as a relay taking a delivery and
# serving it to a follower) and the window under Xvfb, then purges both and checks that
# nothing is left. Run as root (make test-packages uses sudo when needed).
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "== $*"; }

cli=$(ls target/debian/hookscope_*.deb)
desktop=$(ls target/debian/hookscope-desktop_*.deb)
# Shipped (release) packages stay under 10 MiB; `make test` installs packages of its
# unoptimised test build, which are larger (HOOKSCOPE_PACKAGE_MIB sets the bound).
limit_mib=${HOOKSCOPE_PACKAGE_MIB:-10}
for deb in "$cli" "$desktop"; do
  size=$(stat -c %s "$deb")
  say "$(basename "$deb"): $(awk "BEGIN { printf \"%.2f\", $size / 1048576 }") MiB"
  [ "$size" -lt $((limit_mib * 1024 * 1024)) ] || fail "$(basename "$deb") is $limit_mib MiB or more"
done
cli_depends=$(dpkg-deb -f "$cli" Depends)
say "hookscope depends on: $cli_depends"
if grep -Eiq 'gtk|webkit|appindicator|soup' <<<"$cli_depends"; then
  fail "the command's package pulls in GUI libraries: $cli_depends"
fi
grep -q '\bhookscope\b' <<<"$(dpkg-deb -f "$desktop" Depends)" || fail "hookscope-desktop does not depend on hookscope"

for package in hookscope hookscope-desktop; do
  if dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
    fail "$package is already installed here: this test installs and purges it, so it stops"
  fi
done

work=$(mktemp -d)
# The service's user reaches its folder inside.
chmod 755 "$work"
pids=()
# The processes started by $1, and theirs (the window runs under dbus-run-session and
# xvfb-run): only what this test started is stopped, never a Hookscope of the user's.
descendants() {
  local child
  for child in $(pgrep -P "$1"); do echo "$child"; descendants "$child"; done
}
cleanup() {
  # shellcheck disable=SC2046 # one pid per word
  for pid in "${pids[@]}"; do kill $(descendants "$pid") "$pid" 2>/dev/null || true; done
  dpkg --purge hookscope-desktop hookscope >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits up to $3 tenths of a second for a line matching $2 in the file $1, while the
# process started last still runs; fails when it never came.
wait_for_line() {
  for _ in $(seq "$3"); do
    grep -q "$2" "$1" && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "$2" "$1"
}

say "installing both"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "./$cli" "./$desktop" >/dev/null
version=$(hookscope --version)
[ "$version" = "hookscope $(dpkg-deb -f "$cli" Version | cut -d- -f1)" ] || fail "hookscope --version says $version"
say "$version"
for file in /usr/share/man/man1/hookscope.1.gz /usr/share/man/man1/hookscope-serve.1.gz \
  /usr/share/bash-completion/completions/hookscope /usr/share/zsh/vendor-completions/_hookscope \
  /usr/share/fish/vendor_completions.d/hookscope.fish /etc/default/hookscope \
  /usr/share/applications/hookscope-desktop.desktop /usr/bin/hookscope-desktop; do
  [ -s "$file" ] || fail "$file is missing"
done
zcat /usr/share/man/man1/hookscope-serve.1.gz | grep -q 'HOOKSCOPE_SYNC' || fail "the man page does not describe serve --sync"
bash -c 'source /usr/share/bash-completion/completions/hookscope && complete -p hookscope' >/dev/null \
  || fail "the bash completion does not load"

unit=$(dpkg -L hookscope | grep -E '/systemd/system/hookscope\.service$') || fail "no hookscope.service"
say "service unit: $unit"
grep -q '^DynamicUser=yes' "$unit" && grep -q '^StateDirectory=hookscope' "$unit" || fail "the unit does not keep its data in its state directory"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" 2>&1 | grep -v 'Failed to prepare\|mount\|not running' | grep . && fail "systemd-analyze verify complains" || true
fi

say "the service's command line, as an unprivileged user"
execstart=$(sed -n 's/^ExecStart=//p' "$unit")
data="$work/state"
install -d -o nobody -m 700 "$data"
# The unit's environment and /etc/default/hookscope, on free ports (another Hookscope may
# run on this machine); the data folder is what StateDirectory= gives the service.
setting() { bash -c "set -a; source /etc/default/hookscope; printf '%s' \"\${$1:-}\""; }
[[ "$(setting HOOKSCOPE_SYNC)" == 127.0.0.1:* && "$(setting HOOKSCOPE_PROXY)" == 127.0.0.1:* ]] \
  || fail "/etc/default/hookscope does not make a relay on loopback"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- env HOOKSCOPE_DATA_DIR="$data" HOOKSCOPE_TUNNEL="$(setting HOOKSCOPE_TUNNEL)" \
  HOOKSCOPE_INGEST=127.0.0.1:0 HOOKSCOPE_UI=127.0.0.1:0 HOOKSCOPE_PROXY=127.0.0.1:0 HOOKSCOPE_SYNC=127.0.0.1:0 \
  $execstart >"$work/service.out" 2>"$work/service.err" &
pids+=($!)
wait_for_line "$work/service.out" '^Sync token:' 200 || { cat "$work/service.err"; fail "the service printed no sync token"; }
webhook=$(sed -n 's/^Webhook URL: //p' "$work/service.out")
sync_url=$(sed -n 's/^Sync URL: //p' "$work/service.out")
sync_token=$(sed -n 's/^Sync token: //p' "$work/service.out")
curl -sf -X POST -H 'content-type: application/json' --data '{"from":"the package"}' "$webhook" >/dev/null \
  || fail "the service did not take a delivery"
curl -sf -H "Authorization: Bearer $sync_token" "$sync_url/sync/v1/deliveries" | grep -q '"from":"the package"' \
  || fail "the relay does not serve the delivery to a follower"
[ "$(stat -c %U "$data/hookscope.db")" = nobody ] || fail "the store is not the service user's"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || fail "the service did not stop cleanly"
say "took a delivery and served it to a follower; stopped cleanly"

say "the window, under Xvfb"
window_data="$work/window"
mkdir -p "$window_data"
HOOKSCOPE_DATA_DIR="$window_data" HOOKSCOPE_INGEST=127.0.0.1:0 HOOKSCOPE_UI=127.0.0.1:0 HOOKSCOPE_TUNNEL=off \
  dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" hookscope-desktop >"$work/window.out" 2>"$work/window.err" &
pids+=($!)
wait_for_line "$work/window.out" '^Webhook URL:' 300 || { cat "$work/window.err"; fail "the window's app printed no webhook URL"; }
curl -sf -X POST --data 'hello from the package test' "$(sed -n 's/^Webhook URL: //p' "$work/window.out")" >/dev/null \
  || fail "the window's listener did not take a delivery"
sleep 2
# The process name is cut to 15 characters.
app=""
for pid in $(descendants "${pids[-1]}"); do
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = hookscope-deskt ]; then app=$pid; break; fi
done
[ -n "$app" ] || fail "the window quit"
kill -TERM "$app"
for _ in $(seq 100); do kill -0 "$app" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$app" 2>/dev/null || fail "the window did not stop on SIGTERM within 10 s"
wait "${pids[-1]}" 2>/dev/null || true
say "the window started, took a delivery, and stopped"

say "purging both"
dpkg --purge hookscope-desktop hookscope >/dev/null
for path in /usr/bin/hookscope /usr/bin/hookscope-desktop /etc/default/hookscope "$unit" \
  /usr/share/man/man1/hookscope.1.gz /usr/share/applications/hookscope-desktop.desktop; do
  [ ! -e "$path" ] || fail "$path is still there after purging"
done
for package in hookscope hookscope-desktop; do
  ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'installed' || fail "$package is still installed"
done
say "packages installed, run and removed cleanly"

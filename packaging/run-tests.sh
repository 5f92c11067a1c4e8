#!/bin/bash
# The test command (`make test`; CI runs exactly that): the suite in a clean room.
#
# The suite runs with a fresh HOME, TMPDIR and XDG folders and an environment of our own, with the
# venv that setup built and nothing else, so that what a developer's machine happens to have (a
# venv elsewhere, ~/.config, a cache, a DISPLAY or bus address, PYTHONPATH) cannot make a test
# pass that would fail on a fresh machine. Reused, because setup or an earlier run filled them
# and each is verified on use: the guest kit (SCHEDCP_VM_CACHE, checked against its sha256
# manifest before every boot) and the packaging test's debootstrapped layers
# (SCHEDCP_DEBROOT_CACHE, keyed by their inputs).
#
#   bash packaging/run-tests.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
py="$PWD/$VENV/bin/python"
[ -x "$py" ] || { echo "run-tests: no $VENV; run \`make setup\` first" >&2; exit 2; }

kit_cache=$("$py" -c 'from schedcp_common.vm.kit import cache_dir; print(cache_dir())')
debroot_cache=${SCHEDCP_DEBROOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/schedcp/debroot}
# short: Unix socket paths (≤ 108 bytes) are made below it
room=$(mktemp -d "${TMPDIR:-/tmp}/sct-XXXXXX")
trap 'rm -rf "$room"' EXIT
mkdir -p "$room"/{home,t,cache,config,data,state,run}
chmod 700 "$room/run"
# TMPDIR is a /tmp like any other: polkitd and the test users reach the private buses' sockets
# that tests create in it
chmod 755 "$room"
chmod 1777 "$room/t"

echo "run-tests: clean room $room (kit cache $kit_cache)"
keep=()
for var in CI TERM SCHEDCP_SHARED_VM SCHEDCP_LONG_VM SCHEDCP_FAULT_TRIALS SCHEDCP_SYSTEM_TEST; do
    [ -n "${!var:-}" ] && keep+=("$var=${!var}")
done
env -i "${keep[@]}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 HOME="$room/home" TMPDIR="$room/t" \
    XDG_CACHE_HOME="$room/cache" XDG_CONFIG_HOME="$room/config" XDG_DATA_HOME="$room/data" \
    XDG_STATE_HOME="$room/state" XDG_RUNTIME_DIR="$room/run" \
    SCHEDCP_VM_CACHE="$kit_cache" SCHEDCP_DEBROOT_CACHE="$debroot_cache" \
    "$py" -m pytest -p no:cacheprovider "$@"

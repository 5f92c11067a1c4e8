#!/bin/bash
# Idempotent set-up for development, tests and the demo on Debian 12:
#   1. Debian packages (apt only when one is missing), 2. the project venv, 3. the sched_ext guest kit.
# Used by `make setup` (and so by `make test` / `make demo`). Root or sudo is needed only for apt.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
log() { echo "[setup] $*"; }

# qemu/busybox/cpio: the micro-VM. python3-venv: the venv is built on Debian's python3, which can
# load SQLite extensions and starts faster inside the guest than pyenv's. clang-19: compiles BPF
# schedulers. gcc/libc6-dev: the workload probe. linux-source-6.12 + libelf/zlib: the kernel's
# example schedulers, built as stand-ins for packaged scx_* binaries in tests.
# dbus/polkitd: the helper's tests run a private system bus with the real polkitd.
# The tray's tests: Xvfb + openbox + trayer (a real tray), dunst/xfce4-notifyd (notifications),
# gnome-keyring (Secret Service), xdotool/x11-utils/imagemagick (clicks, window ids,
# screenshots) and the X libraries Qt's xcb plugin loads.
# The .deb: debhelper/dh-python/pybuild, lintian, appstream; debootstrap for the install test.
# The workload catalogue (app/schedcp/workloads/): third-party programs run in the guest with
# their own measurement output: rt-tests (cyclictest, hackbench), stress-ng, linux-perf
# (perf bench sched), sqlite3, gzip/xz/bzip2/coreutils (batch jobs). The other tuners SchedCP
# lives with, tested as the real programs on the test buses: power-profiles-daemon, gamemode.
PKGS=(qemu-system-x86 busybox-static cpio python3-venv python3-dev make clang-19 gcc libc6-dev
      linux-source-6.12 xz-utils libelf-dev zlib1g-dev dbus dbus-daemon polkitd pkexec
      xvfb openbox trayer dunst xfce4-notifyd gnome-keyring libsecret-tools xdotool x11-utils
      imagemagick libegl1 libgl1 libfontconfig1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
      libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
      libxcb-xinerama0 libxcb-xkb1
      debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools python3-wheel
      binutils lintian appstream debootstrap
      rt-tests stress-ng linux-perf sqlite3 gzip bzip2
      power-profiles-daemon gamemode)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    log "installing ${missing[*]}"
    $SUDO apt-get update -q -o DPkg::Lock::Timeout=120 >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=120 \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=$VENV/.schedcp-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    /usr/bin/python3 -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing schedcp and its test dependencies into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[dev]'
    echo "$want" >"$stamp"
fi

# Prefers a verified prebuilt kit (SCHEDCP_SHARED_VM or ../shared/vm); else builds (~25 min).
log "guest kit: $("$VENV/bin/schedcp" vm-kit --build)"

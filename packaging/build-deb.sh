#!/bin/bash
# Build the Debian packages schedcp-helper (all) and schedcp (amd64) with debhelper + pybuild.
#   packaging/build-deb.sh [OUT_DIR]        (default: dist/; `make deb` runs this)
# 1. stages the working tree (tracked + untracked, not ignored files) with packaging/debian as
#    debian/; 2. fills debian/vendor with the app's bundled libraries (pip, the only network use;
#    cached by the requirements' hash under ~/.cache/schedcp/deb, so a warm build is offline);
# 3. dpkg-buildpackage -b. Needs: debhelper dh-python pybuild-plugin-pyproject python3-all
#    python3-setuptools python3-wheel python3-venv binutils (readelf) fakeroot.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(realpath -m "${1:-dist}")
CACHE=${SCHEDCP_DEB_CACHE:-$HOME/.cache/schedcp/deb}
log() { echo "[build-deb] $*" >&2; }
mkdir -p "$OUT" "$CACHE"
VERSION=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/schedcp-deb.XXXXXX")
[ -n "${SCHEDCP_DEB_KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/schedcp-$VERSION

log "staging sources into $SRC"
mkdir -p "$SRC"
git ls-files -z --cached --others --exclude-standard \
    | grep -zv '^packaging/debian/\|^tests/\|^bench/\|^docs/' \
    | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$SRC"
cp -a packaging/debian "$SRC/debian"
# bookworm's setuptools is 66: no PEP 639 `license = "..."` string and no >=68; same metadata.
sed -i -e 's/^license = "\(.*\)"$/license = { text = "\1" }/' \
       -e 's/"setuptools>=68"/"setuptools>=66"/' "$SRC/pyproject.toml"

# the vendored bundle, keyed by the requirements, the pruning rules and the Python version
key=$(cat packaging/vendor-requirements.txt packaging/prune_vendor.py <(/usr/bin/python3 -V) \
      | sha256sum | cut -c1-16)
VENDOR=$CACHE/vendor-$key
if [ ! -d "$VENDOR" ]; then
    log "vendoring (pip, cold: a few minutes) into $VENDOR"
    rm -rf "$CACHE"/vendor-*.tmp "$CACHE/pipvenv"
    /usr/bin/python3 -m venv "$CACHE/pipvenv"
    "$CACHE/pipvenv/bin/pip" install -q --disable-pip-version-check --no-compile \
        --only-binary=:all: --target "$VENDOR.tmp" -r packaging/vendor-requirements.txt \
        2> >(grep -v "^WARNING: Location .* is ignored" >&2)
    /usr/bin/python3 packaging/prune_vendor.py "$VENDOR.tmp"
    rm -rf "$CACHE/pipvenv"
    find "$VENDOR.tmp" -name __pycache__ -prune -exec rm -rf {} +
    mv "$VENDOR.tmp" "$VENDOR"
    # older bundles are dead weight
    find "$CACHE" -maxdepth 1 -name 'vendor-*' ! -name "vendor-$key" -exec rm -rf {} +
else
    log "vendored bundle: cached $VENDOR"
fi
cp -a "$VENDOR" "$SRC/debian/vendor"

log "dpkg-buildpackage"
# a clean PATH: pybuild must find Debian's python3.11, not a pyenv/venv one
( cd "$SRC" && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -b -us -uc --no-sign >"$WORK/build.log" 2>&1 ) || {
    cp "$WORK/build.log" "$OUT/build-deb.log"; grep -n -m8 "error:\|^E: \|warning:" "$WORK/build.log" >&2
    echo "[build-deb] FAILED: full log in $OUT/build-deb.log" >&2; exit 1; }
cp "$WORK"/*.deb "$OUT"/
cp "$WORK/build.log" "$OUT/build-deb.log"
for d in "$WORK"/*.deb; do echo "$OUT/$(basename "$d")"; done

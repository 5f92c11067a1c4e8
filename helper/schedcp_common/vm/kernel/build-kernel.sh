#!/bin/bash
# Build SchedCP's sched_ext guest kit from Debian's linux-source-6.12:
#   bzImage-<release>   x86_64 guest kernel (defconfig + kvm_guest.config + scx-guest.fragment)
#   config-<release>    its .config
#   bin/bpftool         bpftool from the same tree (static libbpf 1.5)
#   lib/libbpf.so*      libbpf 1.5 (Debian 12's 1.1 lacks .struct_ops.link)
#   include/bpf/*.h     libbpf headers, include/vmlinux.h from the kernel's BTF
#   MANIFEST.sha256     what `schedcp vm-kit` verifies before every use
#
#   build-kernel.sh CACHE_DIR    -> CACHE_DIR/<kernel release>/ (sources in CACHE_DIR/src)
# (root or sudo for apt; ~25 min on 2 cores)
# Env: JOBS (nproc), SKIP_APT=1 (packages already there).
# The kit is normally obtained by `schedcp vm-kit`, which prefers a verified prebuilt copy.
set -euo pipefail
CACHE=${1:?usage: build-kernel.sh CACHE_DIR}
SRCROOT=$CACHE/src
JOBS=${JOBS:-$(nproc)}
HERE=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive

PKGS="linux-source-6.12 clang-19 llvm-19 lld-19 dwarves libelf-dev bc flex bison build-essential
      libssl-dev cpio xz-utils zstd pkg-config libcap-dev zlib1g-dev"
if [ "${SKIP_APT:-0}" != 1 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $PKGS
fi

mkdir -p "$SRCROOT"
SRC=$SRCROOT/linux-source-6.12
log() { echo "[build-kernel] $(date +%T) $*"; }
if [ ! -f "$SRC/Makefile" ]; then
    log "unpacking /usr/src/linux-source-6.12.tar.xz"
    tar -C "$SRCROOT" -xf /usr/src/linux-source-6.12.tar.xz
fi
cd "$SRC"
# LLVM 19's unversioned tools first: the tools/ feature probes and the build must agree.
export PATH=/usr/lib/llvm-19/bin:$PATH
LLVM=(CLANG=clang LLC=llc LLVM_STRIP=llvm-strip)

log "configuring"
make -s x86_64_defconfig
make -s kvm_guest.config
scripts/kconfig/merge_config.sh -m .config "$HERE/scx-guest.fragment" >/dev/null
make -s olddefconfig
for opt in SCHED_CLASS_EXT BPF_SYSCALL BPF_JIT DEBUG_INFO_BTF 9P_FS OVERLAY_FS SCHEDSTATS PROC_EVENTS; do
    grep -q "^CONFIG_$opt=y" .config || { echo "CONFIG_$opt did not stick" >&2; exit 1; }
done
grep -q '^# CONFIG_JUMP_LABEL is not set' .config || { echo "JUMP_LABEL must be off" >&2; exit 1; }

log "building bzImage with $JOBS jobs"
make -s -j"$JOBS" bzImage
REL=$(make -s kernelrelease)

log "building bpftool and libbpf"
make -s -C tools/bpf/bpftool -j"$JOBS" "${LLVM[@]}" >/dev/null
rm -rf "$SRCROOT/libbpf"; mkdir -p "$SRCROOT/libbpf/build"
# lower-case prefix/libdir are the variables tools/lib/bpf/Makefile honours (never /usr/local)
make -s -C tools/lib/bpf -j"$JOBS" OUTPUT="$SRCROOT/libbpf/build/" prefix="$SRCROOT/libbpf" \
     libdir="$SRCROOT/libbpf/lib" install >/dev/null

OUT=$CACHE/$REL
log "assembling the kit in $OUT"
TMP=$(mktemp -d "$CACHE/.kit.XXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/bin" "$TMP/lib" "$TMP/include"
install -m644 arch/x86/boot/bzImage "$TMP/bzImage-$REL"
install -m644 .config "$TMP/config-$REL"
install -m755 tools/bpf/bpftool/bpftool "$TMP/bin/bpftool"
cp -a "$SRCROOT"/libbpf/lib/libbpf.so* "$TMP/lib/"
cp -a "$SRCROOT/libbpf/include/bpf" "$TMP/include/bpf"
"$TMP/bin/bpftool" btf dump file vmlinux format c >"$TMP/include/vmlinux.h"
LIBSO=$(cd "$TMP" && ls lib/libbpf.so.*.*.*)
(cd "$TMP" && sha256sum "bzImage-$REL" bin/bpftool "$LIBSO" include/vmlinux.h "config-$REL" >MANIFEST.sha256)
rm -rf "$OUT"; mv "$TMP" "$OUT"
log "done: $OUT (kernel $REL)"

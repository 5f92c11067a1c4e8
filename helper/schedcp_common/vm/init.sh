#!/bin/busybox sh
# SchedCP guest init (PID 1 of the micro-VM). Mounts the host root read-only over 9p with a tmpfs
# overlay, the shared output folder read-write, runs /schedcp/run.sh as root in that root, prints
# "SCHEDCP_RC_<nonce>=<status>" on the console and powers off. The nonce comes with each run, so
# nothing the command prints can fake its exit status.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
. /schedcp/params   # NONCE, OUTPATH, CWD, NODENAME

finish() { echo "SCHEDCP_RC_${NONCE}=$1"; sync; poweroff -f; }
die() { echo "schedcp-guest: $*"; finish 254; }

# Host kernels ship 9p/overlay as modules: load those the host copied in, in dependency order.
if [ -f /schedcp/modules ]; then
    while read -r m; do insmod "/schedcp/mod/$m" 2>/dev/null; done </schedcp/modules
fi

mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /host \
    || die "cannot mount the host root over 9p"
mount -t tmpfs -o size=50% tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot \
    || die "cannot mount the overlay root"
R=/newroot
for m in proc sys dev; do mount --move /$m $R/$m; done
mount -t tmpfs tmpfs $R/run
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
ln -sf /proc/self/fd $R/dev/fd
mount -t bpf bpf $R/sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null

mkdir -p $R/mnt/out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out $R/mnt/out \
    || die "cannot mount the output folder"
if [ -n "$OUTPATH" ]; then  # the output folder also appears at its host path
    mkdir -p "$R$OUTPATH" && mount -o bind $R/mnt/out "$R$OUTPATH"
fi
mkdir -p $R/run/schedcp && cp /schedcp/run.sh $R/run/schedcp/run.sh
: > $R/run/schedcp/micro-vm  # in_guest(); the hostname is the host's: nothing says "trial"
hostname "${NODENAME:-localhost}"

SH=/bin/bash; [ -x $R$SH ] || SH=/bin/sh
chroot $R /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    $SH -c "cd \"\$1\" 2>/dev/null || cd /mnt/out; . /run/schedcp/run.sh" schedcp "$CWD"
finish $?

"""Run one command as root in a throwaway qemu guest, and always tear the guest down.

Plain qemu + a busybox initramfs rather than virtme-ng: it boots to the command in ~4 s instead
of ~13 s, needs no udev or extra venv, and we control every mount. The host root is shared
read-only over 9p under a tmpfs overlay; one host folder is shared read-write (at ``/mnt/out``
and at its own host path, which is also the command's cwd). The command's output streams back
over the serial console; its exit status comes back on a line tagged with a per-run nonce.

No qemu outlives a run: qemu gets PR_SET_PDEATHSIG(SIGKILL), runs in its own process group
(so a terminal's Ctrl-C reaches only us), and is killed in ``finally`` on timeout, interrupt
or any error.
"""

from __future__ import annotations

import ctypes
import enum
import hashlib
import os
import platform
import secrets
import selectors
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .kit import Kit, cache_dir, find_kit

INIT_SCRIPT = Path(__file__).with_name("init.sh")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
QEMU = "qemu-system-x86_64"
# Modules a distribution kernel needs in the initramfs to reach the host root (dependency order
# is taken from modules.dep); built-ins are simply absent there.
HOST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
# qemu's seccomp filter: a guest that escapes into qemu cannot exec, setuid, or change limits
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"


# "you are the micro-VM": a file init writes, not a kernel argument nor the hostname, so a
# scheduler under test cannot tell from BPF (which reads both easily) that it is on trial
GUEST_MARK = Path("/run/schedcp/micro-vm")


def in_guest(mark: Path = GUEST_MARK) -> bool:
    """Whether this machine is a SchedCP micro-VM: the verifier then runs its kernel-verifier
    and dynamic stages in the running kernel instead of booting a VM inside this one (TCG
    inside TCG crawls). The micro-VM's init writes the mark, and so does the init shim of the
    whole-system test machine (tests/system). It counts only as root's: a regular file owned by
    root, in a root-owned folder nobody else may write (``/run`` is a tmpfs only an init fills
    at boot), so no user can make the helper load untried code into a real machine's kernel."""
    try:
        st, folder = os.lstat(mark), os.stat(mark.parent)
    except OSError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_uid == 0 and folder.st_uid == 0
            and not folder.st_mode & 0o022)


class Outcome(enum.Enum):
    EXITED = "exited"  # the command ran; returncode is its exit status
    TIMEOUT = "timeout"  # killed at the deadline (returncode 124, as timeout(1))
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM to us (returncode 130)
    GUEST_DIED = "guest-died"  # no status came back: panic, triple fault, qemu crash (255)
    SETUP_FAILED = "setup-failed"  # the guest could not mount what it needs (254)


RETURN_CODES = {Outcome.TIMEOUT: 124, Outcome.INTERRUPTED: 130, Outcome.GUEST_DIED: 255}


class GuestError(Exception):
    """The guest could not be started; the message says what is wrong and how to fix it."""


@dataclass
class GuestConfig:
    kernel: Path
    kernel_config: Path | None = None  # its .config, to pick safe TCG threading
    cpus: int = 2
    memory: str = "2G"
    timeout: float = 600.0
    out_dir: Path = field(default_factory=Path.cwd)
    env: dict[str, str] = field(default_factory=dict)
    verbose: bool = False  # show the kernel's console messages
    modules_dir: Path | None = None  # /lib/modules/<release> for a distribution kernel
    root: Path = Path("/")  # the read-only tree the guest sees as its root (see guestroot)
    # Instruction-counted virtual time (single-threaded TCG, ``-icount shift=1,sleep=off``): the
    # guest clock advances 2 ns per instruction, so host load and timer jitter vanish and
    # latencies measure the guest scheduler's decisions in guest-virtual time, not host speed.
    virtual_time: bool = False


VIRTUAL_TIME_ICOUNT = "shift=1,sleep=off"  # 500 M guest instructions per virtual second


@dataclass
class GuestResult:
    returncode: int
    outcome: Outcome
    seconds: float
    accel: str
    message: str = ""


def kit_config(kit: Kit, **kw) -> GuestConfig:
    return GuestConfig(kernel=kit.bzimage, kernel_config=kit.config, **kw)


def default_config(**kw) -> GuestConfig:
    """The host's own kernel when it has sched_ext (a user's machine), else the cached kit."""
    rel = platform.release()
    host_image = Path(f"/boot/vmlinuz-{rel}")
    if Path("/sys/kernel/sched_ext").is_dir() and os.access(host_image, os.R_OK):
        cfg = Path(f"/boot/config-{rel}")
        return GuestConfig(
            kernel=host_image,
            kernel_config=cfg if cfg.is_file() else None,
            modules_dir=Path(f"/lib/modules/{rel}"),
            **kw,
        )
    return kit_config(find_kit(), **kw)


def check_bzimage(path: Path) -> None:
    """Refuse early what qemu would fail on obscurely: a missing file or not an x86 bzImage."""
    try:
        with path.open("rb") as f:
            head = f.read(0x210)
    except FileNotFoundError:
        raise GuestError(f"kernel image {path} does not exist") from None
    except OSError as e:
        raise GuestError(f"kernel image {path} cannot be read: {e.strerror}") from None
    if len(head) < 0x206 or head[0x1FE:0x200] != b"\x55\xaa" or head[0x202:0x206] != b"HdrS":
        raise GuestError(
            f"kernel image {path} is not an x86 bzImage (no boot signature/HdrS header); "
            "it is corrupt or the wrong file: pass a bzImage, or run `schedcp vm-kit`"
        )


def mttcg_safe(kernel_config: Path | None) -> bool:
    """Multi-threaded TCG only with JUMP_LABEL off: static-key patching while a scheduler
    (un)loads Oopses the guest otherwise (measured in ../shared/vm/README.md)."""
    if kernel_config is None or not kernel_config.is_file():
        return False
    return "# CONFIG_JUMP_LABEL is not set" in kernel_config.read_text(errors="replace")


_kvm: bool | None = None


def kvm_usable() -> bool:
    """Whether KVM really runs a vCPU (asked once per process)."""
    global _kvm
    if _kvm is None:
        _kvm = probe_kvm()
    return _kvm


def probe_kvm(timeout: float = 60.0) -> bool:
    """/dev/kvm may open and still fail at the first MSR write (nested KVM here aborts qemu while
    it resets the machine), so ask qemu itself: its monitor answers only after that reset. Not
    a timer: on a busy host qemu can take seconds to get there (a 0.5 s "still alive" check
    once picked KVM under load and the guest then died)."""
    if not (os.access("/dev/kvm", os.R_OK | os.W_OK) and shutil.which(QEMU)):
        return False
    p = subprocess.Popen(
        [QEMU, "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "64", "-S",
         "-display", "none", "-nodefaults", "-no-reboot", "-monitor", "stdio"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        out, _ = p.communicate(b"info status\nquit\n", timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return False
    return p.returncode == 0 and b"VM status" in out


def _busybox() -> Path:
    for c in BUSYBOX_CANDIDATES:
        p = Path(c)
        if p.is_file() and b"/ld-linux" not in p.read_bytes()[:4096]:
            return p
    raise GuestError("the guest init needs a static busybox: apt-get install busybox-static")


def resolve_modules(modules_dir: Path, wanted: tuple[str, ...] = HOST_MODULES) -> list[Path]:
    """The module files (dependencies first) that ``wanted`` needs, from ``modules.dep``."""
    dep_file = modules_dir / "modules.dep"
    if not dep_file.is_file():
        return []
    deps: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for line in dep_file.read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
        base = Path(mod).name.split(".ko")[0].replace("-", "_")
        names[base] = mod
    order: list[str] = []

    def visit(mod: str) -> None:
        if mod in order:
            return
        for d in deps.get(mod, []):
            visit(d)
        order.append(mod)

    for w in wanted:
        if w in names:
            visit(names[w])
    return [modules_dir / m for m in order]


def _cpio(src: Path, dest: Path, compress: bool) -> None:
    files = subprocess.run(
        ["find", "."], cwd=src, check=True, capture_output=True
    ).stdout
    data = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=src, input=files,
        check=True, capture_output=True,
    ).stdout
    if compress:
        import gzip

        data = gzip.compress(data, compresslevel=1)
    dest.write_bytes(data)


def base_initramfs(cfg: GuestConfig) -> Path:
    """busybox + init (+ host kernel modules), cached by content; built once per kernel."""
    if not shutil.which("cpio"):
        raise GuestError("cpio is needed to build the guest initramfs: apt-get install cpio")
    busybox = _busybox()
    modules = resolve_modules(cfg.modules_dir) if cfg.modules_dir else []
    key = hashlib.sha256(INIT_SCRIPT.read_bytes())
    for p in (busybox, *modules):
        st = p.stat()
        key.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    dest = cache_dir() / "initramfs" / f"{key.hexdigest()[:16]}.cpio.gz"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for sub in ("bin", "proc", "sys", "dev", "schedcp/mod"):
            (root / sub).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        shutil.copy2(INIT_SCRIPT, root / "init")
        (root / "init").chmod(0o755)
        names = []
        for m in modules:
            name, data = m.name, m.read_bytes()
            if name.endswith(".xz"):
                import lzma

                name, data = name[:-3], lzma.decompress(data)
            elif name.endswith(".zst"):
                raise GuestError(f"{m}: zstd-compressed modules are not supported yet")
            (root / "schedcp" / "mod" / name).write_bytes(data)
            names.append(name)
        if names:
            (root / "schedcp" / "modules").write_text("\n".join(names) + "\n")
        tmp = dest.with_suffix(f".{os.getpid()}.tmp")
        _cpio(root, tmp, compress=True)
        tmp.rename(dest)
    return dest


def _run_script(command: str, env: dict[str, str]) -> str:
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    return "\n".join([*lines, command, ""])


def _die_with_parent() -> None:  # runs in the qemu child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def qemu_argv(cfg: GuestConfig, initrd: Path, name: str) -> tuple[list[str], str]:
    icount: list[str] = []
    if cfg.virtual_time:  # icount needs TCG, and single-threaded TCG at that
        accel, cpu, icount = "tcg,thread=single", "max", ["-icount", VIRTUAL_TIME_ICOUNT]
    elif kvm_usable():
        accel, cpu = "kvm", "host"
    else:
        accel = "tcg,thread=" + ("multi" if mttcg_safe(cfg.kernel_config) else "single")
        cpu = "max"
    loglevel = "loglevel=7" if cfg.verbose else "quiet loglevel=1"
    out = str(cfg.out_dir)
    return [
        QEMU, "-name", name, "-accel", accel, "-machine", "q35", "-cpu", cpu,
        "-smp", str(cfg.cpus), "-m", cfg.memory, *icount,
        "-kernel", str(cfg.kernel), "-initrd", str(initrd),
        "-append", f"console=ttyS0 {loglevel} panic=-1 oops=panic",
        "-fsdev", f"local,id=hostroot,path={cfg.root},security_model=none,readonly=on,"
        "multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,id=out,path={out},security_model=none",
        "-device", "virtio-9p-pci,fsdev=out,mount_tag=out",
        "-nic", "none", "-display", "none", "-vga", "none", "-monitor", "none",
        "-serial", "stdio", "-no-reboot", "-sandbox", SANDBOX,
    ], accel.split(",")[0]


def run(command: str, cfg: GuestConfig, on_output: Callable[[bytes], None]) -> GuestResult:
    """Boot, run ``command`` (a shell line) as root in the guest, stream its output, tear down."""
    check_bzimage(cfg.kernel)
    if not shutil.which(QEMU):
        raise GuestError(f"{QEMU} is not installed: apt-get install qemu-system-x86")
    if not cfg.out_dir.is_dir():
        raise GuestError(f"output folder {cfg.out_dir} does not exist")
    base = base_initramfs(cfg)
    nonce = secrets.token_hex(8)
    marker = f"SCHEDCP_RC_{nonce}=".encode()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="schedcp-vm-") as d:
        run_root = Path(d) / "root"
        (run_root / "schedcp").mkdir(parents=True)
        out = str(cfg.out_dir.resolve())
        (run_root / "schedcp" / "params").write_text(
            f"NONCE={nonce}\nOUTPATH={shlex.quote(out)}\nCWD={shlex.quote(out)}\n"
            f"NODENAME={shlex.quote(platform.node() or 'localhost')}\n"
        )
        (run_root / "schedcp" / "run.sh").write_text(_run_script(command, cfg.env))
        per_run = Path(d) / "run.cpio"
        _cpio(run_root, per_run, compress=False)
        initrd = Path(d) / "initrd"  # the kernel unpacks concatenated archives in order
        with initrd.open("wb") as f:
            data = base.read_bytes()
            f.write(data + b"\0" * (-len(data) % 4))  # archives start 4-byte aligned
            f.write(per_run.read_bytes())
        argv, accel = qemu_argv(cfg, initrd, f"schedcp-{nonce}")
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent, process_group=0,
        )
        try:
            status, qemu_err = _pump(proc, marker, on_output, start + cfg.timeout)
        except KeyboardInterrupt:
            return GuestResult(130, Outcome.INTERRUPTED, time.monotonic() - start, accel,
                               "interrupted; the guest was shut down")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        seconds = time.monotonic() - start
    if status == "timeout":
        return GuestResult(124, Outcome.TIMEOUT, seconds, accel,
                           f"timed out after {cfg.timeout:g} s; the guest was killed")
    if status is None:
        detail = qemu_err.decode(errors="replace").strip()
        return GuestResult(255, Outcome.GUEST_DIED, seconds, accel,
                           "the guest died before the command finished (kernel panic or qemu "
                           "failure)" + (f": {detail}" if detail else ""))
    if status == 254:
        return GuestResult(254, Outcome.SETUP_FAILED, seconds, accel,
                           "the guest could not set up its filesystems (see the output above)")
    return GuestResult(status, Outcome.EXITED, seconds, accel)


def _pump(proc: subprocess.Popen, marker: bytes, on_output: Callable[[bytes], None],
          deadline: float) -> tuple[int | str | None, bytes]:
    """Forward console lines until qemu exits; return (status | "timeout" | None, qemu stderr)."""
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    pending, err = b"", b""
    status: int | str | None = None
    open_streams = 2
    while open_streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout", err
        for key, _ in sel.select(timeout=min(remaining, 1.0)):
            chunk = os.read(key.fileobj.fileno(), 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            if key.data == "err":
                err += chunk
                continue
            pending += chunk.replace(b"\r", b"")
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if status is not None:
                    continue  # only the guest's power-off messages follow the status line
                idx = line.find(marker)
                if idx < 0:
                    on_output(line + b"\n")
                    continue
                if idx:
                    on_output(line[:idx] + b"\n")
                status = int(line[idx + len(marker):].strip() or b"255")
    if pending and status is None:
        on_output(pending)
    return status, err

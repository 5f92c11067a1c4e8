"""A real desktop-less system D-Bus stack for tests: a private dbus-daemon with the system bus
policy (ours included), the real polkitd on it with our actions and a test rules file, test
users, and the helper service as root with a throwaway state folder.

Also the test users' Python: they cannot read /root (where the project venv and maybe the
checkout live), so their clients run from a Debian-python venv under /opt/schedcp-test with
dbus-next and a world-readable copy of ``app/schedcp``.

Used by tests/helper/service (pytest fixtures) and bench/helper_dbus.py (plain calls).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from schedcp.privatebus import start_bus

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
POLICY_SRC = PACKAGING / "polkit" / "org.schedcp.Helper1.policy"
BUS_CONF_SRC = PACKAGING / "dbus" / "org.schedcp.Helper1.conf"
# the bus policy of the stand-ins for programs Debian does not ship (scx_loader)
STANDIN_CONF = ROOT / "tests" / "fixtures" / "dbus" / "org.scx.Loader.conf"
POLKIT_ACTIONS = Path("/usr/share/polkit-1/actions")
POLKIT_RULES = Path("/etc/polkit-1/rules.d")
POLKITD = Path("/usr/lib/polkit-1/polkitd")
USER_YES, USER_NO = "schedcp-yes", "schedcp-no"
USER_DETAILS = "schedcp-details"  # allowed exactly when the helper sent the details it must
USER_ROOT = Path("/opt/schedcp-test")
RULES = """// SchedCP tests: one user granted every helper action, one refused every one (even the
// read-status action every other user gets by the .policy defaults).
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.schedcp.helper.") == 0) {
        if (subject.user == "{yes}") return polkit.Result.YES;
        if (subject.user == "{no}") return polkit.Result.NO;
        // the details a deploy sends for the admin's dialog ($(name), $(artifact)) arrive
        // here: a garbage token names no scheduler and no artifact; calls without details
        // (Revert, Status) are refused for this user
        if (subject.user == "{details}")
            return (action.lookup("name") == "(unknown)" &&
                    action.lookup("artifact") == "(none)") ? polkit.Result.YES
                                                           : polkit.Result.NO;
    }
});
""".replace("{yes}", USER_YES).replace("{no}", USER_NO).replace("{details}", USER_DETAILS)

# A client run as a test user: JSON calls on stdin, one JSON result per call on stdout.
PROBE = r'''
import json, sys
from dbus_next import Variant
from schedcp.client import HelperClient, HelperError, plain
calls = eval(sys.stdin.read(), {"Variant": Variant, "__builtins__": {}})
out = []
with HelperClient() as c:
    for member, sig, body, *iface in calls:
        try:
            kw = {"interface": iface[0]} if iface else {}
            out.append({"ok": True, "body": plain(c.call(member, sig, body, 120, **kw))})
        except HelperError as e:
            out.append({"ok": False, "error": e.name, "message": e.message})
print(json.dumps(out))
'''


def ensure_user(name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True)
        return pwd.getpwnam(name).pw_uid


def user_python() -> Path:
    """Debian python venv with dbus-next, plus a fresh readable copy of app/schedcp."""
    venv = USER_ROOT / "venv"
    py = venv / "bin" / "python"
    if not (venv / ".ready").is_file():
        USER_ROOT.mkdir(parents=True, exist_ok=True)
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "dbus-next"], check=True)
        (venv / ".ready").write_text("dbus-next\n")
    lib = USER_ROOT / "lib"
    shutil.rmtree(lib / "schedcp", ignore_errors=True)
    shutil.copytree(ROOT / "app" / "schedcp", lib / "schedcp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (lib / "probe.py").write_text(PROBE)
    for p in [USER_ROOT, *USER_ROOT.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o044 | (0o011 if p.is_dir() else 0))
    return py


def owned_pids() -> set[int]:
    """The processes open stacks own (a test may restart the helper of a session's stack)."""
    return {p.pid for stack in OPEN for p in stack.procs.values() if p.poll() is None}


@dataclass(eq=False)
class Stack:
    dir: Path
    address: str
    state_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    installed: list[Path] = field(default_factory=list)
    log: Path | None = None
    uid_yes: int = 0
    uid_no: int = 0
    python: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}

    # -- the helper --------------------------------------------------------------------------
    def start_helper(self, timeout: float = 60.0, extra_env: dict | None = None) -> None:
        self.log = self.dir / "helper.log"
        env = {**self.env, **(extra_env or {})}
        f = self.log.open("a")
        p = subprocess.Popen(
            [sys.executable, "-m", "schedcp_helper.service", "--address", self.address,
             "--state-dir", str(self.state_dir)],
            stdout=subprocess.PIPE, stderr=f, env=env, text=True, cwd=ROOT)
        self.procs["helper"] = p
        line = _readline(p, timeout)
        if line.strip() != "ready":
            raise RuntimeError(f"helper did not start: {line!r}\n{self.log.read_text()[-3000:]}")

    def stop_helper(self, sig: int = 15) -> int:
        p = self.procs.pop("helper", None)
        if p is None:
            return 0
        if p.poll() is None:
            p.send_signal(sig)
        try:
            return p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()

    @property
    def helper_pid(self) -> int:
        return self.procs["helper"].pid

    # -- clients -----------------------------------------------------------------------------
    def as_user(self, user: str, calls: str, timeout: float = 180) -> list[dict]:
        """Run the raw calls (a Python literal of (member, signature, body[, interface])) as
        ``user`` from the test users' venv; returns one result dict per call."""
        env = {"DBUS_SYSTEM_BUS_ADDRESS": self.address, "PYTHONPATH": str(USER_ROOT / "lib"),
               "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        argv = [str(self.python), str(USER_ROOT / "lib" / "probe.py")]
        if user != "root":
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            argv = [runuser, "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()),
                    *argv]
        r = subprocess.run(argv, input=calls, capture_output=True, text=True, env=env,
                           timeout=timeout, cwd="/")
        if r.returncode != 0:
            raise RuntimeError(f"client as {user} failed: {r.stderr[-2000:]}")
        return json.loads(r.stdout)

    def client(self):
        from schedcp.client import HelperClient

        return HelperClient(self.address)

    def close(self) -> None:
        if self in OPEN:
            OPEN.remove(self)
        for name in ("helper", "polkitd", "dbus"):
            p = self.procs.pop(name, None)
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.installed:
            self.installed.clear()
            _LIVE[0] -= 1
            if _LIVE[0] == 0:  # the last stack of this process: the last user removes them
                (USERS / str(os.getpid())).unlink(missing_ok=True)
                if not _other_users():
                    for path in _INSTALLED:
                        path.unlink(missing_ok=True)
                _INSTALLED.clear()


def _readline(p: subprocess.Popen, timeout: float) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        return ""
    return p.stdout.readline()


def wait_name(address: str, name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["dbus-send", f"--bus={address}", "--print-reply",
                            "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus.NameHasOwner", f"string:{name}"],
                           capture_output=True, text=True)
        if "boolean true" in r.stdout:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not appear on {address}")


_INSTALLED: list[Path] = []  # files stacks put into the host's polkit folders
_LIVE = [0]  # stacks open in this process (test modules may each start one)
# test runs using the polkit files, one marker per process: two runs at once (a developer's
# and CI, or two worktrees) share the files, and only the last one out removes them
USERS = Path("/run/schedcp-test-stacks")


def _other_users() -> bool:
    alive = False
    for marker in USERS.glob("*") if USERS.is_dir() else []:
        if marker.name == str(os.getpid()):
            continue
        if marker.name.isdigit() and Path(f"/proc/{marker.name}").exists():
            alive = True
        else:
            marker.unlink(missing_ok=True)  # a run that died without closing
    return alive


def _install(src_text: str, dest: Path, stack: Stack) -> None:
    USERS.mkdir(parents=True, exist_ok=True)
    (USERS / str(os.getpid())).touch()
    if dest.exists() and dest.read_text() == src_text:
        if _other_users() and dest not in _INSTALLED:
            _INSTALLED.append(dest)  # a stack of another run put it there: shared from now on
        return  # otherwise a package's copy: leave it alone
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_text(src_text)
    tmp.replace(dest)
    _INSTALLED.append(dest)


OPEN: list[Stack] = []


def start_stack(helper: bool = True, includes: tuple[Path, ...] = ()) -> Stack:
    """dbus-daemon + polkitd (+ the helper). Callers must ``close()`` it. ``includes``: more
    bus configuration (e.g. a service folder for bus activation)."""
    if os.geteuid() != 0:
        raise RuntimeError("the D-Bus stack tests run as root (they start polkitd, add users)")
    for tool in ("dbus-daemon", "dbus-send", "runuser"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} is missing: apt-get install dbus")
    if not POLKITD.is_file():
        raise RuntimeError("polkitd is missing: apt-get install polkitd")
    d = Path(tempfile.mkdtemp(prefix="schedcp-bus-"))
    d.chmod(0o755)  # the test users must reach the socket
    sock = d / "system_bus_socket"
    state = d / "state"
    stack = Stack(d, f"unix:path={sock}", state)
    OPEN.append(stack)
    try:
        stack.uid_yes, stack.uid_no = ensure_user(USER_YES), ensure_user(USER_NO)
        ensure_user(USER_DETAILS)
        stack.python = user_python()
        _install(POLICY_SRC.read_text(), POLKIT_ACTIONS / POLICY_SRC.name, stack)
        _install(RULES, POLKIT_RULES / "49-schedcp-test.rules", stack)
        stack.installed = [POLKIT_ACTIONS / POLICY_SRC.name]
        _LIVE[0] += 1
        stack.procs["dbus"], _ = start_bus(d, sock, [BUS_CONF_SRC, STANDIN_CONF, *includes],
                                           [Path("/usr/share/dbus-1/system.d")])
        stack.procs["polkitd"] = subprocess.Popen(
            [str(POLKITD), "--no-debug"], env=stack.env, stdout=subprocess.DEVNULL,
            stderr=(d / "polkitd.log").open("w"))
        wait_name(stack.address, "org.freedesktop.PolicyKit1")
        if helper:
            stack.start_helper()
    except BaseException:
        stack.close()
        raise
    return stack

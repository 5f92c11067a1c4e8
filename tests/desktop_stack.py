"""A real headless desktop for tests: Xvfb + openbox, a tray host (trayer), a private session
bus, a notification daemon (dunst) with a recorder of what it was asked to show, and an unlocked
gnome-keyring Secret Service. Plain context managers (pytest fixtures and benchmarks wrap them);
every process they start runs in its own process group and is killed on exit.

    with xserver() as display, session_bus() as bus, notification_daemon(display, bus) as nd:
        ...                                  # DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=bus
        n = nd.wait_for(lambda n: n.summary.startswith("Applied"))
        nd.invoke(n.id, "revert")            # through dunst's context menu, like a person

Used by tests/app/desktop and tests/app/tray (both need the same processes).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

NOTIFY_IFACE = "org.freedesktop.Notifications"


class StackError(RuntimeError):
    """A desktop process could not be started (the message names the package to install)."""


def need(*tools: str) -> None:
    for t in tools:
        if not shutil.which(t):
            pkg = {"Xvfb": "xvfb", "dunstctl": "dunst", "gnome-keyring-daemon": "gnome-keyring",
                   "dbus-daemon": "dbus", "xdotool": "xdotool"}.get(t, t)
            raise StackError(f"{t} is missing: apt-get install {pkg}")


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies (a timeout's kill skips every
    ``finally``), so no daemon outlives the run."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _spawn(argv: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(argv, env={**os.environ, **(env or {})}, start_new_session=True,
                            preexec_fn=_die_with_parent, **kw)


def _kill(p: subprocess.Popen | None) -> None:
    """SIGTERM the process group, SIGKILL what is left after 3 s."""
    if p is None:
        return
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, sig)
        try:
            p.wait(wait)
            # the leader is gone; its group may not be (a forked child): one more sweep
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait(cond: Callable[[], object], timeout: float, what: str,
          proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.03)
    tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
    raise StackError(f"{what} did not come up within {timeout:.0f} s\n{tail}")


# -- X11 -------------------------------------------------------------------------------------
def _x_ready(display: str, check: Callable | None = None) -> bool:
    from Xlib import display as xdisplay
    from Xlib.error import DisplayError

    try:
        d = xdisplay.Display(display)
    except (DisplayError, OSError, ConnectionError):
        return False
    try:
        return True if check is None else bool(check(d))
    finally:
        d.close()


def _wm_running(d) -> bool:
    root = d.screen().root
    prop = root.get_full_property(d.intern_atom("_NET_SUPPORTING_WM_CHECK"), 0)
    return bool(prop and prop.value)


@contextmanager
def xserver(size: str = "1024x768x24", wm: bool = True) -> Iterator[str]:
    """Xvfb on a free display (it picks one itself: ``-displayfd``), plus openbox (EWMH:
    _NET_ACTIVE_WINDOW, focus). Yields the DISPLAY string, e.g. ":7"."""
    need("Xvfb", *(["openbox"] if wm else []))
    d = Path(tempfile.mkdtemp(prefix="schedcp-x-"))
    r, w = os.pipe()
    xvfb = wmp = None
    try:
        xvfb = _spawn(["Xvfb", "-displayfd", str(w), "-screen", "0", size, "-nolisten", "tcp",
                       "-noreset"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                      stderr=(d / "xvfb.log").open("w"))
        os.close(w)
        w = -1
        num = b""
        deadline = time.monotonic() + 20
        import select

        while not num.endswith(b"\n") and time.monotonic() < deadline:
            if select.select([r], [], [], 0.5)[0]:
                chunk = os.read(r, 16)
                if not chunk:
                    break
                num += chunk
        if not num.strip():
            raise StackError("Xvfb did not report a display: "
                             + (d / "xvfb.log").read_text(errors="replace")[-1000:])
        display = f":{int(num)}"
        _wait(lambda: _x_ready(display), 10, "Xvfb", xvfb, d / "xvfb.log")
        if wm:
            wmp = _spawn(["openbox", "--sm-disable"], {"DISPLAY": display},
                         stdout=subprocess.DEVNULL, stderr=(d / "openbox.log").open("w"))
            _wait(lambda: _x_ready(display, _wm_running), 15, "openbox", wmp,
                  d / "openbox.log")
        yield display
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
        _kill(wmp)
        _kill(xvfb)
        shutil.rmtree(d, ignore_errors=True)


@contextmanager
def tray_host(display: str) -> Iterator[subprocess.Popen]:
    """trayer docked at the bottom right; returns once it owns _NET_SYSTEM_TRAY_S0."""
    need("trayer")
    log = Path(tempfile.mkstemp(prefix="schedcp-trayer-", suffix=".log")[1])
    p = _spawn(["trayer", "--edge", "bottom", "--align", "right", "--widthtype", "pixel",
                "--width", "200", "--height", "32", "--SetDockType", "true"],
               {"DISPLAY": display}, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        def owned(d) -> bool:
            return d.get_selection_owner(d.intern_atom("_NET_SYSTEM_TRAY_S0")) != 0

        _wait(lambda: _x_ready(display, owned), 15, "trayer", p, log)
        yield p
    finally:
        _kill(p)
        log.unlink(missing_ok=True)


# -- D-Bus -----------------------------------------------------------------------------------
def name_has_owner(address: str, name: str) -> bool:
    r = subprocess.run(["dbus-send", f"--bus={address}", "--print-reply",
                        "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.NameHasOwner", f"string:{name}"],
                       capture_output=True, text=True)
    return "boolean true" in r.stdout


# Debian's session.conf minus the service directories: nothing is D-Bus activated behind a
# test's back (a client asking for org.freedesktop.secrets would otherwise start a keyring
# daemon that outlives the bus), and no limits a test could trip.
SESSION_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@contextmanager
def session_bus() -> Iterator[str]:
    """A private session bus (no service activation); yields its address (unix:path=...)."""
    need("dbus-daemon", "dbus-send")
    d = Path(tempfile.mkdtemp(prefix="schedcp-sbus-"))
    d.chmod(0o755)
    (d / "session.conf").write_text(SESSION_CONF.format(sock=d / "bus"))
    p = _spawn(["dbus-daemon", f"--config-file={d / 'session.conf'}", "--nofork",
                "--print-address=1"], stdout=subprocess.PIPE,
               stderr=(d / "dbus.log").open("w"), text=True)
    try:
        import select

        if not select.select([p.stdout], [], [], 10)[0]:
            raise StackError("dbus-daemon --session did not start: "
                             + (d / "dbus.log").read_text())
        address = p.stdout.readline().strip().split(",")[0]
        if not address:
            raise StackError("dbus-daemon --session died: " + (d / "dbus.log").read_text())
        yield address
    finally:
        _kill(p)
        shutil.rmtree(d, ignore_errors=True)


# -- notifications ---------------------------------------------------------------------------
@dataclass
class Shown:
    """One Notify call as the daemon got it, with what happened to it since."""

    id: int
    app_name: str
    summary: str
    body: str
    actions: dict[str, str]          # key -> label
    icon: str = ""
    timeout: int = -1
    at: float = 0.0                  # time.monotonic() of the call
    closed: int | None = None        # NotificationClosed reason
    invoked: list[str] = field(default_factory=list)   # ActionInvoked keys


class _Recorder:
    """A D-Bus monitor (BecomeMonitor, jeepney) recording Notify calls and their replies, and
    the daemon's NotificationClosed / ActionInvoked signals."""

    def __init__(self, address: str):
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        self.conn = open_dbus_connection(bus=address)
        rules = [f"type='method_call',interface='{NOTIFY_IFACE}',member='Notify'",
                 "type='method_return'", f"type='signal',interface='{NOTIFY_IFACE}'"]
        mon = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                          interface="org.freedesktop.DBus.Monitoring")
        self.conn.send(new_method_call(mon, "BecomeMonitor", "asu", (rules, 0)))
        self.items: list[Shown] = []
        self._pending: dict[tuple[str, int], tuple] = {}
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="notify-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from jeepney import HeaderFields as F
        from jeepney import MessageType

        while not self._stop:
            try:
                msg = self.conn.receive(timeout=0.2)
            except TimeoutError:
                continue
            except (OSError, EOFError, ValueError):
                return
            h = msg.header
            f = h.fields
            if h.message_type == MessageType.method_call:
                self._pending[(f.get(F.sender), h.serial)] = (time.monotonic(), msg.body)
            elif h.message_type == MessageType.method_return:
                call = self._pending.pop((f.get(F.destination), f.get(F.reply_serial)), None)
                if call and msg.body and isinstance(msg.body[0], int):
                    at, (app, _rid, icon, summary, body, actions, _hints, tmo) = call
                    pairs = dict(zip(actions[::2], actions[1::2], strict=False))
                    with self._cv:
                        self.items.append(Shown(msg.body[0], app, summary, body, pairs, icon,
                                                tmo, at))
                        self._cv.notify_all()
            elif h.message_type == MessageType.signal:
                member = f.get(F.member)
                with self._cv:
                    for s in self.items:
                        if msg.body and s.id == msg.body[0]:
                            if member == "NotificationClosed":
                                s.closed = msg.body[1]
                            elif member == "ActionInvoked":
                                s.invoked.append(msg.body[1])
                    self._cv.notify_all()

    def wait_for(self, pred: Callable[[Shown], bool], timeout: float) -> Shown:
        with self._cv:
            end = time.monotonic() + timeout
            while True:
                for s in self.items:
                    if pred(s):
                        return s
                left = end - time.monotonic()
                if left <= 0:
                    seen = [(s.id, s.summary) for s in self.items]
                    raise TimeoutError(f"no such notification within {timeout} s; seen: {seen}")
                self._cv.wait(left)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.conn.close()


# dunst 1.9 pipes its context menu ("#<label> (<summary>) [<id>,<key>]" per action, and URLs)
# into its `dmenu` command and invokes the line it prints; this stand-in prints the line naming
# the wanted "<id>,<key>" (written by `invoke`).
PICKER = """#!/bin/sh
want=$(cat "{pick}")
tee -a "{menu_log}" | grep -m1 -F "[$want]" || true
"""

DUNSTRC = """[global]
    monitor = 0
    follow = none
    dmenu = {picker}
    show_indicators = no
    timeout = 0
    font = Monospace 9
    notification_limit = 0
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
"""


@dataclass
class NotificationDaemon:
    """A running daemon: ``kind`` ("dunst"), its bus, and the recorder of what it showed."""

    kind: str
    bus: str
    display: str
    proc: subprocess.Popen
    recorder: _Recorder
    pick_file: Path

    @property
    def shown(self) -> list[Shown]:
        with self.recorder._cv:
            return list(self.recorder.items)

    def wait_for(self, pred: Callable[[Shown], bool], timeout: float = 10.0) -> Shown:
        return self.recorder.wait_for(pred, timeout)

    def displayed(self) -> int:
        """How many notifications the daemon has on screen now (dunstctl count displayed)."""
        r = self.ctl("count", "displayed")
        return int(r.stdout.strip() or 0)

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["dunstctl", *args], env=self.env, capture_output=True,
                              text=True, timeout=10)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DBUS_SESSION_BUS_ADDRESS": self.bus, "DISPLAY": self.display}

    def invoke(self, nid: int, key: str, timeout: float = 10.0) -> float:
        """Invoke action ``key`` of notification ``nid`` through dunst's context menu (as a
        person choosing it); returns seconds until the daemon emitted ActionInvoked."""
        try:  # the recorder may not have seen the Notify reply yet
            s = self.wait_for(lambda s: s.id == nid, timeout)
        except TimeoutError:
            raise KeyError(f"notification {nid} was never shown") from None
        if key not in s.actions:
            raise KeyError(f"notification {nid} has no action {key!r}: {s.actions}")
        before = len(s.invoked)
        self.pick_file.write_text(f"{nid},{key}")
        t0 = time.monotonic()
        r = self.ctl("context")
        if r.returncode != 0:
            raise StackError(f"dunstctl context failed: {r.stderr}")
        _wait(lambda: len(s.invoked) > before, timeout, f"ActionInvoked({key}) on {nid}")
        return time.monotonic() - t0


@contextmanager
def notification_daemon(display: str, bus: str, kind: str = "dunst"
                        ) -> Iterator[NotificationDaemon]:
    """dunst on ``bus`` drawing on ``display``; returns once it owns
    org.freedesktop.Notifications. Notifications never time out (tests decide)."""
    if kind != "dunst":
        raise ValueError(f"unsupported notification daemon {kind!r} (only dunst)")
    need("dunst", "dunstctl")
    d = Path(tempfile.mkdtemp(prefix="schedcp-dunst-"))
    pick = d / "pick"
    pick.write_text("")
    picker = d / "picker.sh"
    picker.write_text(PICKER.format(pick=pick, menu_log=d / "menu.log"))
    picker.chmod(0o755)
    (d / "dunstrc").write_text(DUNSTRC.format(picker=picker))
    env = {"DISPLAY": display, "DBUS_SESSION_BUS_ADDRESS": bus, "HOME": str(d),
           "XDG_CONFIG_HOME": str(d)}
    p = _spawn(["dunst", "-config", str(d / "dunstrc")], env, stdout=subprocess.DEVNULL,
               stderr=(d / "dunst.log").open("w"))
    rec = None
    try:
        _wait(lambda: name_has_owner(bus, NOTIFY_IFACE), 15, "dunst", p, d / "dunst.log")
        rec = _Recorder(bus)
        time.sleep(0.05)  # BecomeMonitor is asynchronous: let it take effect
        yield NotificationDaemon(kind, bus, display, p, rec, pick)
    finally:
        if rec is not None:
            rec.close()
        _kill(p)
        shutil.rmtree(d, ignore_errors=True)


# -- Secret Service --------------------------------------------------------------------------
@contextmanager
def secret_service(bus: str, home: Path, password: str = "schedcp-test"
                   ) -> Iterator[dict[str, str]]:
    """gnome-keyring-daemon (secrets component) on ``bus`` with its keyrings under ``home``,
    unlocked. Yields the environment a keyring client needs (DBUS_SESSION_BUS_ADDRESS, HOME,
    XDG_RUNTIME_DIR, XDG_DATA_HOME)."""
    need("gnome-keyring-daemon")
    home = Path(home)
    run = home / "run"
    for p in (home, run):
        p.mkdir(parents=True, exist_ok=True)
        p.chmod(0o700)
    env = {"DBUS_SESSION_BUS_ADDRESS": bus, "HOME": str(home), "XDG_RUNTIME_DIR": str(run),
           "XDG_DATA_HOME": str(home / ".local" / "share")}
    log = home / "gnome-keyring.log"
    # its control socket in a short folder of its own: under a deep test folder the path
    # passes the 108 bytes a Unix socket address holds and the daemon cannot bind it
    control = Path(tempfile.mkdtemp(prefix="kr-"))
    p = _spawn(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets",
                f"--control-directory={control}"], env, stdin=subprocess.PIPE,
               stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        p.stdin.write(password.encode())
        p.stdin.close()
        _wait(lambda: name_has_owner(bus, "org.freedesktop.secrets"), 15,
              "gnome-keyring-daemon", p, log)
        yield env
    finally:
        _kill(p)
        shutil.rmtree(control, ignore_errors=True)


# -- small X helpers the tests share -----------------------------------------------------------
def xdotool(display: str, *args: str) -> str:
    need("xdotool")
    r = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display},
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise StackError(f"xdotool {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def active_window(display: str) -> int | None:
    """_NET_ACTIVE_WINDOW of the root window (what openbox focused)."""
    from Xlib import X
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    try:
        prop = d.screen().root.get_full_property(d.intern_atom("_NET_ACTIVE_WINDOW"),
                                                 X.AnyPropertyType)
        return int(prop.value[0]) if prop and len(prop.value) and prop.value[0] else None
    finally:
        d.close()


# A real X client in its own process: one window titled argv[1] with _NET_WM_PID set (as
# toolkits do); it prints "ready <window id>" once mapped, then just handles events.
X_CLIENT = r'''
import os, sys, time
from Xlib import X, Xatom, display
d = display.Display()
s = d.screen()
w = s.root.create_window(10, 10, 300, 200, 0, s.root_depth, X.InputOutput, X.CopyFromParent,
                         background_pixel=s.white_pixel, event_mask=X.StructureNotifyMask)
w.set_wm_name(sys.argv[1])
w.set_wm_class(sys.argv[1].lower(), sys.argv[1])
w.change_property(d.intern_atom("_NET_WM_PID"), Xatom.CARDINAL, 32, [os.getpid()])
w.map()
d.flush()
while w.get_attributes().map_state != X.IsViewable:  # the window manager maps it
    time.sleep(0.01)
print("ready", w.id, flush=True)
while True:
    d.next_event()
'''


@contextmanager
def x_client(display: str, title: str, python: str | None = None) -> Iterator[tuple[int, int]]:
    """A separate process owning one mapped window; yields (pid, window id)."""
    with tempfile.TemporaryFile() as err:
        yield from _x_client(display, title, python, err)


def _x_client(display: str, title: str, python: str | None, err) -> Iterator[tuple[int, int]]:
    import select
    import sys

    p = _spawn([python or sys.executable, "-c", X_CLIENT, title], {"DISPLAY": display},
               stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        ready = select.select([p.stdout], [], [], 30)[0]
        line = p.stdout.readline().split() if ready else []
        if len(line) != 2 or line[0] != "ready":
            err.seek(0)
            raise StackError(f"X client {title} did not map its window (exit "
                             f"{p.poll()}): {err.read().decode(errors='replace')[-1500:]}")
        yield p.pid, int(line[1])
    finally:
        _kill(p)

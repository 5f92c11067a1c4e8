"""Which application is in front: the active window's process on X11, the desktop's own
interface on Wayland (KDE's KWin scripting, GNOME Shell's introspection), else the most
active interactive process.

Event-driven: the X11 backend blocks in ``select`` on the X connection and wakes only when
_NET_ACTIVE_WINDOW changes (no wake-ups at all while nothing changes); the KDE one is called
by KWin over D-Bus; the "activity" fallback does no work until asked (``current()`` samples
/proc for 0.1 s) and never calls ``on_change``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable

from ..analysis import procfs as proc
from .apps import AppIdentity, identify, named

log = logging.getLogger("schedcp.desktop.foreground")
OnChange = Callable[[AppIdentity | None, int | None], None]


def choose_backend(display: str | None = None) -> str:
    """x11 when an X display is the session's own; on Wayland the desktop's interface."""
    wayland = bool(os.environ.get("WAYLAND_DISPLAY")) or (
        os.environ.get("XDG_SESSION_TYPE") == "wayland")
    desktop = os.environ.get("XDG_CURRENT_DESKTOP", "").lower()
    if display or (os.environ.get("DISPLAY") and not wayland):
        return "x11"
    if wayland and "kde" in desktop and os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return "kde"
    if wayland and "gnome" in desktop and os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return "gnome"
    return "activity"


class ForegroundWatcher:
    def __init__(self, on_change: OnChange | None = None, display: str | None = None,
                 backend: str | None = None):
        self.on_change = on_change
        self.display = display if display is not None else os.environ.get("DISPLAY")
        self.backend = backend or choose_backend(display)
        self._impl = {"x11": _X11, "kde": _KWin, "gnome": _GnomeShell,
                      "activity": _Activity, "none": _Activity}[self.backend](self)
        self._current: tuple[AppIdentity, int] | None = None
        self._lock = threading.Lock()
        self.problem = ""

    def start(self) -> None:
        try:
            self._impl.start()
        except Exception as e:  # the desktop's interface is not there: fall back, say why
            self.problem = f"{self.backend} foreground detection unavailable: {e}"
            log.warning(self.problem)
            self.backend = "activity"
            self._impl = _Activity(self)

    def stop(self) -> None:
        self._impl.stop()

    def current(self) -> tuple[AppIdentity, int] | None:
        """(identity, pid) of the application in front now."""
        pid = self._impl.current_pid()
        if pid is None:
            return None
        ident = identify(pid)
        if ident is not None:
            ident = named(ident, getattr(self._impl, "title", lambda _p: "")(pid))
        return (ident, pid) if ident is not None else None

    def _changed(self, pid: int | None, title: str = "") -> None:
        """A backend saw the focus move to ``pid``. Moments with nothing focused (the window
        manager clears _NET_ACTIVE_WINDOW between two windows) and our own windows (the tray's
        menu and dialogs) do not count: the app in front stays the last other one."""
        if not pid or pid == os.getpid():
            return
        ident = identify(pid)
        if ident is not None and title:  # "mygame.py" → the window's own title
            ident = named(ident, title)
        new = (ident, pid) if ident is not None else None
        with self._lock:
            if new == self._current:
                return
            self._current = new
        if self.on_change is not None:
            try:
                self.on_change(ident, pid if ident is not None else None)
            except Exception:
                log.exception("foreground on_change failed")


# -- X11 ----------------------------------------------------------------------------------------
class _X11:
    """_NET_ACTIVE_WINDOW of the root window and its _NET_WM_PID (EWMH window managers)."""

    def __init__(self, owner: ForegroundWatcher):
        self.owner = owner
        self._thread: threading.Thread | None = None
        self._stop_r = self._stop_w = -1

    def _open(self):
        from Xlib import display as xdisplay

        return xdisplay.Display(self.owner.display)

    @staticmethod
    def _active_pid(d) -> int | None:
        from Xlib import X
        from Xlib.error import XError

        root = d.screen().root
        try:
            prop = root.get_full_property(d.intern_atom("_NET_ACTIVE_WINDOW"), X.AnyPropertyType)
            if not prop or not len(prop.value) or not prop.value[0]:
                return None
            win = d.create_resource_object("window", int(prop.value[0]))
            pid = win.get_full_property(d.intern_atom("_NET_WM_PID"), X.AnyPropertyType)
        except XError:  # the window went away between the two reads
            return None
        return int(pid.value[0]) if pid and len(pid.value) else None

    @staticmethod
    def _title_of(d, pid: int) -> str:
        """The title (_NET_WM_NAME, else WM_NAME) of the active window, if it is ``pid``'s."""
        from Xlib import X
        from Xlib.error import XError

        try:
            prop = d.screen().root.get_full_property(d.intern_atom("_NET_ACTIVE_WINDOW"),
                                                     X.AnyPropertyType)
            if not prop or not len(prop.value) or not prop.value[0]:
                return ""
            win = d.create_resource_object("window", int(prop.value[0]))
            owner = win.get_full_property(d.intern_atom("_NET_WM_PID"), X.AnyPropertyType)
            if not owner or not len(owner.value) or int(owner.value[0]) != pid:
                return ""
        except XError:
            return ""
        return _X11._title_of_window(d, win)

    @staticmethod
    def _title_of_window(d, win) -> str:
        from Xlib.error import XError

        try:
            name = win.get_full_property(d.intern_atom("_NET_WM_NAME"),
                                         d.intern_atom("UTF8_STRING"))
            raw = name.value if name else win.get_wm_name()
        except XError:
            return ""
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        return str(raw or "")

    def title(self, pid: int) -> str:
        try:
            d = self._open()
        except Exception:
            return ""
        try:
            return self._title_of(d, pid)
        finally:
            d.close()

    def current_pid(self) -> int | None:
        cur = self.owner._current
        if self._thread is not None and cur is not None and os.path.exists(f"/proc/{cur[1]}"):
            return cur[1]
        try:
            d = self._open()
        except Exception:
            return None
        try:
            return self._active_pid(d)
        finally:
            d.close()

    def start(self) -> None:
        from Xlib import X

        d = self._open()  # raises if there is no X server: the owner falls back
        d.screen().root.change_attributes(event_mask=X.PropertyChangeMask)
        d.flush()
        pid = self._active_pid(d)
        self.owner._changed(pid, self._title_of(d, pid) if pid else "")
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, args=(d,), name="schedcp-foreground",
                                        daemon=True)
        self._thread.start()

    def _run(self, d) -> None:
        from Xlib import X

        atom = d.intern_atom("_NET_ACTIVE_WINDOW")
        try:
            while True:
                if not d.pending_events():
                    ready, _, _ = select.select([d.fileno(), self._stop_r], [], [])
                    if self._stop_r in ready:
                        return
                changed = False
                while d.pending_events():
                    ev = d.next_event()
                    if ev.type == X.PropertyNotify and ev.atom == atom:
                        changed = True
                if changed:
                    pid = self._active_pid(d)
                    self.owner._changed(pid, self._title_of(d, pid) if pid else "")
        except Exception as e:  # the X server went away
            log.warning("foreground watcher stopped: %s", e)
        finally:
            with contextlib.suppress(Exception):
                d.close()

    def stop(self) -> None:
        t, self._thread = self._thread, None
        if t is None:
            return
        os.write(self._stop_w, b"x")
        t.join(5)
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)


# -- the fallback: the most active interactive process --------------------------------------------
class _Activity:
    """No window information: the user's busiest process that belongs to the graphical
    session (DISPLAY/WAYLAND_DISPLAY in its environment) or to a terminal."""

    SAMPLE_S = 0.1

    def __init__(self, owner: ForegroundWatcher):
        self.owner = owner

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    @staticmethod
    def _interactive(pid: int, uid: int) -> bool:
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                return False
        except OSError:
            return False
        stat = proc.stat_fields(pid)
        if len(stat) > 4 and stat[4] != "0":  # a controlling terminal
            return True
        env = proc.read_text(f"/proc/{pid}/environ")
        return "\0DISPLAY=" in env or "\0WAYLAND_DISPLAY=" in env or env.startswith(
            ("DISPLAY=", "WAYLAND_DISPLAY="))

    def current_pid(self) -> int | None:
        uid, me = os.getuid(), os.getpid()
        pids = [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != me]
        pids = [p for p in pids if self._interactive(p, uid)]
        before = {p: proc.cpu_ticks(p) for p in pids}
        time.sleep(self.SAMPLE_S)
        best, best_d = None, -1
        for p, b in before.items():
            a = proc.cpu_ticks(p)
            if b >= 0 and a >= 0 and a - b > best_d:
                best, best_d = p, a - b
        return best


# -- Wayland desktops ---------------------------------------------------------------------------
KWIN_SCRIPT = """
function send(w) {
    if (!w) return;
    callDBus("%(bus)s", "/org/schedcp/Foreground", "org.schedcp.Foreground", "Activated",
             w.pid || 0);
}
var ws = workspace;
if (ws.windowActivated) { ws.windowActivated.connect(send); send(ws.activeWindow); }
else { ws.clientActivated.connect(send); send(ws.activeClient); }
"""


class _KWin:
    """KWin (Plasma 5/6) runs a tiny script that calls us back over the session bus on every
    window activation: no polling, as on X11."""

    PLUGIN = "schedcp-foreground"

    def __init__(self, owner: ForegroundWatcher):
        self.owner = owner
        self._bus = None
        self._loop = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._script_path = ""

    def start(self) -> None:
        import asyncio
        import tempfile

        from dbus_next import Message, MessageType
        from dbus_next.aio import MessageBus

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="schedcp-kwin",
                                        daemon=True)
        self._thread.start()

        async def setup():
            bus = await MessageBus().connect()
            bus.add_message_handler(self._on_message)
            fd, path = tempfile.mkstemp(prefix="schedcp-kwin-", suffix=".js")
            with os.fdopen(fd, "w") as f:
                f.write(KWIN_SCRIPT % {"bus": bus.unique_name})
            self._script_path = path

            async def call(path_, iface, member, sig="", body=()):
                r = await bus.call(Message(destination="org.kde.KWin", path=path_,
                                           interface=iface, member=member, signature=sig,
                                           body=list(body)))
                if r.message_type == MessageType.ERROR:
                    raise RuntimeError(f"KWin {member}: {r.body[0] if r.body else r.error_name}")
                return r.body

            await call("/Scripting", "org.kde.kwin.Scripting", "unloadScript", "s", [self.PLUGIN])
            (sid,) = await call("/Scripting", "org.kde.kwin.Scripting", "loadScript", "ss",
                                [path, self.PLUGIN])
            for p in (f"/Scripting/Script{sid}", f"/{sid}"):  # Plasma 6, Plasma 5
                with contextlib.suppress(RuntimeError):
                    await call(p, "org.kde.kwin.Script", "run")
                    break
            self._bus = bus

        try:
            asyncio.run_coroutine_threadsafe(setup(), self._loop).result(5)
        except BaseException:
            self.stop()
            raise

    def _on_message(self, msg):
        from dbus_next import Message, MessageType

        if (msg.message_type == MessageType.METHOD_CALL and msg.member == "Activated"
                and msg.interface == "org.schedcp.Foreground"):
            pid = int(msg.body[0]) if msg.body else 0
            self._pid = pid or None
            threading.Thread(target=self.owner._changed, args=(self._pid,), daemon=True).start()
            return Message.new_method_return(msg)
        return False

    def current_pid(self) -> int | None:
        return self._pid

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._bus is not None:
            from dbus_next import Message

            bus = self._bus
            self._bus = None

            async def bye():
                with contextlib.suppress(Exception):
                    await bus.call(Message(destination="org.kde.KWin", path="/Scripting",
                                           interface="org.kde.kwin.Scripting",
                                           member="unloadScript", signature="s",
                                           body=[self.PLUGIN]))
                bus.disconnect()

            with contextlib.suppress(Exception):
                import asyncio

                asyncio.run_coroutine_threadsafe(bye(), self._loop).result(3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(3)
        self._loop = None
        if self._script_path:
            with contextlib.suppress(OSError):
                os.unlink(self._script_path)


class _GnomeShell(_Activity):
    """GNOME Shell keeps window information to itself (org.gnome.Shell.Introspect answers only
    allow-listed callers); its ``RunningApplicationsChanged`` signal is the one event we get.
    The focused application is asked for when needed; without access we fall back to activity.
    """

    def _focused_pid(self) -> int | None:
        """org.gnome.Shell.Introspect.GetWindows → the pid of the window with focus."""
        result: list[int | None] = [None]

        async def ask():
            from dbus_next import Message, MessageType
            from dbus_next.aio import MessageBus

            bus = await MessageBus().connect()
            try:
                r = await bus.call(Message(
                    destination="org.gnome.Shell", path="/org/gnome/Shell/Introspect",
                    interface="org.gnome.Shell.Introspect", member="GetWindows"))
            finally:
                bus.disconnect()
            if r.message_type == MessageType.ERROR:  # not allow-listed, or no GNOME Shell
                return
            for props in r.body[0].values():
                focus, pid = props.get("has-focus"), props.get("pid")
                if focus is not None and focus.value and pid is not None:
                    result[0] = int(pid.value)

        def run():
            import asyncio

            with contextlib.suppress(Exception):
                asyncio.run(asyncio.wait_for(ask(), 2))

        t = threading.Thread(target=run, name="schedcp-gnome", daemon=True)
        t.start()  # a thread of its own: the caller may be running an event loop
        t.join(3)
        return result[0]

    def current_pid(self) -> int | None:
        pid = self._focused_pid()
        return pid if pid is not None else super().current_pid()


# -- "Choose app…": when nothing (or the wrong thing) is in front ---------------------------------
def candidates(display: str | None = None, limit: int = 20) -> list[tuple[AppIdentity, int]]:
    """Apps a person could mean, one per app: the windows of the X session (with their titles,
    _NET_CLIENT_LIST) when there is one, then the user's interactive processes by CPU use.
    For the tray's "Choose app…" picker (issue #18 item 8: a window without _NET_WM_PID left
    "no app in front" and no way to pick one)."""
    found: list[tuple[int, str]] = []
    try:
        from Xlib import X
        from Xlib import display as xdisplay

        d = xdisplay.Display(display or os.environ.get("DISPLAY"))
        try:
            root = d.screen().root
            prop = root.get_full_property(d.intern_atom("_NET_CLIENT_LIST"), X.AnyPropertyType)
            for wid in (prop.value if prop else []):
                win = d.create_resource_object("window", int(wid))
                pid = win.get_full_property(d.intern_atom("_NET_WM_PID"), X.AnyPropertyType)
                if pid and len(pid.value):
                    found.append((int(pid.value[0]), _X11._title_of_window(d, win)))
        finally:
            d.close()
    except Exception:  # no X server, or a window vanished meanwhile: processes only
        pass
    uid, me = os.getuid(), os.getpid()
    rest = [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != me]
    busy = sorted((p for p in rest if _Activity._interactive(p, uid)),
                  key=lambda p: -max(proc.cpu_ticks(p), 0))
    found += [(p, "") for p in busy]
    out: list[tuple[AppIdentity, int]] = []
    seen: set[str] = set()
    for pid, title in found:
        if pid == me:
            continue
        ident = identify(pid)
        if ident is None or ident.app_id in seen:
            continue
        seen.add(ident.app_id)
        out.append((named(ident, title), pid))
        if len(out) >= limit:
            break
    return out

"""The tray's desktop session for real, inside the sched_ext micro-VM, in one Python process
(Python starts slowly under TCG): a private system bus + the root helper (as `schedcp demo`
starts them), a private session bus, Xvfb + dunst, and a DesktopSession with a profile for a
probe program (a copy of sleep).

``python guest_session.py BINDIR [--repeat N]`` writes ``session.json`` into its cwd:

- a: no scheduler before; the probe starts → its profile (scx_simple) is applied → sched_ext
  enabled → the "Applied" notification shown → its Revert invoked through dunst → disabled.
- b: scx_qmap kept before; the probe starts → scx_simple runs → the probe exits → the
  profile's deployment is reverted → scx_qmap runs again (the previous scheduler).
- latency: ``--repeat`` more b-rounds, timed (exec → profile applied → sched_ext running it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from schedcp.client import HelperClient
from schedcp.desktop.notify import Notifier
from schedcp.desktop.profiles import Profile, ProfileStore
from schedcp.desktop.session import DesktopSession
from schedcp.desktop.settings import Settings
from schedcp.privatebus import our_conf, start_bus
from tests.desktop_stack import notification_daemon, session_bus, xserver

SCX = Path("/sys/kernel/sched_ext")
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def scx() -> tuple[str, str]:
    def rd(p: Path) -> str:
        try:
            return p.read_text().strip()
        except OSError:
            return ""
    return rd(SCX / "state"), rd(SCX / "root" / "ops")


def wait_scx(pred, timeout: float = 30.0, poll: float = 0.002) -> float:
    """Seconds (monotonic time) when ``pred(state, ops)`` first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = scx()
        if pred(*st):
            return time.monotonic()
        time.sleep(poll)
    raise TimeoutError(f"sched_ext never matched; now {scx()}")


class Events:
    def __init__(self):
        self.items: list[tuple[float, str, dict]] = []
        self.cv = threading.Condition()

    def __call__(self, kind: str, info: dict) -> None:
        with self.cv:
            self.items.append((time.monotonic(), kind, {k: v for k, v in info.items()
                                                        if k != "status"}))
            self.cv.notify_all()

    def wait(self, pred, timeout: float = 60.0) -> tuple[float, dict]:
        with self.cv:
            if not self.cv.wait_for(lambda: any(pred(k, i) for _, k, i in self.items), timeout):
                raise TimeoutError(f"no such event; got {[(k, i) for _, k, i in self.items]}")
            return next((t, i) for t, k, i in self.items if pred(k, i))


def profile_event(kind: str, pid: int):
    return lambda k, i: k == "profile" and i["kind"] == kind and i.get("pid", pid) == pid


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bindir")
    ap.add_argument("--repeat", type=int, default=0)
    args = ap.parse_args()
    out: dict = {"rounds": {}}
    work = Path(tempfile.mkdtemp(prefix="schedcp-desk-", dir="/run"))
    os.environ.update(XDG_DATA_HOME=str(work / "data"), XDG_CONFIG_HOME=str(work / "config"),
                      XDG_RUNTIME_DIR=str(work), HOME=str(work))
    bus, address = start_bus(work, work / "bus.sock", our_conf())
    helper = subprocess.Popen(
        [sys.executable, "-m", "schedcp_helper.service", "--address", address, "--state-dir",
         str(work / "helper-state")], stdout=subprocess.PIPE,
        stderr=(work / "helper.log").open("w"), text=True,
        env={**os.environ, "SCHEDCP_TRUSTED_SCX_DIRS": args.bindir})
    session = keeper = None
    try:
        if helper.stdout.readline().strip() != "ready":
            print((work / "helper.log").read_text()[-3000:])
            return 1
        log("system bus + helper up")
        probe = work / "probe-app"
        shutil.copy(shutil.which("sleep"), probe)
        store = ProfileStore(work / "profiles.json")
        store.put(Profile(f"exe:{probe}", "probe-app", "scx_simple", {}, "responsiveness"))
        with session_bus() as sbus, xserver(wm=False) as display, \
                notification_daemon(display, sbus) as nd:
            log(f"session bus, Xvfb {display}, dunst up")
            ev = Events()
            notifier = Notifier(sbus)
            session = DesktopSession(lambda: HelperClient(address),
                                     Settings(auto_apply_profiles=True), notifier, store,
                                     steps_path=work / "steps.jsonl")
            session.add_listener(ev)
            session.connect()
            out["connected"] = {"state": session.state, "problem": session.problem,
                                "notifications": notifier.available,
                                "watch_error": session.profiles.error if session.profiles
                                else "no manager"}
            log(f"session: {out['connected']}")

            # -- a: applied on start, reverted from the notification ----------------------------
            r: dict = {"before": scx()}
            t0 = time.monotonic()
            p = subprocess.Popen([str(probe), "600"])
            t_app, info = ev.wait(profile_event("applied", p.pid))
            r["applied_s"] = t_app - t0
            r["manager_latency_s"] = info["latency_s"]
            r["dep_id"] = dep_id = info["dep_id"]
            r["running_s"] = wait_scx(lambda s, o: s == "enabled" and o == "simple") - t0
            r["after_apply"] = scx()
            n = nd.wait_for(lambda s: s.summary.startswith("scx_simple now runs for probe-app"),
                            30)
            r["notification"] = {"summary": n.summary, "body": n.body, "actions": n.actions,
                                 "shown_s": n.at - t0}
            r["state_after_apply"] = session.state
            t1 = time.monotonic()
            r["invoke_s"] = nd.invoke(n.id, "revert")
            r["disabled_s"] = wait_scx(lambda s, o: s == "disabled") - t1
            _, rinfo = ev.wait(lambda k, i: k == "reverted" and i["dep_id"] == dep_id)
            r["reverted_event"] = rinfo
            r["after_revert"] = scx()
            time.sleep(0.3)
            r["state_after_revert"] = session.state
            p.kill()
            p.wait()
            time.sleep(0.3)
            r["after_exit"] = scx()
            r["history"] = [{k: h[k] for k in ("id", "name", "state", "reason", "source", "app",
                                               "why")} for h in session.history(10)]
            out["rounds"]["a"] = r
            log(f"a: {json.dumps({k: v for k, v in r.items() if k != 'history'})}")

            # -- b: a kept scheduler before; the app's exit brings it back ------------------------
            keeper = HelperClient(address)
            kdep = keeper.switch("scx_qmap", {}, {"window_s": 1})
            keeper.keep(kdep)
            wait_scx(lambda s, o: s == "enabled" and o == "qmap")
            log("scx_qmap kept")
            rounds = []
            for i in range(1 + args.repeat):
                r = {"before": scx()}
                t0 = time.monotonic()
                p = subprocess.Popen([str(probe), "600"])
                t_app, info = ev.wait(profile_event("applied", p.pid))
                r["applied_s"] = t_app - t0
                r["manager_latency_s"] = info["latency_s"]
                dep_id = info["dep_id"]
                r["running_s"] = wait_scx(lambda s, o: s == "enabled" and o == "simple") - t0
                r["after_apply"] = scx()
                time.sleep(0.2)
                t1 = time.monotonic()
                p.kill()
                p.wait()
                t_res, rinfo = ev.wait(lambda k, i, d=dep_id: k == "profile"
                                       and i["kind"] == "restored" and i["dep_id"] == d)
                r["restored_event_s"] = t_res - t1
                r["previous_back_s"] = wait_scx(lambda s, o: s == "enabled"
                                                and o == "qmap") - t1
                r["after_exit"] = scx()
                rounds.append(r)
                log(f"b{i}: {json.dumps(r)}")
                time.sleep(0.5)  # the helper settles (the canary watcher of the reverted one)
            out["rounds"]["b"] = rounds
            out["failed_events"] = [i for _, k, i in ev.items
                                    if k == "profile" and i["kind"] == "failed"]
            out["notices"] = [i for _, k, i in ev.items if k == "notice"]
            out["notifications"] = [(s.summary, s.actions, s.invoked) for s in nd.shown]
            session.close()
            session = None
            notifier.close()
    except Exception as e:
        import traceback

        out["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        print((work / "helper.log").read_text()[-3000:])
    finally:
        if session is not None:
            session.close()
        if keeper is not None:
            keeper.close()
        Path("session.json").write_text(json.dumps(out, indent=1, default=str))
        for proc in (helper, bus):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0 if "error" not in out else 1


if __name__ == "__main__":
    sys.exit(main())

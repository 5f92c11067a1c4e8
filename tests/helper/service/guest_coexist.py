"""Runs INSIDE the micro-VM (one boot): the take-over/give-back cycle with a real scheduler
attached by scx_loader first (issue 17).

The guest's own system bus + polkitd + the helper; the scx_loader stand-in (its published
interface, tests/fixtures) runs the kernel's scx_simple under the name scx_lavd, started with
arguments. Then: Status names it; Switch scx_qmap is refused (OtherScheduler); with take_over
scx_loader is stopped through StopScheduler and ours attaches; scx_loader trying to start
again while ours runs is noticed (conflict), not fought; Revert gives scx_loader its scheduler
back with the same arguments. Then our scx_simple policy, which this scx_loader supports, is
run by scx_loader (not spawned by the helper), guarded, and stopped through it; a restart of
it by scx_loader trips the guard. Writes coexist.json into the cwd.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ["SCHEDCP_ROOT"])
from schedcp_helper.scxstate import read_state
from tests.dbus_stack import _readline, start_stack
from tests.helper.service.guest_steps import recorder

SCX_BINDIR = Path(sys.argv[1])
STANDIN = Path(os.environ["SCHEDCP_ROOT"]) / "tests" / "fixtures" / "scx_loader_standin.py"
R, save, step = recorder(Path("coexist.json"))


def until(pred, timeout: float) -> float | None:
    """Seconds until pred() held, None if it never did."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return round(time.monotonic() - t0, 3)
        time.sleep(0.05)
    return None


def sysfs() -> dict:
    st = read_state()
    return {"state": st.state, "ops": st.ops}


os.environ["SCHEDCP_STATE_DIR"] = str(Path("state").resolve())
stack = start_stack(helper=False)
stack.state_dir = Path("state").resolve()
t1 = time.monotonic()
stack.start_helper(timeout=120, extra_env={"SCHEDCP_TRUSTED_SCX_DIRS": str(SCX_BINDIR),
                                           "SCHEDCP_OTHERS_POLL_S": "0.3"})
R["timings"]["helper-start"] = round(time.monotonic() - t1, 2)
client = stack.client()
# scx_loader's scheduler folder: "scx_lavd" is the kernel's scx_simple here
loader_bin = Path("loader-bin").resolve()
loader_bin.mkdir(exist_ok=True)
(loader_bin / "scx_lavd").symlink_to((SCX_BINDIR / "scx_simple").resolve())
# and the real scx_simple under its own name, which this scx_loader also supports: a Switch to
# our scx_simple policy is then run by scx_loader (item 3), not by the helper
(loader_bin / "scx_simple").symlink_to((SCX_BINDIR / "scx_simple").resolve())
calls = Path("loader-calls.jsonl").resolve()
loader = subprocess.Popen([sys.executable, str(STANDIN), "--address", stack.address,
                           "--exec", str(loader_bin), "--log", str(calls),
                           "--support", "scx_simple"],
                          stdout=subprocess.PIPE, text=True, env=stack.env)
assert _readline(loader, 60).strip() == "ready", "the scx_loader stand-in did not start"


def loader_call(member: str, *args: str) -> str:
    r = subprocess.run(["dbus-send", f"--bus={stack.address}", "--print-reply",
                        "--dest=org.scx.Loader", "/org/scx/Loader", f"org.scx.Loader.{member}",
                        *args], capture_output=True, text=True, timeout=60)
    return r.stdout + r.stderr


def loader_calls() -> list:
    return [json.loads(x) for x in calls.read_text().splitlines()] if calls.exists() else []


def status() -> dict:
    st = client.status()
    return {k: st.get(k) for k in ("state", "ops", "others", "attached_owner", "attached_name",
                                   "attached_pid", "taken_over", "given_back", "conflict",
                                   "deployment", "deployment_state", "tuners_active",
                                   "attached_via", "deployment_via")}


try:
    @step("loader_starts")
    def _():
        loader_call("StartSchedulerWithArgs", "string:scx_lavd", "array:string:-f")
        attached = until(lambda: sysfs() == {"state": "enabled", "ops": "simple"}, 60)
        known = until(lambda: client.status()["attached_owner"] == "scx_loader", 30)
        return {"attach_s": attached, "known_s": known, "sysfs": sysfs(), "status": status()}

    @step("refused")
    def _():
        from schedcp.client import HelperError

        try:
            client.switch("scx_qmap", {}, {"window_s": 5.0})
            out = {"unexpected": "switched"}
        except HelperError as e:
            out = {"refused_with": e.name, "message": e.message}
        return {**out, "sysfs": sysfs(), "calls": loader_calls()}

    @step("take_over")
    def _():
        t0 = time.monotonic()
        dep = client.switch("scx_qmap", {}, {"window_s": 5.0, "take_over": True})
        took = round(time.monotonic() - t0, 3)
        ours = until(lambda: sysfs() == {"state": "enabled", "ops": "qmap"}, 30)
        R["dep"] = dep
        until(lambda: client.status()["attached_owner"] == "schedcp", 10)
        return {"id": dep, "switch_s": took, "ours_attached_s": ours, "sysfs": sysfs(),
                "status": status(), "calls": loader_calls()}

    @step("conflict")
    def _():
        out = loader_call("StartSchedulerWithArgs", "string:scx_lavd", "array:string:-f")
        seen = until(lambda: bool(client.status()["conflict"]), 30)
        time.sleep(3)  # scx_loader's child fails to attach (EBUSY) and is retried
        return {"reply": out[-300:], "noticed_s": seen, "sysfs": sysfs(), "status": status()}

    @step("give_back")
    def _():
        t0 = time.monotonic()
        state = client.revert(R["dep"], "coexist test")
        back = until(lambda: sysfs() == {"state": "enabled", "ops": "simple"}, 60)
        given = until(lambda: bool(client.status()["given_back"]), 30)
        return {"state": state, "revert_to_theirs_s": round(time.monotonic() - t0, 3),
                "attached_s": back, "given_s": given, "sysfs": sysfs(), "status": status(),
                "calls": loader_calls(), "takeover_file": Path("state/takeover.json").exists()}

    @step("process_owner")
    def _():
        """A scheduler no tool we know started: named by its process; take-over stops it
        (root here: polkit's take-over action grants uid 0) and nothing is given back."""
        loader_call("StopScheduler")
        free = until(lambda: sysfs()["state"] == "disabled", 30)
        proc = subprocess.Popen([str(SCX_BINDIR / "scx_simple")], stdout=subprocess.DEVNULL)
        R["stray"] = proc.pid
        attached = until(lambda: sysfs() == {"state": "enabled", "ops": "simple"}, 60)
        known = until(lambda: client.status()["attached_owner"] == "process", 30)
        before = status()
        dep = client.switch("scx_qmap", {}, {"window_s": 5.0, "take_over": True})
        ours = until(lambda: sysfs() == {"state": "enabled", "ops": "qmap"}, 30)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        client.revert(dep, "coexist test")
        given = until(lambda: bool(client.status()["given_back"]) and client.status()[
            "given_back"].startswith("scx_simple"), 30)
        return {"free_s": free, "attach_s": attached, "known_s": known, "before": before,
                "pid": proc.pid, "ours_s": ours, "stray_rc": rc, "given_s": given,
                "after": status(), "sysfs": sysfs()}

    @step("via_loader")
    def _():
        """Our scx_simple policy, which scx_loader supports here: scx_loader runs it (a child
        of scx_loader, not of the helper); past the canary; Revert stops it through scx_loader."""
        n0 = len(loader_calls())
        t0 = time.monotonic()
        dep = client.switch("scx_simple", {"fifo": True}, {"window_s": 3.0})
        took = round(time.monotonic() - t0, 3)
        known = until(lambda: client.status()["attached_via"] == "scx_loader", 30)
        during = status()
        holder = int(during["attached_pid"] or 0)
        parent = Path(f"/proc/{holder}/stat").read_text().rpartition(")")[2].split()[1] \
            if holder else "0"
        passed = until(lambda: client.status()["deployment_state"] == "passed", 60)
        state = client.revert(dep, "coexist test")
        free = until(lambda: sysfs()["state"] == "disabled", 30)
        return {"id": dep, "switch_s": took, "known_s": known, "status": during,
                "holder_parent_is_loader": int(parent) == loader.pid, "passed_s": passed,
                "revert": state, "free_s": free, "sysfs": sysfs(),
                "calls": loader_calls()[n0:], "history": client.history(1)}

    @step("via_loader_restarted")
    def _():
        """scx_loader restarts a scheduler that died (its retry loop, the ejection loop of
        sched-ext/scx 3791): the guard sees the new enable_seq / gone process and reverts,
        which stops scx_loader's retries through StopScheduler."""
        n0 = len(loader_calls())
        dep = client.switch("scx_simple", {"fifo": True}, {"window_s": 60.0})
        until(lambda: client.status()["attached_via"] == "scx_loader", 30)
        holder = int(client.status()["attached_pid"] or 0)
        os.kill(holder, 9)
        t0 = time.monotonic()
        gone = until(lambda: client.status()["deployment"] != dep, 60)
        free = until(lambda: sysfs()["state"] == "disabled", 30)
        mine = next((d for d in client.history(5) if d["id"] == dep), {})
        return {"id": dep, "holder": holder, "tripped_s": gone, "free_s": free,
                "since_kill_s": round(time.monotonic() - t0, 3), "state": mine.get("state"),
                "reason": mine.get("reason"), "sysfs": sysfs(), "calls": loader_calls()[n0:],
                "status": status()}
finally:
    loader.terminate()
    try:
        loader.wait(20)
    except subprocess.TimeoutExpired:
        loader.kill()
    client.close()
    stack.stop_helper()
    R["helper_log"] = stack.log.read_text()[-4000:] if stack.log else ""
    stack.close()
    save()

"""Runs INSIDE the micro-VM (one boot): the guest's own system bus + polkitd + the helper, then
status → verify fifo → deploy its token → canary → revert → history through the client library
and the CLI as root, and the hold: a client process deploys and exits before keeping → reverted.
Writes e2e.json into the cwd; a failing step is recorded and the rest still run where they can.

fifo is verified here for real (compile, static, kernel verifier, trial: ~50 s under TCG).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.environ["SCHEDCP_ROOT"])
from tests.dbus_stack import start_stack
from tests.helper.service.guest_steps import recorder

R, save, step = recorder(Path("e2e.json"))


t0 = time.monotonic()
os.environ["SCHEDCP_STATE_DIR"] = str(Path("state").resolve())
stack = start_stack(helper=False)
R["timings"]["bus+polkitd"] = round(time.monotonic() - t0, 2)
stack.state_dir = Path("state").resolve()
t1 = time.monotonic()
stack.start_helper(timeout=120)
R["timings"]["helper-start"] = round(time.monotonic() - t1, 2)
client = stack.client()
signals: list = []
got = threading.Condition()


def on_signal(s) -> None:
    with got:
        signals.append((round(time.monotonic(), 3), s.member, s.args))
        got.notify_all()


client.subscribe(on_signal)


def wait_for(pred, timeout: float):
    deadline = time.monotonic() + timeout
    with got:
        while True:
            for s in signals:
                if pred(s[1], s[2]):
                    return s
            if not got.wait(max(0.0, deadline - time.monotonic())) and \
                    time.monotonic() >= deadline:
                return None


try:
    step("status")(lambda: client.status())
    progress: list = []

    @step("verify")
    def _():
        report = client.verify_policy("fifo", {}, lambda st, m: progress.append([st, m]),
                                      timeout=240)
        R["token"] = report["token"]
        return {"ok": report["ok"], "cached": report["cached"], "progress": progress,
                "stages": [(s["name"], s["verdict"]) for s in report["stages"]]}

    @step("deploy")
    def _():
        dep = client.deploy(R["token"], {"window_s": 3.0})
        st = client.status()
        passed = wait_for(lambda m, a: m == "DeploymentChanged" and a == [dep, "passed"], 30)
        return {"id": dep, "status": st, "passed": passed is not None,
                "status_after": client.status()}

    @step("hints")
    def _():
        from schedcp.client import HelperClient, HelperError

        dep, out = R["steps"]["deploy"]["id"], {}
        for who, c in (("owner", client), ("other", HelperClient(stack.address))):
            try:
                out[who] = {"ok": c.update_hints(dep, {1: 10**9})}
            except HelperError as e:
                out[who] = {"error": e.short, "message": e.message}
        return out

    @step("revert")
    def _():
        dep = R["steps"]["deploy"]["id"]
        state = client.revert(dep, "e2e")
        return {"state": state, "status": client.status()}

    step("history")(lambda: client.history(10))

    @step("cli")
    def _():
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": stack.address}
        out = {}
        for cmd in (["status", "--json"], ["history", "--json", "--limit", "3"]):
            r = subprocess.run([sys.executable, "-m", "schedcp", *cmd], capture_output=True,
                               text=True, env=env, timeout=120)
            out[cmd[0]] = {"rc": r.returncode, "stdout": r.stdout[-3000:],
                           "stderr": r.stderr[-1000:]}
        return out

    @step("hold")
    def _():
        code = ("import sys; from schedcp.client import HelperClient; "
                "c = HelperClient(); print(c.deploy(sys.argv[1], {'window_s': 60.0}), "
                "flush=True); import os; os._exit(0)")
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": stack.address}
        r = subprocess.run([sys.executable, "-c", code, R["token"]], capture_output=True,
                           text=True, env=env, timeout=120)
        exited = time.monotonic()
        dep = r.stdout.strip()
        rev = wait_for(lambda m, a: m == "Reverted" and a[0] == dep, 30)
        hist = {d["id"]: d for d in client.history(20)}
        return {"rc": r.returncode, "stderr": r.stderr[-1000:], "id": dep,
                "reverted_signal": rev[2] if rev else None,
                "revert_latency_s": round(rev[0] - exited, 3) if rev else None,
                "history": hist.get(dep), "status": client.status()}
finally:
    R["signals"] = signals[-40:]
    client.close()
    stack.stop_helper()
    R["helper_log"] = stack.log.read_text()[-3000:] if stack.log else ""
    stack.close()
    save()

"""DesktopSession's own logic with a stand-in helper client (the real helper cannot deploy on
a host without sched_ext; tests/app/desktop/test_session_vm.py covers that for real): the
icon state from the helper's signals, the notifications and their actions (real dunst), and
the history merged from the helper's records and the agent's steps."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from schedcp.client import HelperError, Signal
from schedcp.desktop.notify import Notifier
from schedcp.desktop.profiles import ProfileStore
from schedcp.desktop.session import DesktopSession
from schedcp.desktop.settings import Settings
from schedcp.vocabulary import outcome_sentence as effect_text

STATUS = {"supported": True, "state": "disabled", "ops": "", "deployment": "",
          "deployment_state": "", "deployment_name": "", "last_known_good": ""}


class Client:
    def __init__(self, history=None):
        self.subs = []
        self.calls: list[tuple] = []
        self.status_now = dict(STATUS)
        self._history = history or []

    def subscribe(self, cb):
        self.subs.append(cb)
        return lambda: self.subs.remove(cb)

    def fire(self, member, *args):
        for cb in list(self.subs):
            cb(Signal(member, list(args)))

    def status(self):
        return dict(self.status_now)

    def history(self, limit=50):
        return self._history[-limit:]

    def revert(self, dep_id="", reason=""):
        self.calls.append(("revert", dep_id, reason))
        if dep_id == "gone":
            raise HelperError("org.schedcp.Helper1.Error.NotFound",
                              "deployment 'gone' is not the one running")
        return "reverted"

    def keep(self, dep_id):
        self.calls.append(("keep", dep_id))
        return "kept"

    def close(self):
        self.calls.append(("close",))


@pytest.fixture
def make(tmp_path: Path, bus, dunst):
    made = []

    def _make(client=None, **kw):
        client = client or Client()
        n = Notifier(bus)
        s = DesktopSession(lambda: client, Settings(), n, ProfileStore(tmp_path / "p.json"),
                           steps_path=tmp_path / "steps.jsonl", watch_programs=False, **kw)
        events: list[tuple[str, dict]] = []
        s.add_listener(lambda k, i: events.append((k, i)))
        s.connect()
        made.append((s, n))
        return s, client, events

    yield _make
    for s, n in made:
        s.close()
        n.close()


def _wait(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def test_state_follows_the_helper(make):
    s, c, events = make()
    assert s.state == "default" and s.problem == ""
    c.fire("StateChanged", {**STATUS, "state": "enabled", "ops": "simple", "deployment": "d1",
                            "deployment_state": "canary", "deployment_name": "scx_simple"})
    assert s.state == "canary"
    c.fire("DeploymentChanged", "d1", "canary")
    assert events[-1] == ("deployed", {"dep_id": "d1", "state": "canary",
                                       "name": "scx_simple", "app": ""})
    c.fire("StateChanged", {**STATUS, "state": "enabled", "deployment": "d1",
                            "deployment_state": "passed"})
    assert s.state == "optimized"
    c.fire("StateChanged", {**STATUS, "state": "enabled", "deployment": "",
                            "last_known_good": "scx_simple"})
    assert s.state == "optimized"  # a kept scheduler runs
    c.fire("StateChanged", {**STATUS, "supported": False})
    assert s.state == "unavailable" and "sched_ext" in s.problem
    states = [i["state"] for k, i in events if k == "state"]
    assert states == ["default", "canary", "optimized", "unavailable"]


def test_automatic_revert_needs_attention_and_notifies(make, dunst):
    s, c, events = make()
    c.fire("DeploymentChanged", "d2", "canary")
    c.fire("Reverted", "d2", "runnable task stall: the kernel ejected it")
    assert s.state == "attention" and "stall" in s.problem
    assert ("reverted", {"dep_id": "d2", "reason": "runnable task stall: the kernel ejected it",
                         "plain": "the kernel stopped it because it left tasks waiting too long",
                         "automatic": True, "name": "the scheduler"}) in events
    n = dunst.wait_for(lambda x: x.summary == "Undone: the scheduler")
    assert "left tasks waiting too long" in n.body and "History has the details" in n.body
    c.fire("StateChanged", dict(STATUS))
    assert s.state == "attention"  # until the person saw it
    s.acknowledge()
    assert s.state == "default"
    c.fire("Reverted", "d3", "slower")
    c.fire("DeploymentChanged", "d4", "canary")  # something new runs: attention is history
    c.fire("StateChanged", {**STATUS, "deployment": "d4", "deployment_state": "canary"})
    assert s.state == "canary"


def test_announce_and_its_actions_through_dunst(make, dunst):
    s, c, events = make()
    said = "input latency (p99) 2 ms \u2192 1.3 ms, 35 % lower (1 run each)"
    nid = s.announce("d5", "scx_lavd", "Firefox", said)
    n = dunst.wait_for(lambda x: x.id == nid)
    assert n.summary == "scx_lavd now runs for Firefox"
    assert n.body.startswith(said + ". Keep it, or undo")
    assert n.actions == {"revert": "Undo", "keep": "Keep"}
    dunst.invoke(nid, "keep")
    _wait(lambda: ("keep", "d5") in c.calls)
    nid = s.announce("gone", "scx_simple", "probe")
    dunst.invoke(nid, "revert")
    _wait(lambda: any(k == "notice" for k, _ in events))
    assert ("revert", "gone", "user (notification)") in c.calls
    notice = next(i for k, i in events if k == "notice")
    assert "Undo failed" in notice["message"] and "not the one running" in notice["message"]
    # its end closes the notification (its buttons would do nothing any more)
    nid = s.announce("d6", "scx_simple", "probe")
    dunst.wait_for(lambda x: x.id == nid)
    c.fire("DeploymentChanged", "d6", "reverted")
    dunst.wait_for(lambda x: x.id == nid and x.closed is not None)


def test_history_merges_helper_records_and_agent_steps(make, tmp_path: Path):
    helper_history = [
        {"id": "a1", "spec": {"kind": "bpf", "name": "vtime", "tunables": {"slice_us": 3000}},
         "uid": 1000, "owner": "", "state": "kept", "started": 100.0, "ended": 0.0,
         "reason": "", "previous": None, "metrics": [{"t": 101.0, "value": 2.0,
                                                      "baseline": 3.0}]},
        {"id": "b2", "spec": {"kind": "scx", "name": "scx_simple", "tunables": {}},
         "state": "reverted", "started": 200.0, "ended": 230.0,
         "reason": "probe-app exited (uid 1000)", "previous": {"name": "vtime", "kind": "bpf"}},
        {"id": "c3", "spec": {"kind": "scx", "name": "scx_rusty"}, "state": "failed"},
    ]
    s, _, _ = make(Client(helper_history))
    step = {"iteration": 1, "role": "execution", "app": "make", "goal": "throughput",
            "improvement": 0.31,
            "outcome": {"plan": {"policy": "vtime", "tunables": {"slice_us": 3000},
                                 "rationale": "batch build: longer slices"},
                        "verified": True, "deployment_id": "a1",
                        "before": {"makespan_s": 10.0}, "after": {"makespan_s": 6.9}}}
    s.record_step({"iteration": 0, "role": "observation", "baseline": {}})
    s.record_step(step)
    with (tmp_path / "steps.jsonl").open("a") as f:
        f.write("not json\n")  # a torn line is skipped, not fatal
    s.announce("b2", "scx_simple", "probe-app", source="profile")
    h = {x["id"]: x for x in s.history()}
    assert h["a1"]["why"] == "batch build: longer slices" and h["a1"]["source"] == "agent"
    assert h["a1"]["effect"] == "batch run time 10 s \u2192 6.9 s, 31 % faster (1 run each)"
    assert h["a1"]["app"] == "make"
    assert h["a1"]["improvement"] == 0.31 and h["a1"]["goal"] == "throughput"
    assert h["a1"]["metrics"][0]["value"] == 2.0 and h["a1"]["tunables"] == {"slice_us": 3000}
    assert h["b2"]["source"] == "profile" and h["b2"]["app"] == "probe-app"
    assert h["b2"]["previous"] == "vtime" and "exited" in h["b2"]["reason"]
    assert h["c3"]["name"] == "scx_rusty" and h["c3"]["why"] == ""
    assert list(h) == ["a1", "b2", "c3"]  # the helper's order (newest last)
    lines = (tmp_path / "steps.jsonl").read_text().splitlines()
    assert json.loads(lines[1])["outcome"]["deployment_id"] == "a1"


def test_effect_text():
    oc = {"before": {"wake_p99_ms": 2.0, "makespan_s": 10}, "after": {"wake_p99_ms": 1.3,
                                                                      "makespan_s": 11}}
    assert effect_text(oc, "responsiveness") == \
        "input latency (p99) 2 ms \u2192 1.3 ms, 35 % lower (1 run each)"
    assert effect_text(oc, "throughput") == \
        "batch run time 10 s \u2192 11 s, 10 % slower (1 run each)"
    # balanced and battery name the same metric in every place (they named different ones)
    assert effect_text(oc, "balanced") == effect_text(oc, "battery") == \
        effect_text(oc, "throughput")
    assert effect_text({"before": {}, "after": None}, "balanced") == ""


def test_listener_errors_do_not_break_the_session(make):
    s, c, events = make()
    s.add_listener(lambda k, i: 1 / 0)
    c.fire("StateChanged", {**STATUS, "deployment": "x", "deployment_state": "canary"})
    assert s.state == "canary" and events[-1][0] == "state"
    assert threading.current_thread() is threading.main_thread()


def test_the_profile_prompt_closes_once_answered_and_says_how_long(make, dunst, tmp_path):
    """Issue #18 item 1: "apply its profile?" stayed on screen after Apply (and after the
    failure ~95 s later). Now the answer closes it, a notification says what the wait is for
    and how long it takes, and the outcome closes that one."""
    from schedcp.desktop.profiles import Profile

    s, _c, _events = make()
    profile = Profile("exe:/usr/games/game", "Game", "vtime", {"slice_us": 3000},
                      "responsiveness")
    s.store.put(profile)

    class Manager:  # the apply itself is the helper's (VM tests); here it fails at once
        def apply(self, app_id, pid):
            raise RuntimeError("the canary reverted it")

        def forget_deployment(self, dep_id):
            pass

        def stop(self):
            pass

    s.profiles = Manager()
    s._on_profile("started", profile, {"pid": 4242})
    ask = dunst.wait_for(lambda n: n.summary == "Game started: apply its profile?")
    assert "about 20 s" in ask.body and "slice_us" not in ask.body
    dunst.invoke(ask.id, "apply")
    dunst.wait_for(lambda n: n.id == ask.id and n.closed is not None)
    busy = dunst.wait_for(lambda n: n.summary == "Applying the profile for Game")
    assert "Checking vtime in a sandbox VM, about 20 s" in busy.body
    dunst.wait_for(lambda n: n.summary == "Could not apply the profile for Game")
    dunst.wait_for(lambda n: n.id == busy.id and n.closed is not None)
    # dismissing it (any other answer) closes it too, and applies nothing
    s._on_profile("started", profile, {"pid": 4243})
    ask2 = dunst.wait_for(lambda n: n.id != ask.id and n.summary == ask.summary)
    s._apply_later(profile.app_id, 4243, "dismissed")
    dunst.wait_for(lambda n: n.id == ask2.id and n.closed is not None)


def test_history_keeps_analyses_refused_trials_and_failed_applies(tmp_path, bus, dunst):
    """Issue #18 item 9: History listed only the helper's deployments, so analyses, refused
    trials and failed applies never appeared — and with no helper it was empty. Now they are
    rows of their own, with or without the helper."""
    from schedcp.analysis.answer import answer
    from schedcp.client import HelperUnavailable
    from schedcp.desktop.profiles import Profile
    from schedcp.tray.records import entries

    def no_helper():
        raise HelperUnavailable("org.freedesktop.DBus.Error.ServiceUnknown", "not reachable")

    n = Notifier(bus)
    s = DesktopSession(no_helper, Settings(), n, ProfileStore(tmp_path / "p.json"),
                       steps_path=tmp_path / "steps.jsonl", watch_programs=False)
    s.connect()
    try:
        assert s.client is None and s.state == "unavailable"
        said = answer({"kind": "interactive", "features": {"wait_frac": 0.28}},
                      "responsiveness", "SuperTuxKart", can_switch=False, now=100.0)
        s.record_step({**said.to_step(), "goal": "responsiveness"})
        s.record_step({"role": "execution", "t": 200.0, "app": "make", "goal": "throughput",
                       "outcome": {"plan": {"policy": "custom_x", "tunables": {}},
                                   "verified": False, "refused_at": "static",
                                   "message": "an enqueue path never dispatches"}})
        s._on_profile("failed", Profile("exe:/usr/games/g", "Game", "vtime"),
                      {"error": "the canary reverted it", "pid": 1})
        rows = {r.state: r for r in entries(s.history())}
        assert set(rows) == {"analyzed", "refused", "failed"}
        a = rows["analyzed"]
        assert (a.app, a.change, a.plain_outcome) == ("SuperTuxKart", "analysis only",
                                                      "analyzed, nothing changed")
        assert a.effect.startswith("SuperTuxKart (an interactive app) waits for a CPU 28 %")
        assert rows["refused"].plain_outcome.startswith("refused by the safety check: an "
                                                        "enqueue path")
        assert rows["failed"].app == "Game" and "canary" in rows["failed"].reason
        assert [r.state for r in entries(s.history())][-1] == "analyzed"  # oldest last
    finally:
        s.close()
        n.close()


def test_another_tools_scheduler_is_shown_not_claimed(make):
    """Issue 17: scx_loader's scheduler is not "optimized" by us; the line naming it reaches
    the listeners (the tray's tooltip and detail line) and a change of it alone is news."""
    s, c, events = make()
    other = {**STATUS, "state": "enabled", "ops": "lavd", "attached_owner": "scx_loader",
             "others": "scx_lavd via scx_loader (Gaming)"}
    c.fire("StateChanged", other)
    assert s.state == "default"
    assert events[-1][0] == "state"
    assert events[-1][1]["status"]["others"] == "scx_lavd via scx_loader (Gaming)"
    c.fire("StateChanged", {**other, "others": "scx_lavd via scx_loader (PowerSave)"})
    assert events[-1][1]["status"]["others"] == "scx_lavd via scx_loader (PowerSave)"
    assert s.state == "default"
    ours = {**other, "attached_owner": "schedcp", "ops": "vtime", "deployment": "d9",
            "deployment_state": "passed", "others": "vtime via SchedCP"}
    c.fire("StateChanged", ours)
    assert s.state == "optimized"

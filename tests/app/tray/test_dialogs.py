"""The tray's windows, offscreen: settings (validation, keyring, autostart), profiles editor,
history with its charts, and the optimization progress dialog with Cancel."""

from __future__ import annotations

import json
import threading
import time

import pytest
from PySide6.QtCharts import QBarSeries, QChartView, QLineSeries
from PySide6.QtWidgets import QLabel

from schedcp.desktop.optimizer import OptimizeError, Request
from schedcp.desktop.profiles import Profile
from schedcp.tray.history_window import HistoryWindow
from schedcp.tray.optimize_dialog import OptimizeDialog
from schedcp.tray.profiles_dialog import ProfilesDialog
from schedcp.tray.settings_dialog import SettingsDialog
from tests.app.tray.fakes import FakeSecrets, fake_runner, steps

# -- settings ----------------------------------------------------------------------------------


def test_settings_saved_with_key_in_keyring_only(qtbot, settings, settings_path):
    secrets = FakeSecrets()
    dlg = SettingsDialog(settings, settings_path, secrets)
    qtbot.addWidget(dlg)
    assert not dlg.model.isEnabled()  # offline brain: Claude's fields are inactive
    dlg.goal.setCurrentIndex(dlg.goal.findData("responsiveness"))
    dlg.brain.setCurrentIndex(dlg.brain.findData("claude"))
    assert dlg.model.isEnabled() and dlg.api_key.isEnabled()
    dlg.model.setCurrentText("claude-opus-5")
    dlg.budget.setValue(1.25)
    dlg.api_key.setText("sk-ant-test-123")
    dlg.start_at_login.setChecked(True)
    dlg.auto_apply.setChecked(True)
    with qtbot.waitSignal(dlg.saved, timeout=1000):
        dlg.buttons.accepted.emit()
    data = json.loads(settings_path.read_text())
    assert data == {"default_goal": "responsiveness", "brain": "claude",
                    "model": "claude-opus-5", "budget_usd": 1.25, "auto_apply_profiles": True,
                    "start_at_login": True, "goal_chosen": True,  # a power profile won't override
                    "local_url": "http://127.0.0.1:11434/v1", "local_model": "",
                    "budget_tokens": 2_000_000}
    assert "sk-ant" not in settings_path.read_text()
    assert secrets.key == "sk-ant-test-123" and secrets.autostart is True
    assert settings.brain == "claude" and settings.default_goal == "responsiveness"


def test_settings_refuses_claude_without_a_key_and_bad_values(qtbot, settings, settings_path):
    dlg = SettingsDialog(settings, settings_path, FakeSecrets())
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.brain.setCurrentIndex(dlg.brain.findData("claude"))
    dlg.save()
    assert dlg.isVisible() and "needs an API key" in dlg.error.text()
    assert not settings_path.exists()
    dlg.api_key.setText("k")
    dlg.model.setCurrentText("   ")
    dlg.save()
    assert "model must be a model name" in dlg.error.text()
    assert not settings_path.exists() and settings.brain == "offline"


def test_settings_local_model_brain_needs_a_model_name_and_no_key(qtbot, settings,
                                                                  settings_path):
    secrets = FakeSecrets()
    dlg = SettingsDialog(settings, settings_path, secrets)
    qtbot.addWidget(dlg)
    dlg.show()
    assert not dlg.local_model.isEnabled() and not dlg.local_url.isEnabled()
    dlg.brain.setCurrentIndex(dlg.brain.findData("openai"))
    # the local brain's fields, not Claude's (no API key leaves the machine)
    assert dlg.local_model.isEnabled() and dlg.local_url.isEnabled()
    assert dlg.budget_tokens.isEnabled()
    assert not dlg.api_key.isEnabled() and not dlg.model.isEnabled()
    dlg.save()
    assert dlg.isVisible() and "needs the server's model name" in dlg.error.text()
    dlg.local_model.setText(" qwen3:8b ")
    dlg.local_url.setText("ftp://box:11434")
    dlg.save()
    assert "local_url must be an http" in dlg.error.text() and not settings_path.exists()
    dlg.local_url.setText("http://192.168.1.5:8080/v1")
    dlg.budget_tokens.setValue(300_000)
    with qtbot.waitSignal(dlg.saved, timeout=1000):
        dlg.save()
    data = json.loads(settings_path.read_text())
    assert (data["brain"], data["local_url"], data["local_model"], data["budget_tokens"]) == (
        "openai", "http://192.168.1.5:8080/v1", "qwen3:8b", 300_000)
    assert secrets.key is None and settings.brain == "openai"


def test_settings_without_a_keyring_says_how_to_fix(qtbot, settings, settings_path):
    why = "no Secret Service is available: install and unlock gnome-keyring"
    dlg = SettingsDialog(settings, settings_path, FakeSecrets(broken=why))
    qtbot.addWidget(dlg)
    assert "No Secret Service is available: install and unlock" in dlg.key_status.text()
    dlg.brain.setCurrentIndex(dlg.brain.findData("claude"))
    dlg.api_key.setText("sk-ant-x")
    dlg.show()
    dlg.save()
    assert dlg.isVisible() and "Settings saved, but" in dlg.error.text() and why in \
        dlg.error.text()


def test_settings_with_a_real_secret_service(qtbot, tmp_path, settings, settings_path,
                                             monkeypatch):
    """gnome-keyring on a private session bus: the key goes there and comes back; Remove
    deletes it; the settings file never holds it."""
    from schedcp.desktop import settings as desktop_settings
    from tests.desktop_stack import secret_service, session_bus

    with session_bus() as bus, secret_service(bus, tmp_path / "home") as env:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
        t0 = time.monotonic()
        dlg = SettingsDialog(settings, settings_path, desktop_settings)
        qtbot.addWidget(dlg)
        assert dlg.keyring_ok, dlg.key_status.text()
        dlg.brain.setCurrentIndex(dlg.brain.findData("claude"))
        dlg.api_key.setText("sk-ant-real-keyring")
        dlg.start_at_login.setChecked(True)
        dlg.save()
        assert dlg.result() == dlg.DialogCode.Accepted, dlg.error.text()
        assert desktop_settings.get_api_key() == "sk-ant-real-keyring"
        print(f"keyring store + read back: {time.monotonic() - t0:.2f} s")
        entry = tmp_path / "xdg" / "autostart" / "schedcp-tray.desktop"
        assert "Exec=" in entry.read_text()
        assert "sk-ant" not in settings_path.read_text()
        dlg2 = SettingsDialog(settings, settings_path, desktop_settings)
        qtbot.addWidget(dlg2)
        assert dlg2.has_key and "stored in the keyring" in dlg2.api_key.placeholderText()
        dlg2.clear_key.click()
        dlg2.start_at_login.setChecked(False)
        dlg2.save()
        assert "needs an API key" in dlg2.error.text()  # Claude without a key: refused
        dlg2.brain.setCurrentIndex(dlg2.brain.findData("offline"))
        dlg2.save()
        assert dlg2.result() == dlg2.DialogCode.Accepted, dlg2.error.text()
        assert desktop_settings.get_api_key() is None
        assert not entry.exists()


# -- profiles ----------------------------------------------------------------------------------


def test_profiles_editor_builds_fields_from_the_policy(qtbot, store, policies):
    vtime = policies["vtime"]
    dlg = ProfilesDialog(store, policies, default_goal="responsiveness")
    qtbot.addWidget(dlg)
    assert dlg.list.count() == 0 and not dlg.save_button.isEnabled()
    dlg.add_profile("exe:/usr/bin/firefox", "Firefox")
    picked = policies[dlg.policy.currentData()]
    assert picked.kind == "bpf" and "responsiveness" in picked.goals  # fits the default goal
    dlg.policy.setCurrentIndex(dlg.policy.findData("vtime"))
    assert set(dlg.tunables.editors) == set(vtime.tunables)
    name, t = next((n, t) for n, t in sorted(vtime.tunables.items()) if t.type == "int")
    spin = dlg.tunables.editors[name]
    assert (spin.minimum(), spin.maximum()) == (t.min, t.max)  # only what the helper accepts
    new_value = t.max if t.default != t.max else t.min
    spin.setValue(new_value)
    dlg.when.setCurrentIndex(dlg.when.findData("ask"))
    assert dlg.save_current()
    p = store.get("exe:/usr/bin/firefox")
    assert p.policy == "vtime" and p.tunables == {name: new_value}  # defaults not stored
    assert p.goal == "responsiveness" and p.auto_apply is False
    assert dlg.list.count() == 1 and "asks first" in dlg.list.item(0).text()
    # switching the scheduler rebuilds the fields
    other = next(n for n, pol in sorted(policies.items()) if n != "vtime")
    dlg.policy.setCurrentIndex(dlg.policy.findData(other))
    assert set(dlg.tunables.editors) == {n for n, t in policies[other].tunables.items()
                                         if not t.set_by_helper}
    dlg.delete_without_asking()
    assert store.get("exe:/usr/bin/firefox") is None and dlg.list.count() == 0


def test_profiles_without_traps(qtbot, store, policies):
    """Issue #18 item 6: one per-profile choice with the global switch visible beside it,
    uninstalled and demo schedulers marked, humane labels, no raw ids."""
    switched: list[bool] = []
    on_host = {n for n, p in policies.items() if p.kind == "bpf"} | {"scx_simple"}
    dlg = ProfilesDialog(store, policies, auto_allowed=False, set_auto_allowed=switched.append,
                         is_installed=lambda p: p.name in on_host)
    qtbot.addWidget(dlg)
    dlg.add_profile("exe:/usr/games/supertuxkart", "SuperTuxKart")
    dlg.policy.setCurrentIndex(dlg.policy.findData("interactive"))
    # one choice, and what the global switch does to it is said, not silent
    assert [dlg.when.itemData(i) for i in range(dlg.when.count())] == ["auto", "ask", "off"]
    dlg.when.setCurrentIndex(dlg.when.findData("auto"))
    assert dlg.when_note.isVisibleTo(dlg) and "asks first" in dlg.when_note.text()
    assert dlg.save_current()
    assert "asks first" in dlg.list.item(0).text()
    dlg.global_auto.setChecked(True)  # flipped here, in the dialog
    assert switched == [True] and not dlg.when_note.isVisibleTo(dlg)
    assert "asks first" not in dlg.list.item(0).text()
    dlg.when.setCurrentIndex(dlg.when.findData("off"))
    assert dlg.save_current()
    p = store.get("exe:/usr/games/supertuxkart")
    assert (p.when, p.enabled) == ("off", False) and "· off" in dlg.list.item(0).text()
    # the scheduler list: ours first; demos and uninstalled ones say so; uninstalled cannot be
    # picked
    items = [(dlg.policy.itemText(i), dlg.policy.itemData(i),
              dlg.policy.model().item(i).isEnabled()) for i in range(dlg.policy.count())]
    kinds = [policies[d].kind for _, d, _ in items]
    assert kinds == sorted(kinds)  # "bpf" < "scx": SchedCP's own first
    by_name = {d: (t, on) for t, d, on in items}
    assert by_name["scx_simple"] == ("scx_simple (kernel demo, for testing)", True)
    assert by_name["scx_lavd"] == ("scx_lavd (not installed)", False)
    assert by_name["vtime"] == ("vtime", True)
    assert [d for _, d, _ in items][-1].startswith("scx_") and not items[-1][2]
    # humane labels from the policy metadata; the ids the helper fills in are not shown
    dlg.policy.setCurrentIndex(dlg.policy.findData("interactive"))
    labels = [w.text() for w in dlg.tunables.findChildren(QLabel)]
    assert "Turn length of everything else:" in labels
    assert "target_cgid" not in dlg.tunables.editors
    assert not any("_" in t or " us:" in t for t in labels), labels
    assert "exe:/usr/games" not in dlg.app_label.text()


def test_profiles_editor_shows_store_errors(qtbot, store, policies, monkeypatch):
    store.put(Profile("exe:/usr/bin/game", "Game", "vtime"))
    dlg = ProfilesDialog(store, policies)
    qtbot.addWidget(dlg)
    assert dlg._editing.app_id == "exe:/usr/bin/game"

    def full(p):
        raise ValueError("too many profiles (500)")

    monkeypatch.setattr(store, "put", full)
    assert not dlg.save_current()
    assert "too many profiles" in dlg.error.text()


# -- history -----------------------------------------------------------------------------------

HELPER_RECORD = {
    "id": "d2", "spec": {"kind": "bpf", "name": "vtime", "tunables": {"slice_us": 3000}},
    "uid": 0, "owner": "", "state": "kept", "ops": "vtime", "started": 1795840000.0,
    "ended": 0.0, "reason": "", "previous": None,
    "metrics": [{"t": 1795840001.0 + i, "value": 2.0 + 0.1 * i, "baseline": 4.0}
                for i in range(8)],
    "app": "Firefox", "goal": "responsiveness", "rationale": "interactive: short slices",
    "before": {"runqueue_wait_ms_per_s": 4.0}, "after": {"runqueue_wait_ms_per_s": 2.6},
    "improvement": 0.35,
}
REVERTED = {"id": "d1", "spec": {"kind": "scx", "name": "scx_rusty", "tunables": {}},
            "state": "reverted", "reason": "runnable task stall", "started": 1795830000.0,
            "metrics": []}


def test_history_rows_and_charts(qtbot):
    win = HistoryWindow(lambda: [REVERTED, HELPER_RECORD])
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: not win.loading, timeout=2000)
    assert win.tree.topLevelItemCount() == 2
    first = win.tree.topLevelItem(0)  # newest first
    assert first.text(1) == "Firefox"
    assert first.text(2) == "default → vtime (slice_us=3000)"
    assert first.text(3) == "time waiting for a CPU 4 ms/s \u2192 2.6 ms/s, 35 % less (1 run each)"
    assert first.text(4) == "kept"
    assert win.tree.topLevelItem(1).text(4) == "undone: runnable task stall"
    views = win.chart_box.findChildren(QChartView)
    assert len(views) == 2  # before/after bars and the canary's samples
    kinds = sorted(type(s).__name__ for v in views for s in v.chart().series())
    assert kinds == ["QBarSeries", "QLineSeries", "QLineSeries"]
    bars = next(s for v in views for s in v.chart().series() if isinstance(s, QBarSeries))
    assert [bars.barSets()[0].at(0), bars.barSets()[1].at(0)] == [4.0, 2.6]
    line = next(s for v in views for s in v.chart().series()
                if isinstance(s, QLineSeries) and s.name() == "measured")
    assert line.count() == 8 and line.at(0).x() == pytest.approx(1.0)
    # the planner's reasoning, the tunables and the id wait behind Details (issue #18)
    assert "interactive: short slices" not in win.detail.toPlainText()
    assert "slice_us" not in win.detail.toPlainText()
    win.details.setChecked(True)
    assert "interactive: short slices" in win.detail.toPlainText()
    assert "slice_us=3000" in win.detail.toPlainText()
    win.details.setChecked(False)
    win.tree.setCurrentItem(win.tree.topLevelItem(1))
    assert win.charts.currentWidget() is win.no_data  # nothing measured: say so


def test_history_in_the_sessions_own_shape(qtbot):
    """DesktopSession.history() items: flat name/tunables/previous, its own effect wording."""
    from tests.app.tray.fakes import EXAMPLE_HISTORY

    win = HistoryWindow(lambda: EXAMPLE_HISTORY)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: not win.loading, timeout=2000)
    rows = [[win.tree.topLevelItem(i).text(c) for c in range(5)]
            for i in range(win.tree.topLevelItemCount())]
    assert [r[1:] for r in rows] == [
        ["make", "vtime → ljf",
         "batch run time 11.7 s \u2192 10.3 s, 12 % faster (9\u202615 %, 6+6 runs)", "kept"],
        # responsiveness: the goal's own headline metric, as in the notification
        ["Firefox", "default → vtime (slice_us=3000)",
         "input latency (p99) 3.2 ms \u2192 2.1 ms, 34 % lower (1 run each)", "kept"],
        ["blender", "default → scx_rusty", "—", "undone: runnable task stall"]]


def test_history_from_a_real_demo_run(qtbot):
    """docs/screenshots/demo-history.json (``schedcp demo --save`` in the micro-VM, real data):
    every deployment joined with the agent step that made it, and the refused trials."""
    from pathlib import Path

    from schedcp.tray.records import from_demo

    data = json.loads((Path(__file__).resolve().parents[3] / "docs" / "screenshots"
                       / "demo-history.json").read_text())
    steps = [s for run in data["runs"] for s in run if s.get("role") == "execution"]
    by_dep = {s["outcome"]["deployment_id"]: s for s in steps if s["outcome"]["deployment_id"]}
    n_refused = sum(1 for s in steps if not s["outcome"]["verified"])
    assert n_refused and by_dep and set(by_dep) <= {d["id"] for d in data["history"]}

    win = HistoryWindow(lambda: from_demo(data))
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: not win.loading, timeout=2000)
    assert win.tree.topLevelItemCount() == len(data["history"]) + n_refused
    kept = next(i for i, r in enumerate(win.rows) if r.state == "kept")
    row = win.rows[kept]
    step = by_dep[row.id]
    before = step["outcome"]["before"]["makespan_s"]
    after = step["outcome"]["after"]["makespan_s"]
    item = win.tree.topLevelItem(kept)
    assert item.text(3) == (f"batch run time {before:.3g} s \u2192 {after:.3g} s, "
                            f"{(before - after) / before * 100:.0f} % faster (1 run each)")
    assert item.text(1) == "schedcp-probe" and row.goal == "throughput"
    win.tree.setCurrentItem(item)
    bars = next(s for v in win.chart_box.findChildren(QChartView) for s in v.chart().series()
                if isinstance(s, QBarSeries))
    assert [bars.barSets()[0].at(0), bars.barSets()[1].at(0)] == [before, after]
    assert f"batch run time {before:.3g} s \u2192 {after:.3g} s" in win.detail.toPlainText()
    win.details.setChecked(True)
    assert step["outcome"]["plan"]["rationale"] in win.detail.toPlainText()
    refused = [win.tree.topLevelItem(i) for i, r in enumerate(win.rows) if r.state == "refused"]
    assert len(refused) == n_refused
    assert all(r.text(4).startswith("refused by the safety check: ") and len(r.text(4)) <= 48
               for r in refused)
    assert "short_lived_progress" in refused[0].toolTip(4)  # the whole reason


def test_demo_loader_tolerates_odd_input():
    from schedcp.tray.records import entries, from_demo

    assert from_demo({}) == [] and from_demo("nonsense") == []
    odd = {"runs": [[{"role": "execution"}, {"role": "execution", "outcome": {"verified": False}},
                     "x"], "y"], "history": [None, {"id": "a", "spec": "z"}]}
    rows = entries(from_demo(odd))
    assert sorted(r.state for r in rows) == ["", "refused"]


def test_history_without_helper_says_why(qtbot):
    def broken():
        raise RuntimeError("the SchedCP helper is not reachable")

    win = HistoryWindow(broken)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: not win.loading, timeout=2000)
    assert "not reachable" in win.message.text() and win.tree.topLevelItemCount() == 0
    empty = HistoryWindow(list)
    qtbot.addWidget(empty)
    qtbot.waitUntil(lambda: not empty.loading, timeout=2000)
    assert "Nothing yet. “Optimize” in the tray menu" in empty.message.text()
    # the empty text names what exists in the tray's state (it named a missing item)
    said = HistoryWindow(list, empty_text=lambda: "Nothing yet. “Analyze” …")
    qtbot.addWidget(said)
    qtbot.waitUntil(lambda: not said.loading, timeout=2000)
    assert said.message.text() == "Nothing yet. “Analyze” …"


def test_a_slow_history_does_not_block_the_window(qtbot):
    gate = threading.Event()

    def slow():
        gate.wait(5)
        return [HELPER_RECORD]

    t0 = time.monotonic()
    win = HistoryWindow(slow)
    qtbot.addWidget(win)
    assert time.monotonic() - t0 < 1 and win.message.text() == "Loading…"
    gate.set()
    qtbot.waitUntil(lambda: win.tree.topLevelItemCount() == 1, timeout=3000)
    assert win.message.text() == ""


# -- optimize ----------------------------------------------------------------------------------


def test_optimize_from_the_menu_shows_each_step(tray, qtbot):
    runner = fake_runner()
    tray._run_optimization = runner
    tray._before_menu()
    tray.goal_actions["responsiveness"].trigger()
    tray.act_optimize.trigger()
    dlg = tray.optimize_dialog
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)
    req = runner.seen["req"]
    assert (req.pid, req.name, req.goal, req.analyze_only) == (4243, "Firefox",
                                                               "responsiveness", False)
    lines = [dlg.list.item(i).text() for i in range(dlg.list.count())]
    assert lines[0].startswith("Measured: an interactive app; now time waiting for a CPU 4")
    assert lines[1].startswith("1. Trying vtime (slice_us=3000): interactive app")
    assert lines[2] == ("1. vtime: time waiting for a CPU 4 ms/s \u2192 2.6 ms/s, 35 % less "
                        "(1 run each)")
    assert "kept vtime" in lines[3]
    assert "Done: no further improvement found" in dlg.status.text()
    assert dlg.close_button.isVisibleTo(dlg) and not dlg.cancel_button.isVisibleTo(dlg)
    assert dlg.history_button.isVisibleTo(dlg)
    # every step went to the session's record (history's "why"), tagged with app and goal
    recorded = [c[1] for c in tray.session.calls if c[0] == "record_step"]
    assert [s["role"] for s in recorded] == ["observation", "planning", "execution",
                                             "learning", "stop"]
    assert {(s["app"], s["goal"]) for s in recorded} == {("Firefox", "responsiveness")}
    # the kept winner is announced: "Applied vtime slice_us=3000 for Firefox: ..."
    ann = [c for c in tray.session.calls if c[0] == "announce"]
    assert len(ann) == 1 and ann[0][1:4] == ("d1", "vtime", "Firefox")  # tunables: Details
    assert ann[0][4] == "time waiting for a CPU 4 ms/s \u2192 2.6 ms/s, 35 % less (1 run each)"


def test_cancel_stops_the_loop(qtbot):
    block = threading.Event()
    runner = fake_runner(block)
    req = Request(pid=1, name="Game", goal="throughput")
    dlg = OptimizeDialog(req, lambda on_step, cancel, progress: runner(
        req, None, on_step, cancel, on_progress=progress))
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.start()
    qtbot.waitUntil(lambda: dlg.list.count() >= 3, timeout=3000)
    # the helper's verification stages show while it runs
    assert dlg.status.text() == "Verifying vtime: load — the kernel verifier accepted it"
    assert dlg.running and dlg.progress.maximum() == req.max_iterations
    assert dlg.progress.value() == 1
    t0 = time.monotonic()
    dlg.cancel_button.click()
    assert dlg.cancel_event.is_set() and dlg.cancel_button.text() == "Cancelling…"
    qtbot.waitUntil(lambda: not dlg.running, timeout=3000)
    print(f"cancel → loop ended: {time.monotonic() - t0:.3f} s")
    assert dlg.result.stop_reason == "cancelled" and "Cancelled" in dlg.status.text()
    block.set()


def test_closing_the_progress_window_keeps_the_run(tray, qtbot, monkeypatch):
    block = threading.Event()
    tray._run_optimization = fake_runner(block)
    shown = []
    monkeypatch.setattr(tray.tray, "showMessage", lambda *a: shown.append(a[:2]))
    tray._before_menu()
    tray.act_optimize.trigger()
    dlg = tray.optimize_dialog
    qtbot.waitUntil(lambda: dlg.list.count() >= 3, timeout=3000)
    dlg.close()
    assert dlg.running and not dlg.cancel_event.is_set()
    tray._before_menu()
    assert tray.act_optimize.text() == "Optimize “Firefox”: show progress…"
    tray.act_optimize.trigger()
    assert dlg.isVisible()
    dlg.close()
    block.set()
    qtbot.waitUntil(lambda: not dlg.running, timeout=3000)
    # a kept winner is announced by the session's notification (with Revert/Keep) ...
    assert [c[0] for c in tray.session.calls].count("announce") == 1 and not shown
    # ... any other ending of a hidden run by the tray's own message
    tray.session.announce = None
    tray._optimization_done(dlg)
    assert shown[0][0] == "SchedCP: Firefox" and "kept vtime" in shown[0][1]


def test_optimize_error_is_shown_not_swallowed(qtbot):
    def runner(on_step, cancel, on_progress):
        raise OptimizeError("the Claude brain needs an Anthropic API key: add one in Settings")

    dlg = OptimizeDialog(Request(1, "X", "balanced"), runner)
    qtbot.addWidget(dlg)
    dlg.start()
    qtbot.waitUntil(lambda: not dlg.running, timeout=3000)
    assert "Could not run" in dlg.status.text() and "API key" in dlg.status.text()


def test_analysis_only_on_a_real_process(qtbot, settings):
    """No sched_ext: the real agent loop measures the app and changes nothing."""
    import subprocess

    from schedcp.desktop import optimizer

    p = subprocess.Popen(["sleep", "30"])
    try:
        req = Request(p.pid, "sleep", "balanced", analyze_only=True, seconds=0.5)

        def no_helper():
            raise RuntimeError("no helper in this test")

        dlg = OptimizeDialog(req, lambda on_step, cancel, progress: optimizer.run(
            req, settings, on_step, cancel, client_factory=no_helper, on_progress=progress),
            problem="no sched_ext")
        qtbot.addWidget(dlg)
        dlg.start()
        qtbot.waitUntil(lambda: not dlg.running, timeout=20000)
        lines = [dlg.list.item(i).text() for i in range(dlg.list.count())]
        # a windowed app (the app in front) is an interactive app, never "batch work"
        assert lines[0].startswith("Measured: an interactive app (0.0 of "), lines
        assert "Analysis finished; nothing was changed" in lines
        # Analyze answers: a verdict with its number, and what SchedCP would do
        assert lines[-1].startswith("sleep (an interactive app) waits for a CPU 0 % of the "
                                    "time it wants to run: that is low"), lines
        assert "little to gain" in lines[-1]
        assert "that is low" in dlg.status.text() and "Nothing was changed" in dlg.status.text()
        assert not dlg.history_button.isVisibleTo(dlg)
        assert [s["role"] for s in dlg.steps] == ["observation", "stop", "analysis"]
    finally:
        p.kill()
        p.wait()


def test_claude_brain_without_key_refuses_before_starting(settings):
    from schedcp.desktop import optimizer

    settings.brain = "claude"
    with pytest.raises(OptimizeError, match="needs an Anthropic API key"):
        optimizer.run(Request(1, "x", "balanced"), settings, lambda s: None,
                      threading.Event(), api_key=lambda: None)


def test_local_brain_runs_against_an_openai_compatible_server(settings):
    """The tray's "local model" brain: the real openai client asks the configured server, with
    the configured model name, and its answer (no plan) ends the run with that reason."""
    import subprocess

    from schedcp.desktop import optimizer
    from tests.app.agent.fakeapi import FakeChatCompletionsAPI, chat_message

    settings.brain = "openai"
    with pytest.raises(OptimizeError, match="needs the server's model name"):
        optimizer.run(Request(1, "x", "balanced"), settings, lambda s: None, threading.Event())
    api = FakeChatCompletionsAPI()
    api.start()
    p = subprocess.Popen(["sleep", "30"])
    try:
        api.script = [chat_message({"role": "assistant", "content": "Nothing fits an idle "
                                    "app; I would change nothing."}, "stop")]
        settings.local_model, settings.local_url = "qwen3:8b", api.url + "/v1"
        steps: list[dict] = []

        def no_helper():
            raise RuntimeError("no helper in this test")

        result = optimizer.run(Request(p.pid, "sleep", "balanced", seconds=0.3), settings,
                               steps.append, threading.Event(), client_factory=no_helper)
        assert len(api.requests) == 1 and api.requests[0]["model"] == "qwen3:8b"
        assert any(t["function"]["name"] == "submit_plan" for t in api.requests[0]["tools"])
        plan = next(s for s in steps if s["role"] == "planning")
        assert plan["brain"] == "openai" and plan["plan"] is None
        assert result.stop_reason == "exhausted"
        assert result.accounting["total"]["output_tokens"] == 20
    finally:
        p.kill()
        p.wait()
        api.stop()


def test_step_lines_cover_refusals():
    from schedcp.tray.wording import step_line

    refused = {"role": "execution", "iteration": 2, "outcome": {
        "plan": {"policy": "custom_x"}, "verified": False, "refused_at": "verifier",
        "message": "unbounded loop"}}
    assert step_line(refused) == ("bad", "custom_x refused at verifier: unbounded loop")
    assert step_line({"role": "learning"}) is None
    assert step_line(steps()[2])[0] == "good"


def test_profiles_editor_handles_64_bit_bounds(qtbot, store, policies):
    """interactive's target_cgid goes up to 2^63-1: a text field, validated on save (the
    helper fills that one in, so the dialog hides it: shown here as if it were not)."""
    from dataclasses import replace

    from PySide6.QtWidgets import QLineEdit

    inter = policies["interactive"]
    shown = replace(inter, tunables={**inter.tunables, "target_cgid": replace(
        inter.tunables["target_cgid"], set_by_helper=False)})
    dlg = ProfilesDialog(store, {**policies, "interactive": shown})
    qtbot.addWidget(dlg)
    dlg.add_profile("exe:/usr/bin/x", "X", policy="interactive")
    field = dlg.tunables.editors["target_cgid"]
    assert isinstance(field, QLineEdit)
    field.setText("9223372036854775807")
    assert dlg.save_current()
    assert store.get("exe:/usr/bin/x").tunables == {"target_cgid": 2**63 - 1}
    dlg.tunables.editors["target_cgid"].setText("-5")
    assert not dlg.save_current()
    assert "target_cgid" in dlg.error.text() and "outside" in dlg.error.text()


# -- profile re-checks -------------------------------------------------------------------------


def test_profiles_recheck_needs_a_saved_profile_whose_app_runs(qtbot, store, policies):
    store.put(Profile(app_id="exe:/usr/bin/game", name="Game", policy="vtime",
                      tunables={"slice_us": 3000}, goal="responsiveness"))
    running: set[str] = set()
    dlg = ProfilesDialog(store, policies, running=lambda: running)
    qtbot.addWidget(dlg)
    asked: list[str] = []
    dlg.recheck_requested.connect(asked.append)
    assert not dlg.recheck_button.isEnabled()
    assert dlg.recheck_button.toolTip().startswith("Start the app first")
    running.add("exe:/usr/bin/game")
    dlg.reload()
    assert dlg.recheck_button.isEnabled()
    dlg.recheck_button.click()
    assert asked == ["exe:/usr/bin/game"]
    dlg.add_profile("exe:/usr/bin/game2", "Game 2")  # unsaved: nothing to re-check yet
    assert not dlg.recheck_button.isEnabled()
    assert dlg.recheck_button.toolTip() == "Save the profile first."


def test_recheck_from_the_profiles_window_measures_that_profile(tray, qtbot, store):
    from types import SimpleNamespace

    store.put(Profile(app_id="exe:/usr/bin/game", name="Game", policy="vtime",
                      tunables={"slice_us": 3000}, goal="responsiveness"))
    tray.session.profiles = SimpleNamespace(
        running=lambda: {"exe:/usr/bin/game": ({4301, 4300}, "d7")})
    runner = fake_runner()
    tray._run_optimization = runner
    tray.show_profiles("exe:/usr/bin/game")
    dlg = tray.windows["profiles"]
    assert dlg.recheck_button.isEnabled()
    dlg.recheck_button.click()
    run = tray.optimize_dialog
    qtbot.waitUntil(lambda: run is not None and not run.running, timeout=5000)
    req = runner.seen["req"]
    assert (req.pid, req.name, req.goal) == (4300, "Game", "responsiveness")
    assert req.plan == ("vtime", {"slice_us": 3000}) and req.keep  # it was applied: may stay
    assert run.windowTitle().startswith("Re-checking Game")
    # the profile's live deployment is reverted first, so the baseline is the default
    assert ("revert", "d7", "re-check") in tray.session.calls


def test_recheck_runs_one_plan_through_the_ab_trials(qtbot, settings, tmp_path, monkeypatch):
    """The real loop and measure_plan on a real process; only the helper is simulated (no
    sched_ext here). One plan, the profile's, is verified and measured in interleaved trials
    against the default, and (not kept) reverted at the end; the window says the verdict."""
    import subprocess
    import sys

    from schedcp.desktop import optimizer
    from tests.app.agent.sim import SimHelper

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    helper = SimHelper({})
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        req = Request(p.pid, "spin", "throughput", seconds=0.2, max_iterations=1,
                      plan=("vtime", {"slice_us": 3000}))
        dlg = OptimizeDialog(req, lambda on_step, cancel, progress: optimizer.run(
            req, settings, on_step, cancel, client_factory=lambda: helper,
            on_progress=progress))
        qtbot.addWidget(dlg)
        dlg.start()
        qtbot.waitUntil(lambda: not dlg.running, timeout=120000)
    finally:
        p.kill()
        p.wait()
    assert not dlg.error, dlg.error
    verified = [c[1] for c in helper.calls if c[0] == "verify"]
    deployed = {c[1] for c in helper.calls if c[0] == "deploy"}
    assert verified == ["vtime"] and deployed == {'vtime{"slice_us": 3000}'}
    from schedcp.agent.fixed import summary

    s = summary(dlg.result)
    assert s["evidence"]["n_a"] >= 5 and s["evidence"]["n_b"] >= 5  # interleaved, after warm-up
    assert helper.running is None and helper.kept is None  # reverted: keep was not asked
    title = {"improved": "Still helps", "regressed": "Now hurts"}.get(
        s["decision"], "No measurable effect")
    assert dlg.status.text().startswith(f"<b>{title}.</b> vtime: "), dlg.status.text()
    assert "runs)" in dlg.status.text() and "Nothing was changed." in dlg.status.text()

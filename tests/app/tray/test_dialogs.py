"""The tray's windows, offscreen: settings (validation, keyring, autostart), profiles editor,
history with its charts, and the optimization progress dialog with Cancel."""

from __future__ import annotations

import json
import threading
import time

import pytest
from PySide6.QtCharts import QBarSeries, QChartView, QLineSeries

from schedcp.desktop.profiles import Profile
from schedcp.tray.history_window import HistoryWindow
from schedcp.tray.optimize_dialog import OptimizeDialog
from schedcp.tray.optimizer import OptimizeError, Request
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
                    "start_at_login": True, "local_url": "http://127.0.0.1:11434/v1",
                    "local_model": "", "budget_tokens": 2_000_000}
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
    dlg.auto.setChecked(False)
    assert dlg.save_current()
    p = store.get("exe:/usr/bin/firefox")
    assert p.policy == "vtime" and p.tunables == {name: new_value}  # defaults not stored
    assert p.goal == "responsiveness" and p.auto_apply is False
    assert dlg.list.count() == 1 and "asks first" in dlg.list.item(0).text()
    # switching the scheduler rebuilds the fields
    other = next(n for n, pol in sorted(policies.items()) if n != "vtime")
    dlg.policy.setCurrentIndex(dlg.policy.findData(other))
    assert set(dlg.tunables.editors) == set(policies[other].tunables)
    dlg.delete_without_asking()
    assert store.get("exe:/usr/bin/firefox") is None and dlg.list.count() == 0


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
    assert first.text(3) == "runqueue wait \u221235 %"
    assert first.text(4) == "kept"
    assert win.tree.topLevelItem(1).text(4) == "reverted: runnable task stall"
    views = win.chart_box.findChildren(QChartView)
    assert len(views) == 2  # before/after bars and the canary's samples
    kinds = sorted(type(s).__name__ for v in views for s in v.chart().series())
    assert kinds == ["QBarSeries", "QLineSeries", "QLineSeries"]
    bars = next(s for v in views for s in v.chart().series() if isinstance(s, QBarSeries))
    assert [bars.barSets()[0].at(0), bars.barSets()[1].at(0)] == [4.0, 2.6]
    line = next(s for v in views for s in v.chart().series()
                if isinstance(s, QLineSeries) and s.name() == "measured")
    assert line.count() == 8 and line.at(0).x() == pytest.approx(1.0)
    assert "interactive: short slices" in win.detail.toPlainText()
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
        ["make", "vtime → ljf", "makespan \u221212 %", "kept"],
        ["Firefox", "default → vtime (slice_us=3000)", "runqueue wait \u221234 %", "kept"],
        ["blender", "default → scx_rusty", "—", "reverted: runnable task stall"]]


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
    assert item.text(3) == f"makespan \u2212{(before - after) / before * 100:.0f} %"
    assert item.text(1) == "schedcp-probe" and row.goal == "throughput"
    win.tree.setCurrentItem(item)
    bars = next(s for v in win.chart_box.findChildren(QChartView) for s in v.chart().series()
                if isinstance(s, QBarSeries))
    assert [bars.barSets()[0].at(0), bars.barSets()[1].at(0)] == [before, after]
    assert step["outcome"]["plan"]["rationale"] in win.detail.toPlainText()
    assert f"makespan {before:.3g} \u2192 {after:.3g} s" in win.detail.toPlainText()
    refused = [win.tree.topLevelItem(i) for i, r in enumerate(win.rows) if r.state == "refused"]
    assert len(refused) == n_refused
    assert all(r.text(4).startswith("refused by the verifier: ") and len(r.text(4)) <= 48
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
    assert "No deployments yet" in empty.message.text()


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
    assert lines[0].startswith("Measured: interactive workload; baseline runqueue wait 4")
    assert lines[1].startswith("1. Trying vtime (slice_us=3000): interactive app")
    assert lines[2] == "1. vtime: runqueue wait 2.6 ms/s (\u221235 %)"
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
    assert len(ann) == 1 and ann[0][1:4] == ("d1", "vtime slice_us=3000", "Firefox")
    assert ann[0][4] == "runqueue wait \u221235 %"


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

    from schedcp.tray import optimizer

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
        assert lines[0].startswith("Measured: idle workload: sleep"), lines
        assert lines[-1] == "Analysis finished; nothing was changed"
        assert "nothing changed" in dlg.status.text()
        assert not dlg.history_button.isVisibleTo(dlg)
        assert [s["role"] for s in dlg.steps] == ["observation", "stop"]
    finally:
        p.kill()
        p.wait()


def test_claude_brain_without_key_refuses_before_starting(settings):
    from schedcp.tray import optimizer

    settings.brain = "claude"
    with pytest.raises(OptimizeError, match="needs an Anthropic API key"):
        optimizer.run(Request(1, "x", "balanced"), settings, lambda s: None,
                      threading.Event(), api_key=lambda: None)


def test_local_brain_runs_against_an_openai_compatible_server(settings):
    """The tray's "local model" brain: the real openai client asks the configured server, with
    the configured model name, and its answer (no plan) ends the run with that reason."""
    import subprocess

    from schedcp.tray import optimizer
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
    """interactive's target_cgid goes up to 2^63-1: a text field, validated on save."""
    from PySide6.QtWidgets import QLineEdit

    dlg = ProfilesDialog(store, policies)
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

"""History rows for the history window, from whatever ``DesktopSession.history`` merges:
the helper's deployment records (id, spec, state, reason, metrics samples) and the app's own
agent step records (rationale, before/after metrics, improvement); or from a saved
``schedcp demo --save`` run (``from_demo``). Qt-free and tolerant: a missing field shows as
"—", never as an exception."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

from ..vocabulary import DEFAULT_GOAL, before_after_sentence, gain_text, plain_reason
from .wording import METRIC_LABELS

STATE_WORDS = {
    "canary": "on trial", "passed": "trial passed", "kept": "kept",
    "reverted": "undone", "failed": "failed", "replaced": "replaced",
    "refused": "refused by the safety check",  # a trial that was never deployed
    "analyzed": "analyzed, nothing changed",
}


@dataclass
class HistoryEntry:
    id: str
    started: float
    ended: float
    app: str
    policy: str
    tunables: dict
    previous: str
    state: str
    reason: str
    why: str
    goal: str
    improvement: float | None
    effect_text: str = ""  # the session's own wording of the effect, when it has one
    before: dict[str, float] = field(default_factory=dict)  # metric key → value
    after: dict[str, float] = field(default_factory=dict)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (s since start, value)
    baseline: float | None = None

    @property
    def when(self) -> str:
        if not self.started:
            return "—"
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started))

    @property
    def change(self) -> str:
        if self.state == "analyzed":
            return "analysis only"
        tun = ", ".join(f"{k}={v}" for k, v in sorted(self.tunables.items()))
        head = f"{self.previous or 'default'} → {self.policy or '?'}"
        return head + (f" ({tun})" if tun else "")

    @property
    def effect(self) -> str:
        if self.effect_text:
            return self.effect_text
        said = before_after_sentence(self.before, self.after,
                                     self.goal or DEFAULT_GOAL)
        if said:
            return said
        if self.improvement is not None:
            return gain_text(self.improvement)
        return "—"

    @property
    def plain_outcome(self) -> str:
        """The outcome with the helper's reason in plain words (no pids or ratios)."""
        words = STATE_WORDS.get(self.state, self.state or "—")
        if self.reason and self.state in ("reverted", "failed", "replaced", "refused"):
            return f"{words}: {plain_reason(self.reason)[0]}"
        return words

    @property
    def outcome(self) -> str:
        words = STATE_WORDS.get(self.state, self.state or "—")
        return f"{words}: {self.reason}" if self.reason and self.state in (
            "reverted", "failed", "replaced", "refused") else words


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _metrics(m) -> dict[str, float]:
    if not isinstance(m, dict):
        return {}
    return {k: float(m[k]) for k in METRIC_LABELS if _num(m.get(k)) is not None}


def entry(raw: dict) -> HistoryEntry:
    """One merged history record → a row."""
    spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
    outcome = raw.get("outcome") if isinstance(raw.get("outcome"), dict) else {}
    plan = raw.get("plan") or outcome.get("plan") or {}
    plan = plan if isinstance(plan, dict) else {}
    prev = raw.get("previous")
    previous = prev.get("name", "") if isinstance(prev, dict) else (prev or "")
    started = _num(raw.get("started")) or _num(raw.get("t")) or _num(raw.get("when")) or 0.0
    samples, baseline = [], None
    for s in raw.get("metrics") or []:
        if isinstance(s, dict) and _num(s.get("value")) is not None:
            samples.append(((_num(s.get("t")) or started) - started, float(s["value"])))
            baseline = _num(s.get("baseline")) if _num(s.get("baseline")) else baseline
    app = raw.get("app") or raw.get("app_name") or ""
    if isinstance(app, dict):
        app = app.get("name", "")
    return HistoryEntry(
        id=str(raw.get("id") or raw.get("dep_id") or raw.get("deployment_id")
               or outcome.get("deployment_id") or ""),
        started=started, ended=_num(raw.get("ended")) or 0.0, app=str(app),
        policy=str(spec.get("name") or raw.get("name") or raw.get("policy")
                   or plan.get("policy") or ""),
        tunables=dict(spec.get("tunables") or raw.get("tunables") or plan.get("tunables") or {}),
        previous=str(previous), state=str(raw.get("state") or ""),
        reason=str(raw.get("reason") or ""),
        why=str(raw.get("why") or raw.get("rationale") or plan.get("rationale") or ""),
        goal=str(raw.get("goal") or ""),
        improvement=_num(raw.get("improvement")), effect_text=str(raw.get("effect") or ""),
        before=_metrics(raw.get("before") or outcome.get("before")),
        after=_metrics(raw.get("after") or outcome.get("after")),
        samples=samples, baseline=baseline)


def entries(raws: list[dict]) -> list[HistoryEntry]:
    """Newest first (the helper returns newest last)."""
    rows = [entry(r) for r in raws if isinstance(r, dict)]
    return sorted(rows, key=lambda e: e.started, reverse=True)


def _short_app(profile: dict) -> str:
    """The workload's program, without the content hash of a built probe."""
    name = os.path.basename(str(profile.get("exe") or ""))
    return re.sub(r"-[0-9a-f]{12,}$", "", name) or str(profile.get("kind") or "")


def from_demo(data: dict) -> list[dict]:
    """History records from ``schedcp demo --save`` ({"runs": [the steps of each optimize run],
    "history": [the helper's deployments]}), in DesktopSession.history's shape: each deployment
    joined with the agent's execution step that made it (by deployment id: why, goal, before and
    after), plus the trials the verifier refused before anything was deployed."""
    data = data if isinstance(data, dict) else {}
    by_dep: dict[str, tuple[dict, str, str]] = {}  # deployment id → (step, goal, app)
    refused: list[tuple[dict, str, str]] = []
    for run in data.get("runs") or []:
        run = [s for s in run if isinstance(s, dict)] if isinstance(run, list) else []
        obs = next((s for s in run if s.get("role") == "observation"), {})
        prof = obs.get("profile") if isinstance(obs.get("profile"), dict) else {}
        goal, app = str(prof.get("goal") or ""), _short_app(prof)
        for step in run:
            oc = step.get("outcome")
            if step.get("role") != "execution" or not isinstance(oc, dict):
                continue
            if oc.get("deployment_id"):
                by_dep[str(oc["deployment_id"])] = (step, goal, app)
            elif not oc.get("verified"):
                refused.append((step, goal, app))
    out = []
    for d in data.get("history") or []:
        if not isinstance(d, dict):
            continue
        spec = d.get("spec") if isinstance(d.get("spec"), dict) else {}
        prev = d.get("previous")
        item = {"id": str(d.get("id") or ""), "name": spec.get("name", ""),
                "kind": spec.get("kind", ""), "tunables": spec.get("tunables") or {},
                "state": d.get("state", ""), "started": d.get("started", 0.0),
                "ended": d.get("ended", 0.0), "reason": d.get("reason", ""),
                "previous": prev.get("name", "") if isinstance(prev, dict) else "",
                "metrics": d.get("metrics") or [], "why": "", "goal": "", "app": "",
                "before": None, "after": None, "improvement": None, "source": "helper"}
        if item["id"] in by_dep:
            step, goal, app = by_dep[item["id"]]
            oc = step["outcome"]
            plan = oc.get("plan") if isinstance(oc.get("plan"), dict) else {}
            item.update(why=plan.get("rationale", ""), goal=goal, app=app,
                        before=oc.get("before"), after=oc.get("after"),
                        improvement=step.get("improvement"), source="agent",
                        effect=step.get("effect") or "")
        out.append(item)
    for step, goal, app in refused:
        oc = step["outcome"]
        plan = oc.get("plan") if isinstance(oc.get("plan"), dict) else {}
        end = _num(step.get("t")) or 0.0
        out.append({"id": "", "name": plan.get("policy", ""), "kind": "",
                    "tunables": plan.get("tunables") or {}, "state": "refused",
                    "started": end - (_num(step.get("seconds")) or 0.0), "ended": end,
                    "reason": str(oc.get("message") or f"at {oc.get('refused_at')}"),
                    "previous": "", "metrics": [], "why": plan.get("rationale", ""),
                    "goal": goal, "app": app, "before": None, "after": None,
                    "improvement": None, "source": "agent"})
    return out

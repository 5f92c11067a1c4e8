"""What the tray says: state titles, goal names and one line per agent step. Qt-free, so the
progress dialog, notifications and tests share the exact same sentences."""

from __future__ import annotations

STATES = ("default", "optimized", "canary", "attention", "unavailable")

STATE_TITLES = {
    "default": "Kernel default scheduler",
    "optimized": "Optimized scheduler running",
    "canary": "Trying a new scheduler (canary)",
    "attention": "Reverted: needs your attention",
    "unavailable": "Scheduler switching unavailable",
}

GOALS = ("responsiveness", "throughput", "battery", "balanced")
GOAL_LABELS = {
    "responsiveness": "Responsiveness",
    "throughput": "Throughput",
    "battery": "Battery life",
    "balanced": "Balanced",
}
GOAL_HINTS = {
    "responsiveness": "lowest input and frame latency",
    "throughput": "finish batch work sooner",
    "battery": "fewer wake-ups, lower power",
    "balanced": "a good compromise",
}

METRIC_LABELS = {
    "runqueue_wait_ms_per_s": ("Runqueue wait", "ms/s"),
    "wake_p99_ms": ("Wake-up p99", "ms"),
    "makespan_s": ("Makespan", "s"),
}


def metric_text(m: dict | None, goal: str = "balanced") -> str:
    """The goal's headline metric of a Metrics dict, e.g. ``runqueue wait 1.23 ms/s``."""
    if not m:
        return "not measured"
    order = (("wake_p99_ms", "runqueue_wait_ms_per_s", "makespan_s") if goal == "responsiveness"
             else ("makespan_s", "runqueue_wait_ms_per_s", "wake_p99_ms"))
    for key in order:
        if m.get(key) is not None:
            label, unit = METRIC_LABELS[key]
            return f"{label.lower()} {m[key]:.3g} {unit}"
    return "not measured"


def percent(gain: float | None) -> str:
    """A gain fraction as the tray shows it: 0.35 → "minus 35 %" of the metric (lower is better),
    so the sign matches what happened to the number a person reads."""
    if gain is None:
        return ""
    change = -gain * 100
    sign = "\u2212" if change < 0 else "+"  # a real minus sign
    return f"{sign}{abs(change):.0f} %"


def effect(before: dict | None, after: dict | None, goal: str = "balanced") -> str:
    """The change of the goal's headline metric, e.g. ``wake-up p99 minus 35 %``."""
    before, after = before or {}, after or {}
    order = (("wake_p99_ms", "runqueue_wait_ms_per_s", "makespan_s") if goal == "responsiveness"
             else ("makespan_s", "runqueue_wait_ms_per_s", "wake_p99_ms"))
    for key in order:
        b, a = before.get(key), after.get(key)
        if b and a is not None:
            return f"{METRIC_LABELS[key][0].lower()} {percent((b - a) / b)}"
    return ""


def _tunables(t: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(t.items())) or "default settings"


def step_line(step: dict, goal: str = "balanced") -> tuple[str, str] | None:
    """(kind, sentence) for one OptimizationLoop step record; kind is one of observe, plan,
    good, bad, neutral, stop, error. None for records a person need not see (learning)."""
    role = step.get("role")
    if role == "observation":
        prof = step.get("profile") or {}
        what = prof.get("description") or f"{prof.get('kind') or 'unknown'} workload"
        return "observe", (f"Measured: {what}; baseline "
                           f"{metric_text(step.get('baseline'), goal)}")
    if role == "planning":
        plan = step.get("plan")
        if not plan:
            return "plan", "Nothing left worth trying"
        why = (plan.get("rationale") or "").strip().split("\n")[0]
        text = f"Trying {plan.get('policy')} ({_tunables(plan.get('tunables') or {})})"
        return "plan", text + (f": {why}" if why else "")
    if role == "execution":
        oc = step.get("outcome") or {}
        plan = oc.get("plan") or {}
        name = plan.get("policy", "?")
        if not oc.get("verified"):
            where = oc.get("refused_at") or "verification"
            return "bad", f"{name} refused at {where}: {oc.get('message') or 'no reason given'}"
        if oc.get("trials"):  # A/B trials: the effect with its interval, or "no measurable"
            from ..measure.effect import describe_effect

            decision = oc["trials"].get("decision")
            kind = {"improved": "good", "regressed": "bad", "failed": "bad"}.get(decision,
                                                                                 "neutral")
            return kind, f"{name}: {describe_effect(oc['trials'])}"
        if oc.get("after"):
            gain = step.get("improvement")
            text = f"{name}: {metric_text(oc['after'], goal)}"
            if gain is not None:
                text += f" ({percent(gain)})"
                return ("good" if gain > 0 else "neutral"), text
            return "neutral", text
        return "bad", f"{name}: {oc.get('message') or 'no measurement'}"
    if role == "stop":
        return "stop", step.get("message") or step.get("reason") or "stopped"
    if role == "error":
        tb = (step.get("traceback") or "").strip().splitlines()
        return "error", "Error: " + (tb[-1] if tb else "unknown")
    return None


STOP_TITLES = {
    "converged": "Done: no further improvement found",
    "target": "Done: target reached",
    "max_iterations": "Done",
    "exhausted": "Done: every candidate tried",
    "budget": "Stopped: budget used up",
    "cancelled": "Cancelled",
    "environment": "Stopped: this machine cannot switch schedulers",
    "error": "Stopped by an error",
}

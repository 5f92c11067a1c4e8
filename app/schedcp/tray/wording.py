"""What the tray says: state titles, goal names and one line per agent step. Qt-free, so the
progress dialog, notifications and tests share the exact same sentences."""

from __future__ import annotations

from ..vocabulary import (
    DEFAULT_GOAL,
    KIND_WORDS,
    METRICS,
    before_after_sentence,
    checking_text,
    effect_sentence,
    metric_text,
)

STATE_TITLES = {
    "default": "Kernel default scheduler",
    "optimized": "Optimized scheduler running",
    "canary": "Trying a new scheduler (canary)",
    "attention": "Reverted: needs your attention",
    "unavailable": "Scheduler switching unavailable",
}

# goals, metric names and the effect sentence are the one vocabulary (schedcp.vocabulary)
METRIC_LABELS = {k: (m.label, m.unit) for k, m in METRICS.items() if k != "deadline_miss_ratio"}


def _tunables(t: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(t.items())) or "default settings"


def step_line(step: dict, goal: str = DEFAULT_GOAL) -> tuple[str, str] | None:
    """(kind, sentence) for one OptimizationLoop step record; kind is one of observe, plan,
    good, bad, neutral, stop, error. None for records a person need not see (learning)."""
    role = step.get("role")
    if role == "observation":
        prof = step.get("profile") or {}
        f = prof.get("features") or {}
        what = KIND_WORDS.get(prof.get("kind"), f"{prof.get('kind') or 'unknown'} workload")
        busy = (f" ({f['cpus_used']:.1f} of {int(f['ncpus'])} CPUs busy)"
                if f.get("cpus_used") is not None and f.get("ncpus") else "")
        return "observe", (f"Measured: {what}{busy}; now "
                           f"{metric_text(step.get('baseline'), goal)}")
    if role == "planning":
        plan = step.get("plan")
        if not plan:
            return "plan", "Nothing left worth trying"
        why = (plan.get("rationale") or "").strip().split("\n")[0]
        text = f"Trying {plan.get('policy')} ({_tunables(plan.get('tunables') or {})})"
        return "plan", text + (f": {why}" if why else "") + (
            f" \u2014 {checking_text(plan.get('policy') or 'it')} first")
    if role == "execution":
        oc = step.get("outcome") or {}
        plan = oc.get("plan") or {}
        name = plan.get("policy", "?")
        if not oc.get("verified"):
            where = oc.get("refused_at") or "verification"
            return "bad", f"{name} refused at {where}: {oc.get('message') or 'no reason given'}"
        if oc.get("trials"):  # A/B trials: the effect with its interval, or "no measurable"
            decision = oc["trials"].get("decision")
            kind = {"improved": "good", "regressed": "bad", "failed": "bad"}.get(decision,
                                                                                 "neutral")
            return kind, f"{name}: {effect_sentence(oc['trials'])}"
        if oc.get("after"):
            gain = step.get("improvement")
            said = before_after_sentence(oc.get("before"), oc["after"], goal)
            text = f"{name}: {said or metric_text(oc['after'], goal)}"
            if gain is not None:
                return ("good" if gain > 0 else "neutral"), text
            return "neutral", text
        return "bad", f"{name}: {oc.get('message') or 'no measurement'}"
    if role == "analysis":  # Analyze's answer: the verdict, then what SchedCP would do
        kind = {"low": "good", "noticeable": "neutral", "high": "bad"}.get(step.get("level"),
                                                                           "neutral")
        return kind, f"{step.get('verdict', '')} {step.get('next_step', '')}".strip()
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

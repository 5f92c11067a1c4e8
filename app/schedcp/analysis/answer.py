"""What "Analyze" answers (issue #18, item 3): not only numbers, but a verdict a person can act
on ("SuperTuxKart waits for a CPU 28 % of the time it wants to run: that is high"), what SchedCP
would try on a kernel with sched_ext and why, as one record the History keeps.

Qt-free and helper-free: it reads the loop's observation step (the WorkloadProfile dict)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..vocabulary import GOAL_LABELS, KIND_WORDS

# share of the time it wanted a CPU that a task spent waiting for one
LOW, HIGH = 0.05, 0.15


@dataclass
class Answer:
    app: str
    kind: str
    goal: str
    wait_frac: float
    level: str  # "low", "noticeable" or "high"
    verdict: str  # one sentence with the number and what it means
    would_try: list[str] = field(default_factory=list)  # schedulers, in the order tried
    next_step: str = ""  # what SchedCP would do, or what the person can do
    t: float = 0.0

    def to_step(self) -> dict[str, Any]:
        """The record the tray's steps file (and so the History) keeps."""
        return {"role": "analysis", **asdict(self)}


def _level(frac: float) -> str:
    return "low" if frac < LOW else ("noticeable" if frac < HIGH else "high")


def would_try(kind: str, goal: str) -> list[str]:
    """The offline planner's first choices for this kind of workload and goal."""
    from ..agent.offline import RULES

    return list(RULES.get((kind, goal)) or RULES.get(("*", goal)) or ())


def answer(profile: dict[str, Any], goal: str, app: str, can_switch: bool,
           now: float | None = None) -> Answer:
    f = profile.get("features") or {}
    kind = str(profile.get("kind") or "idle")
    frac = float(f.get("wait_frac") or 0.0)
    level = _level(frac)
    pct = round(frac * 100)
    what = KIND_WORDS.get(kind, kind)
    meaning = {"low": "that is low: it rarely waits",
               "noticeable": "that is noticeable: it is sometimes held up",
               "high": "that is high: it is often held up by other work"}[level]
    verdict = (f"{app} ({what}) waits for a CPU {pct} % of the time it wants to run: "
               f"{meaning}.")
    tries = would_try(kind, goal) if level != "low" else []
    goal_words = GOAL_LABELS.get(goal, goal).lower()
    if not tries:
        nxt = ("There is little to gain: SchedCP would keep the kernel's own scheduler."
               if level == "low" else f"No scheduler of SchedCP's targets {what} for "
               f"{goal_words}.")
    elif can_switch:
        nxt = (f"SchedCP would try {', then '.join(tries)} for {goal_words}, each checked "
               "in a sandbox first, and keep one only if it measurably helps.")
    else:
        nxt = (f"On a kernel with sched_ext, SchedCP would try {', then '.join(tries)} for "
               f"{goal_words}, each checked in a sandbox first and kept only if it measurably "
               "helps. Here nothing can be switched (see “What is missing”).")
    return Answer(app=app, kind=kind, goal=goal, wait_frac=frac, level=level, verdict=verdict,
                  would_try=tries, next_step=nxt, t=time.time() if now is None else now)

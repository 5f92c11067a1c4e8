"""The offline planner: deterministic, free, no API key. The default brain.

Three sources, in this order of trust:
1. history: the best "improved" lesson for this workload key is tried first; configurations
   recorded as refused/failed/regressed are never proposed again;
2. rules from the profile: a policy whose metadata matches the workload kind and the goal, ours
   (verifiable, hint-aware) before packaged ones, plus a few explicit preferences;
3. retrieval: the repository's semantic score for the profile's description breaks ties.

When no shipped policy lists both the workload's kind and the goal, a scheduler composed
from the code primitives (``composer``) joins the arms, first: the verifier checks it like
any generated code, and Learning promotes it when it wins, so the next run finds it by name.

Candidates become arms — (policy, preset) — and a UCB1 bandit over the improvement they
measured picks among them: every arm once in prior order, then the best mean plus an
exploration bonus that shrinks as an arm is tried. Same inputs, same plans.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..measure.effect import describe_effect
from ..model import Lesson, Outcome, Plan, WorkloadProfile
from .brain import PlanContext
from .composer import compose, template_for
from .tools import custom_name

# Explicit preferences per (kind, goal); "*" matches any kind. Earlier = stronger.
RULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("batch", "throughput"): ("ljf", "scx_central"),
    ("build", "throughput"): ("ljf", "scx_rusty"),
    ("batch", "balanced"): ("ljf", "vtime"),
    ("build", "balanced"): ("vtime", "scx_rusty"),
    ("game", "responsiveness"): ("interactive", "scx_lavd"),
    ("interactive", "responsiveness"): ("interactive", "scx_bpfland"),
    ("media", "responsiveness"): ("interactive", "scx_flash"),
    ("game", "balanced"): ("interactive", "scx_lavd"),
    ("interactive", "balanced"): ("vtime", "interactive"),
    ("*", "battery"): ("powersave", "scx_flash"),
}
BASELINE = {"fifo"}  # our reference policy: tried only when nothing better matches
PENALTY = {"failed": -1.0, "refused": -1.0}
NOT_AGAIN = ("refused", "failed", "regressed")


def _key(policy: str, tunables: dict) -> str:
    return policy + json.dumps(tunables, sort_keys=True)


@dataclass
class Arm:
    policy: str
    tunables: dict[str, Any]
    preset: str  # "default", a goal name, or "history"
    prior: float
    n: int = 0
    total: float = 0.0
    banned: str = ""  # why it must not be proposed
    source: str | None = None  # composed code (its policy is custom_name(source))
    why: str = ""  # what the arm is, for the plan's rationale

    @property
    def key(self) -> str:
        return _key(self.policy, self.tunables)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0


@dataclass
class OfflinePlanner:
    name: str = "offline"
    max_policies: int = 3
    exploration: float = 0.1  # UCB constant, scaled to rewards: improvement fractions ~0..0.5
    search_k: int = 8
    compose: str = "auto"  # auto: when no shipped policy fits | always | never
    tools: Any = None  # AgentTools (search_policies / get_policy through its repository)
    arms: dict[str, Arm] = field(default_factory=dict)
    _profile_key: str = ""
    _tried_run: set[str] = field(default_factory=set)

    # -- candidates --------------------------------------------------------------------------
    def _entries(self, profile: WorkloadProfile) -> list[tuple[float, Any]]:
        repo = self.tools.repository()
        query = profile.description or f"{profile.kind} workload, goal {profile.goal}"
        retrieval = {h.name: float(h.score)
                     for h in repo.search(query, k=self.search_k, kind="bpf,scx,custom")}
        names = set(retrieval)
        for (kind, goal), prefs in RULES.items():
            if goal == profile.goal and kind in (profile.kind, "*"):
                names.update(prefs)
        scored = []
        for name in sorted(names):
            try:
                entry = repo.get(name)
            except KeyError:
                continue
            if entry.kind == "primitive":
                continue
            scored.append((self._prior(entry, profile, retrieval.get(name, 0.0)), entry))
        scored.sort(key=lambda x: (-x[0], x[1].name))
        return scored

    @staticmethod
    def _prior(entry: Any, profile: WorkloadProfile, retrieval: float) -> float:
        score = retrieval
        score += 2.0 if profile.kind in (entry.workloads or ()) else 0.0
        score += 2.0 if profile.goal in (entry.goals or ()) else 0.0
        score += 1.0 if entry.kind == "bpf" else 0.0
        for (kind, goal), prefs in RULES.items():
            if goal == profile.goal and kind in (profile.kind, "*") and entry.name in prefs:
                score += 3.0 - prefs.index(entry.name)
        if entry.name in BASELINE:
            score -= 2.0
        return round(score, 6)

    def _init_arms(self, ctx: PlanContext) -> None:
        self.arms, self._tried_run = {}, set()
        self._profile_key = ctx.profile.key
        picked = 0
        for prior, entry in self._entries(ctx.profile):
            if entry.kind == "scx" and ctx.available is not None and (
                    entry.name not in ctx.available):
                continue
            presets = entry.presets or {}
            options = []
            if ctx.goal in presets:
                options.append((ctx.goal, dict(presets[ctx.goal])))
            options.append(("default", {}))
            for i, (label, tunables) in enumerate(options):
                arm = Arm(entry.name, tunables, label, prior - 0.1 * i)
                self.arms.setdefault(arm.key, arm)
            picked += 1
            if picked >= self.max_policies:
                break
        self._add_composed(ctx)
        for lesson in ctx.history:  # earlier runs count as pulls
            arm = self._arm_for(lesson.policy, lesson.tunables, prior=0.0)
            if lesson.outcome in NOT_AGAIN:
                arm.banned = f"{lesson.outcome} before"
                continue
            if lesson.outcome == "improved":  # a later significant success lifts a ban
                arm.banned = ""
            if lesson.score is not None:
                arm.n += 1
                arm.total += float(lesson.score)
        for lesson in ctx.antipatterns:
            self._arm_for(lesson.policy, lesson.tunables, 0.0).banned = (
                f"antipattern: {lesson.outcome}")

    def _add_composed(self, ctx: PlanContext) -> None:
        tmpl = template_for(ctx.profile.kind, ctx.goal) if self.compose != "never" else None
        if tmpl is None:
            return
        repo = self.tools.repository()
        fits = any(ctx.profile.kind in (e.workloads or ()) and ctx.goal in (e.goals or ())
                   for e in (repo.get(n) for n in repo.names("bpf,scx")))
        if fits and self.compose != "always":
            return
        source = compose(tmpl, repo)
        top = max((a.prior for a in self.arms.values()), default=0.0)
        arm = Arm(custom_name(source), {}, f"composed:{tmpl.name}", top + 1.0, source=source,
                  why=tmpl.summary)
        self.arms.setdefault(arm.key, arm)

    def _arm_for(self, policy: str, tunables: dict, prior: float) -> Arm:
        key = _key(policy, tunables or {})
        if key not in self.arms:
            self.arms[key] = Arm(policy, dict(tunables or {}), "history", prior)
        return self.arms[key]

    # -- the brain interface -----------------------------------------------------------------
    def plan(self, ctx: PlanContext) -> Plan | None:
        if ctx.profile.key != self._profile_key or not self.arms:
            self._init_arms(ctx)
        live = [a for a in self.arms.values() if not a.banned]
        if not live:
            return None
        best = ctx.best
        if best is not None and best.outcome == "improved":
            arm = self._arm_for(best.policy, best.tunables, prior=0.0)
            if not arm.banned and arm.key not in self._tried_run:
                if ctx.borrowed_from:  # the UI says where the suggestion came from
                    return self._plan(arm, f"best known for the similar workload "
                                      f"{ctx.borrowed_from} (similarity {ctx.similarity:.2f}): "
                                      f"{describe_effect(best.evidence)}")
                return self._plan(arm, f"best known for {ctx.profile.key}: "
                                  f"{describe_effect(best.evidence)}" if best.evidence else
                                  f"best known for {ctx.profile.key}: {best.score:+.1%}"
                                  if best.score is not None else "best known lesson")
        untried = [a for a in live if a.n == 0 and a.key not in self._tried_run]
        if untried:
            arm = min(untried, key=lambda a: (-a.prior, a.key))
            return self._plan(arm, f"explore: prior {arm.prior:.2f} from rules + retrieval "
                              f"for {ctx.profile.kind}/{ctx.goal}")
        total = sum(a.n for a in live) or 1

        def ucb(a: Arm) -> float:
            return a.mean + self.exploration * math.sqrt(2 * math.log(total) / max(a.n, 1))

        arm = min(live, key=lambda a: (-ucb(a), -a.prior, a.key))
        return self._plan(arm, f"UCB {ucb(arm):.3f} (mean {arm.mean:+.3f} over {arm.n})")

    def _plan(self, arm: Arm, why: str) -> Plan:
        self._tried_run.add(arm.key)
        if arm.source:  # the rationale becomes the promoted policy's description
            return Plan(arm.policy, dict(arm.tunables), arm.source, arm.why, self.name)
        return Plan(arm.policy, dict(arm.tunables), None,
                    f"{arm.policy} [{arm.preset}]: {why}", self.name)

    def observe(self, ctx: PlanContext, outcome: Outcome, lesson: Lesson) -> None:
        arm = self._arm_for(outcome.plan.policy, outcome.plan.tunables, prior=0.0)
        if lesson.outcome in ("refused", "failed"):
            arm.banned = lesson.outcome
        reward = lesson.score if lesson.score is not None else PENALTY.get(lesson.outcome, 0.0)
        arm.n += 1
        arm.total += float(reward)

    def reflect(self, ctx: PlanContext, outcome: Outcome, lesson: Lesson) -> str | None:
        return None

    def accounting(self) -> dict[str, Any]:
        return {}

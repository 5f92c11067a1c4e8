"""The offline planner against the real policy repository (a fresh file per test)."""

from __future__ import annotations

import time

from schedcp.agent.brain import PlanContext
from schedcp.agent.offline import OfflinePlanner
from schedcp.agent.tools import AgentTools
from schedcp.model import Lesson, Metrics, Outcome, WorkloadProfile


def profile(kind: str, goal: str, exe: str = "/usr/bin/job", desc: str = "") -> WorkloadProfile:
    return WorkloadProfile(kind, goal, 100, [100, 101], exe=exe, nthreads=8,
                           features={"cpu_util": 0.9}, description=desc)


BATCH = dict(kind="batch", goal="throughput",
             desc="many CPU-bound batch jobs of unequal length, a long tail; finish the batch "
                  "sooner")


def ctx_for(repo, prof: WorkloadProfile, iteration: int = 1) -> PlanContext:
    key = prof.key
    return PlanContext(prof, Metrics(makespan_s=10.0), iteration, [], repo.history(key),
                       repo.best(key), repo.antipatterns(key))


def plans(repo, prof: WorkloadProfile, n: int, reward=None) -> list[tuple[str, dict]]:
    """Drive the planner n iterations; ``reward(policy, tunables)`` → improvement fraction."""
    planner = OfflinePlanner(tools=AgentTools(repo=repo))
    out = []
    for i in range(1, n + 1):
        ctx = ctx_for(repo, prof, i)
        plan = planner.plan(ctx)
        if plan is None:
            break
        out.append((plan.policy, plan.tunables))
        if reward is not None:
            gain = reward(plan.policy, plan.tunables)
            oc = Outcome(plan, True, before=Metrics(makespan_s=10.0),
                         after=Metrics(makespan_s=10.0 * (1 - gain)))
            planner.observe(ctx, oc, Lesson(prof.key, plan.policy, plan.tunables,
                                            "improved" if gain > 0.02 else "neutral", gain))
    return out


def test_batch_throughput_starts_with_ljf_and_its_preset(repo):
    first = plans(repo, profile(BATCH["kind"], BATCH["goal"], desc=BATCH["desc"]), 1)[0]
    assert first[0] == "ljf"
    assert first[1] == repo.get("ljf").presets["throughput"]


def test_game_responsiveness_picks_interactive(repo):
    prof = profile("game", "responsiveness", desc="a game: frame pacing, input latency")
    assert plans(repo, prof, 1)[0][0] == "interactive"


def test_battery_picks_powersave(repo):
    for kind in ("idle", "interactive", "media"):
        assert plans(repo, profile(kind, "battery", desc="laptop on battery"), 1)[0][0] == \
            "powersave", kind


def test_deterministic_for_the_same_inputs(repo):
    prof = profile(BATCH["kind"], BATCH["goal"], desc=BATCH["desc"])
    reward = {"ljf": 0.3, "scx_central": 0.1}
    a = plans(repo, prof, 8, lambda p, t: reward.get(p, 0.0) + 0.01 * len(t))
    b = plans(repo, prof, 8, lambda p, t: reward.get(p, 0.0) + 0.01 * len(t))
    assert a == b and len(a) == 8


def test_recorded_improvement_is_tried_first_and_antipatterns_skipped(repo):
    prof = profile(BATCH["kind"], BATCH["goal"], desc=BATCH["desc"])
    ljf_preset = repo.get("ljf").presets["throughput"]
    repo.record(Lesson(prof.key, "vtime", {"slice_us": 8000}, "improved", 0.22, "earlier run"))
    repo.record(Lesson(prof.key, "ljf", ljf_preset, "regressed", -0.1, "earlier run"))
    tried = plans(repo, prof, 6, lambda p, t: 0.0)
    assert tried[0] == ("vtime", {"slice_us": 8000})
    assert ("ljf", ljf_preset) not in tried
    assert ("ljf", {}) in tried  # the same policy with other tunables is still fair game
    other = profile(BATCH["kind"], BATCH["goal"], exe="/usr/bin/other", desc=BATCH["desc"])
    assert plans(repo, other, 1)[0] == ("ljf", ljf_preset)  # history is per workload key


def test_ucb_explores_every_arm_then_converges_on_the_best(repo):
    prof = profile(BATCH["kind"], BATCH["goal"], desc=BATCH["desc"])
    best = ("ljf", {})  # not the first guess: the preset is
    tried = plans(repo, prof, 20, lambda p, t: 0.35 if (p, t) == best else 0.05)
    arms = {(p, repr(t)) for p, t in tried}
    first_repeat = next(i for i, x in enumerate(tried) if tried[:i].count(x))
    assert len(arms) == first_repeat >= 4  # explores each arm once before repeating
    tail = tried[-8:]
    assert tail.count(best) >= 6, tried  # then mostly exploits the best


def test_decision_time_is_well_under_a_second(repo):
    prof = profile(BATCH["kind"], BATCH["goal"], desc=BATCH["desc"])
    planner = OfflinePlanner(tools=AgentTools(repo=repo))
    times = []
    for i in range(1, 11):
        ctx = ctx_for(repo, prof, i)  # includes the history reads the loop does
        t = time.perf_counter()
        plan = planner.plan(ctx)
        times.append(time.perf_counter() - t)
        planner.observe(ctx, Outcome(plan, True), Lesson(prof.key, plan.policy, plan.tunables,
                                                         "neutral", 0.0))
    print(f"offline decision time: first {times[0] * 1000:.1f} ms, "
          f"max of the rest {max(times[1:]) * 1000:.2f} ms")
    assert times[0] < 0.5 and max(times) < 0.5

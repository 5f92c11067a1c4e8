"""One given plan through the loop (measure_plan) and re-checks of a stored best: the same
warm-up, A/B trials, decision, lesson and keep/revert as every optimization. The helper is
simulated (the host has no sched_ext) with a known effect and lognormal noise; the repository and
the loop are the real ones."""

from __future__ import annotations

import math
import random
import re

from schedcp.agent.fixed import measure_plan, run_measure_tool, summary
from schedcp.agent.tools import AgentTools, ToolFailure
from schedcp.model import Plan
from tests.app.agent.sim import PROFILE, SimExecutor, SimHelper


class Noisy(SimExecutor):
    def __init__(self, helper: SimHelper, sigma: float = 0.08, seed: int = 7):
        super().__init__(helper)
        self.rng, self.sigma = random.Random(seed), sigma

    def measure(self):
        m = super().measure()
        m.makespan_s *= math.exp(self.rng.gauss(0, self.sigma))
        return m


def test_a_real_effect_is_measured_recorded_and_reverted_unless_kept(repo):
    helper = SimHelper({"ljf{}": 0.8})
    tools = AgentTools(repo=repo, client=helper)
    steps: list[dict] = []
    res = summary(measure_plan(tools, Noisy(helper), Plan("ljf"), "throughput",
                               on_step=steps.append))
    assert res["decision"] == "improved", res
    assert re.match(r"batch run time [\d.]+ s \u2192 [\d.]+ s, \d+ % faster \(", res["effect"])
    assert "runs)" in res["effect"]
    ev = res["evidence"]
    assert ev["n_a"] >= 5 and ev["n_b"] >= 5 and ev["ratio_high"] < 0.98
    assert res["kept"] is None and helper.kept is None and helper.running is None
    assert res["lesson_recorded"] and res["workload_key"] == PROFILE.key
    best = repo.best(PROFILE.key)
    assert best.policy == "ljf" and best.evidence["n_b"] == ev["n_b"]
    trials = [s for s in steps if s["role"] == "trial"]
    assert len(trials) == ev["n_a"] + ev["n_b"]  # progress after every run

    kept = summary(measure_plan(tools, Noisy(helper, seed=8), Plan("ljf"), "throughput",
                                keep=True))
    assert kept["decision"] == "improved" and kept["kept"]["policy"] == "ljf"
    assert helper.kept == "ljf{}"


def test_no_effect_is_inconclusive_neither_kept_nor_banned(repo):
    helper = SimHelper({})
    tools = AgentTools(repo=repo, client=helper)
    res = summary(measure_plan(tools, Noisy(helper), Plan("vtime"), "throughput", keep=True))
    assert res["decision"] == "inconclusive", res
    effect = res["effect"]
    assert effect.startswith("no measurable effect on batch run time: ") and "runs)" in effect
    assert res["kept"] is None and helper.kept is None
    assert repo.antipatterns(PROFILE.key) == [] and repo.best(PROFILE.key) is None


def test_recheck_measures_the_stored_best_and_says_whether_it_held(repo):
    helper = SimHelper({"ljf{}": 0.8})
    tools = AgentTools(repo=repo, client=helper)
    nothing = summary(measure_plan(tools, Noisy(helper), None, "throughput"))
    assert nothing["plan"] is None and nothing["decision"] == "not measured"
    assert "nothing stored" in nothing["stop"]["message"]

    measure_plan(tools, Noisy(helper), Plan("ljf"), "throughput")  # stores the win
    held = summary(measure_plan(tools, Noisy(helper, seed=9), None, "throughput"))
    assert held["plan"]["policy"] == "ljf" and held["decision"] == "improved"
    assert "held" in held["stop"]["message"] and "stored effect" in held["stop"]["message"]

    helper.effect["ljf{}"] = 1.0  # the machine changed: the stored win is gone
    gone = summary(measure_plan(tools, Noisy(helper, seed=10), None, "throughput"))
    assert gone["plan"]["policy"] == "ljf" and gone["decision"] == "inconclusive"
    assert "did not hold" in gone["stop"]["message"], gone["stop"]


def test_bad_arguments_are_refused_before_anything_runs(repo):
    helper = SimHelper({})
    tools = AgentTools(repo=repo, client=helper)
    made: list = []

    def factory(**kw):
        made.append(kw)
        return SimExecutor(helper)

    for args, words in [
        ({}, "either command"),
        ({"command": ["true"], "pid": 1}, "either command"),
        ({"command": "make -j4"}, "list of non-empty strings"),
        ({"command": ["true"], "goal": "speed"}, "goal must be one of"),
        ({"command": ["true"], "policy": "ljf", "source": "x"}, "not both"),
        ({"command": ["true"], "fail_pattern": "(("}, "not a regex"),
        ({"command": ["true"], "max_pairs": 100}, "5 to 20"),
        ({"command": ["true"], "policy": "ljff"}, "did you mean"),
        ({"command": ["true"], "polcy": "ljf"}, "no argument 'polcy'"),
    ]:
        try:
            run_measure_tool(tools, args, factory)
        except ToolFailure as e:
            assert words in str(e), (args, str(e))
        else:
            raise AssertionError(f"{args} was accepted")
    assert made == [] and helper.calls == []

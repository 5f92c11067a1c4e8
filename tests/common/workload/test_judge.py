"""The dynamic stage's checks pass a healthy result and name what is wrong in a bad one."""

from __future__ import annotations

from dataclasses import replace

from schedcp_common.workload import MixedResult, Phase, Summary, Task, Verdict, judge_mixed
from schedcp_common.workload.judge import fair_shares, passed


def task(cls: str, cpu: float, wall: float = 2.8, nice: int = 0, gap: float = 200.0,
         index: int = 0, **kw) -> Task:
    return Task(cls=cls, index=index, pid=100 + index, nice=nice, finished=True, exit_status=0,
                cpu_s=cpu, wall_s=wall, iters=int(cpu * 3e8), max_gap_ms=gap, **kw)


def good(p99: float = 20.0, ips: float = 3e8, shorts: int = 160) -> MixedResult:
    """Shaped like EEVDF in the 2-vCPU guest."""
    light = Phase("light", 1.2, 1.2, 1.21, 2, 0, int(ips * 1.2), ips, (
        task("hog", 1.19, 1.2, gap=20),
        task("interactive", 0.07, 1.2, gap=18, wake=Summary(240, 0.4, 8.0, 18.0, 1.0)),
    ))
    over = Phase("overload", 2.8, 2.8, 2.85, 7, shorts, int(ips * 2.8), ips, (
        task("hog", 1.05, index=0), task("hog", 1.0, index=1), task("hog", 1.1, index=2),
        task("niced", 0.12, nice=10),
        task("short", 1.1, gap=350, completed=shorts, turnaround=Summary(shorts, 15, 330, 350, 30)),
        task("interactive", 0.08, gap=190, wake=Summary(300, 1.1, p99, 190, 5.0)),
    ))
    return MixedResult("ok", 2, 4.1, {}, (light, over))


def with_task(r: MixedResult, phase: int, index: int, **changes) -> MixedResult:
    phases = list(r.phases)
    tasks = list(phases[phase].tasks)
    tasks[index] = replace(tasks[index], **changes)
    phases[phase] = replace(phases[phase], tasks=tuple(tasks))
    return replace(r, phases=tuple(phases))


def verdicts(checks) -> dict[str, Verdict]:
    return {c.name: c.verdict for c in checks}


def failing(checks) -> dict[str, str]:
    return {c.name: c.message for c in checks if c.verdict is Verdict.FAIL}


def test_healthy_result_passes_alone_and_against_a_baseline():
    alone = judge_mixed(good())
    assert passed(alone)
    assert verdicts(alone)["interactive_latency"] is Verdict.SKIP
    assert verdicts(alone)["throughput"] is Verdict.SKIP
    against = judge_mixed(good(p99=60, ips=2e8, shorts=100), baseline=good())
    assert passed(against) and Verdict.SKIP not in verdicts(against).values()


def test_a_starved_niced_class_fails_fair_share():
    bad = with_task(good(), 1, 3, cpu_s=0.0, iters=0)
    f = failing(judge_mixed(bad))
    assert "niced #0" in f["fair_share"] and "0% of its fair share" in f["fair_share"]
    assert "never ran" in f["no_stall"]


def test_a_grossly_shortchanged_hog_fails_but_nice_weighting_does_not():
    assert "hog #2" in failing(judge_mixed(with_task(good(), 1, 2, cpu_s=0.1)))["fair_share"]
    # ignoring nice (niced hog gets as much as the others) is not starvation
    assert passed(judge_mixed(with_task(good(), 1, 3, cpu_s=1.0)))


def test_a_three_second_gap_fails_cpu_within_bound():
    f = failing(judge_mixed(with_task(good(), 1, 1, max_gap_ms=3000.0)))
    assert set(f) == {"cpu_within_bound"}
    assert "hog #1" in f["cpu_within_bound"] and "3000 ms" in f["cpu_within_bound"]


def test_no_short_lived_completions_fails():
    r = good()
    over = replace(r.phases[1], short_completed=0)
    f = failing(judge_mixed(replace(r, phases=(r.phases[0], over))))
    assert set(f) == {"short_lived_progress"} and "only 0 short-lived" in f["short_lived_progress"]
    # against a baseline, 5 % of its completions is required
    f = failing(judge_mixed(good(shorts=60), baseline=good(shorts=1500)))
    assert "baseline" in f["short_lived_progress"]


def test_unfinished_task_or_aborted_run_fails():
    f = failing(judge_mixed(with_task(good(), 0, 0, finished=False, exit_status=137)))
    assert "light: hog #0" in f["no_stall"]
    checks = judge_mixed(MixedResult("timeout", 0, 9.0, {}, ()))
    assert [(c.name, c.verdict) for c in checks] == [("completed", Verdict.FAIL)]


def test_latency_and_throughput_are_judged_against_the_baseline():
    f = failing(judge_mixed(good(p99=300.0, ips=1e8), baseline=good(p99=20.0, ips=3.5e8)))
    assert "p99 300.0 ms" in f["interactive_latency"]
    assert "limit 200.0 ms" in f["interactive_latency"]  # max(10 x 20, 20 + 100)
    assert "overload: 29% of the baseline" in f["throughput"]


def test_fair_shares_follow_nice_weights_and_cap_at_one_cpu():
    a, b = task("hog", 1.0), task("niced", 0.5, nice=10)
    share = fair_shares([a, b])
    assert share[id(a)] / share[id(b)] == 1024 / 110
    c = task("hog", 0.5, wall=0.5)  # cannot use more than its wall time
    share = fair_shares([task("hog", 2.0, index=1), c])
    assert share[id(c)] == 0.5

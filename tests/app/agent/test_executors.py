"""Executors on the host: a batch command is judged by its makespan, a running process by
its runqueue wait (through schedcp.analysis)."""

from __future__ import annotations

import subprocess
import sys
import time

from schedcp.agent.executors import BatchExecutor, PidExecutor


def test_batch_executor_measures_makespan_and_profiles_the_run():
    ex = BatchExecutor([sys.executable, "-c", "import time; time.sleep(0.6)"],
                       profile_after_s=0.05)
    prof, base = ex.observe("throughput")
    assert 0.55 < base.makespan_s < 5 and base.source == "makespan"
    assert prof.goal == "throughput" and prof.root_pid > 0 and prof.kind
    again = ex.measure()
    assert 0.55 < again.makespan_s < 5
    assert ex.target_pids == []  # a finished run leaves no pid for a canary to watch
    fail = BatchExecutor([sys.executable, "-c", "raise SystemExit(3)"]).measure()
    assert "exit status 3" in fail.source and fail.failed == "exit status 3"


def test_failed_runs_are_marked_whatever_their_time():
    """Issue #12: a run that exits non-zero, is killed, or whose output says it failed is a
    failed trial (Metrics.failed), never a time that could "win" an A/B comparison."""
    ok = BatchExecutor([sys.executable, "-c", "print('status: ok')"],
                       failure_pattern=r"status: failed").measure()
    assert ok.failed == "" and ok.makespan_s > 0
    said = BatchExecutor([sys.executable, "-c", "import sys; print('x' * 100000); "
                          "print('status: failed', file=sys.stderr)"],
                         failure_pattern=r"status: failed").measure()
    assert said.failed.startswith("its output says it failed")
    killed = BatchExecutor([sys.executable, "-c", "import time; time.sleep(30)"],
                           timeout=0.5).measure()
    assert killed.failed.startswith("killed after") and killed.makespan_s < 10
    signalled = BatchExecutor([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"]
                              ).measure()
    assert signalled.failed == "killed by signal 9"


def test_pid_executor_measures_runqueue_wait_of_a_running_process():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        ex = PidExecutor(busy.pid, seconds=0.5)
        prof, base = ex.observe("responsiveness")
        assert prof.root_pid == busy.pid and busy.pid in ex.target_pids
        assert base.runqueue_wait_ms_per_s is not None and base.runqueue_wait_ms_per_s >= 0
        assert base.primary("responsiveness") == base.runqueue_wait_ms_per_s
    finally:
        busy.kill()
        busy.wait()


def forking_batch(stamp=None) -> list[str]:
    """A batch that forks two CPU-bound jobs, 0.05 s and 0.8 s of CPU (and, given a path,
    first writes its start time there)."""
    start = f"open({str(stamp)!r}, 'w').write(repr(time.monotonic()))\n" if stamp else ""
    return [sys.executable, "-c", "import os, time\n" + start + (
        "def burn(s):\n"
        "    end = time.process_time() + s\n"
        "    while time.process_time() < end: pass\n"
        "pids = []\n"
        "for s in (0.05, 0.8):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        burn(s); os._exit(0)\n"
        "    pids.append(pid)\n"
        "for p in pids: os.waitpid(p, 0)\n")]


def test_batch_executor_feeds_learned_runtimes_of_its_jobs_as_hints():
    """The first run learns each job's CPU time; while a scheduler takes hints, the next run
    sends them as the jobs appear (tgid → ns) and clears them when the batch is done."""
    ex = BatchExecutor(forking_batch())
    ex.measure()
    assert ex.job_cpu_s["0/1"] > 0.4 > ex.job_cpu_s["0/0"]  # sampled every 0.25 s
    sent: list[dict[int, int]] = []
    ex.hint_sink = sent.append
    ex.measure()
    hints = {t: ns for batch in sent for t, ns in batch.items() if ns}
    # the long job for sure (a short one may end before any sample saw it: no hint needed)
    assert max(hints.values()) > 0.4e9, sent
    assert sent[-1] == dict.fromkeys(hints, 0)  # cleared after the run
    assert ex.runs[-1]["hinted"] == len(hints)

    def refuse(h):
        raise RuntimeError("this scheduler takes no runtime hints")

    ex.hint_sink = refuse  # a refusal stops the hints, not the measurement
    assert ex.measure().makespan_s > 0.4 and ex.runs[-1]["hinted"] == 0


def test_fork_hints_are_in_place_before_the_batch_starts(tmp_path):
    """With a fork sink, the command waits behind a barrier until its children's learned
    runtimes (birth order) were sent for its pid; they are withdrawn after the run."""
    stamp = tmp_path / "started"
    ex = BatchExecutor(forking_batch(stamp))
    ex.measure()
    calls: list[tuple[float, int, list[int]]] = []
    ex.fork_sink = lambda parent, runtimes: calls.append((time.monotonic(), parent, runtimes))
    ex.measure()
    (t_sent, parent, runtimes), (_, parent2, cleared) = calls
    assert float(stamp.read_text()) > t_sent  # the command ran only after the hints
    assert parent == parent2 and cleared == []
    # CPU time is sampled every 0.25 s: the long one shows at least 0.5 s of its 0.8 s
    assert len(runtimes) == 2 and runtimes[1] > 0.4e9 > runtimes[0]
    assert ex.runs[-1]["fork_hints"] == 2


def test_a_batch_is_profiled_once_it_forked_its_jobs_not_during_its_start_up():
    """Issue #13: `optimize -- CMD` profiled 0.3 s after the start, which in the guest fell in
    the runner's Python start-up (reads files, sleeps: gzip's batch was classed interactive).
    The window now opens when the command forked its first job."""
    start_up = [sys.executable, "-c", (
        "import os, time\n"
        "time.sleep(1.5)\n"  # an interpreter's start-up, as the sampler sees it: asleep
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    end = time.process_time() + 2.5\n"
        "    while time.process_time() < end: pass\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n")]
    prof, base = BatchExecutor(start_up).observe("throughput")
    assert base.makespan_s > 3.5
    assert len(prof.pids) >= 2, prof  # the job was in the window
    assert prof.kind == "batch", prof

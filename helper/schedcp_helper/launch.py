"""Start a deployment's scheduler: our verified objects through the loader, packaged scx_*
binaries as children. Both stop when this process dies, so the kernel falls back by itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from schedcp_common.policy import Policy

from .deploy import NoHints, Spec
from .errors import HelperError
from .loader import BpfScheduler, LoaderError
from .scxrun import ScxProcess
from .scxstate import read_state

HINT_MAP = "expected_runtime"
FORK_HINTS, FORK_SEQ = "fork_hints", "fork_seq"  # ljf: hints by (parent tgid, birth order)


class LaunchError(HelperError):
    """The scheduler could not be started; the message says why."""


class BpfRunning:
    def __init__(self, path: Path, spec: Spec):
        self._forks: dict[int, int] = {}  # parent tgid -> fork hints set
        self.sched = BpfScheduler()
        try:
            self.sched.open(path)
            values = {k: v for k, v in spec.tunables.items() if not isinstance(v, str)}
            if values:
                self.sched.set_tunables(values)
            self.sched.load()
            self.ops = self.sched.attach()
            if spec.hints:
                self.update_hints(spec.hints)
        except Exception:
            self.sched.close()
            raise

    def update_hints(self, hints: dict[int, int]) -> None:
        """tgid → expected runtime (ns) into the scheduler's hint map; 0 forgets a tgid."""
        try:
            for tgid, ns in hints.items():
                if ns:
                    self.sched.update_map(HINT_MAP, int(tgid), int(ns))
                else:
                    self.sched.delete_map_key(HINT_MAP, int(tgid))
        except LoaderError as e:
            raise NoHints(f"this scheduler takes no runtime hints ({e})") from None

    def expect_forks(self, parent: int, runtimes: list[int]) -> None:
        """The parent's next children, in birth order, run runtimes[i] ns each (0: no hint);
        an empty list stops watching the parent. The scheduler applies them as they fork."""
        try:
            for i in range(self._forks.pop(parent, 0)):  # what an earlier call set
                self.sched.delete_map_key(FORK_HINTS, parent | i << 32)
            self.sched.delete_map_key(FORK_SEQ, parent)
            if not runtimes:
                return
            for i, ns in enumerate(runtimes):
                if ns:
                    self.sched.update_map(FORK_HINTS, parent | i << 32, int(ns))
            self._forks[parent] = len(runtimes)
            self.sched.update_map(FORK_SEQ, parent, 0)  # last: counting starts now
        except LoaderError as e:
            raise NoHints(f"this scheduler takes no runtime hints ({e})") from None

    def alive(self) -> bool:
        return self.sched.attached

    def stop(self) -> None:
        self.sched.detach()
        self.sched.close()


class ScxRunning:
    def __init__(self, policy: Policy, spec: Spec, trusted_dirs: Iterable[Path]):
        self.proc = ScxProcess.for_policy(policy, spec.tunables, trusted_dirs)
        self.proc.start()
        self.ops = self.proc.ops

    def alive(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class Launcher:
    artifacts: Path
    policies: dict[str, Policy]
    trusted_dirs: list[Path] = field(default_factory=list)

    def __call__(self, spec: Spec):
        if read_state().state not in ("disabled", ""):
            raise LaunchError(f"another sched_ext scheduler is running ({read_state().ops!r}); "
                              "stop it first")
        if spec.kind == "bpf":
            path = self.artifacts / f"{spec.artifact}.bpf.o"
            if not path.is_file():
                raise LaunchError(f"verified artifact {spec.artifact[:12]} is gone; verify again")
            return BpfRunning(path, spec)
        if spec.kind == "scx":
            policy = self.policies.get(spec.name)
            if policy is None or policy.kind != "scx":
                raise LaunchError(f"no packaged scheduler policy named {spec.name!r}")
            return ScxRunning(policy, spec, self.trusted_dirs)
        raise LaunchError(f"unknown kind {spec.kind!r}")

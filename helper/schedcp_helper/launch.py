"""Start a deployment's scheduler: our verified objects through the loader, packaged scx_*
binaries as children. Both stop when this process dies, so the kernel falls back by itself.
The exception: a packaged scheduler scx_loader supports, when scx_loader is on the bus, is
run by scx_loader (``vialoader``), so it stays the one source of truth."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from schedcp_common.policy import Policy

from .deploy import NoHints, Spec
from .errors import HelperError
from .loader import BpfScheduler, LoaderError
from .scxrun import ScxProcess, build_args
from .scxstate import read_state
from .vialoader import LoaderPort, ViaLoader, left_behind

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
    # scx_loader, when the service found it: packaged schedulers it supports are run by it
    loader: LoaderPort | None = None
    marker: Path | None = None  # what we asked scx_loader to run, until we stop it

    def __call__(self, spec: Spec):
        if spec.kind == "scx" and (via := self._via_loader(spec)) is not None:
            return via
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

    def _view(self):
        try:
            return self.loader.view() if self.loader is not None else None
        except Exception:  # gone or not answering: as if it were not installed
            return None

    def loader_supports(self) -> tuple[str, ...]:
        """The packaged schedulers scx_loader would run for us (none when it is absent)."""
        view = self._view()
        return view.supported if view is not None else ()

    def _via_loader(self, spec: Spec) -> ViaLoader | None:
        """scx_loader runs it when it is there and supports the name; None: we run it."""
        policy = self.policies.get(spec.name)
        view = self._view()
        if policy is None or policy.kind != "scx" or view is None or self.marker is None or \
                policy.binary not in view.supported:
            return None
        args = build_args(policy, spec.tunables)
        busy = read_state().state not in ("disabled", "")
        # after a restart: the kept one we had scx_loader start is still running
        adopt = busy and view.current == policy.binary and list(view.args) == args and \
            left_behind(self.marker) == (policy.binary, args)
        if busy and not adopt:
            raise LaunchError(f"another sched_ext scheduler is running ({read_state().ops!r}); "
                              "stop it first")
        return ViaLoader(self.loader, policy.binary, args, self.marker, adopt=adopt)

    def release_left_behind(self, kept: Spec | None) -> str:
        """At start: what an earlier helper had scx_loader run and never stopped (it crashed)
        is stopped, unless it is the kept one (adopted instead). Returns what was stopped."""
        left = left_behind(self.marker) if self.marker is not None else None
        if left is None:
            return ""
        policy = self.policies.get(kept.name) if kept is not None and kept.kind == "scx" else None
        if policy is not None and (policy.binary, build_args(policy, kept.tunables)) == left:
            return ""
        view = self._view()
        try:
            if view is not None and view.current == left[0] and list(view.args) == left[1]:
                self.loader.stop()
                deadline = time.monotonic() + 10
                while read_state().state not in ("disabled", "") and time.monotonic() < deadline:
                    time.sleep(0.05)
                return left[0]
            return ""
        finally:
            with contextlib.suppress(OSError):
                self.marker.unlink()

"""The Execution Verifier: input → compile → static → kernel verifier → dynamic → token.

Stages run cheapest first and stop at the first failure. The static checks run on the host before
the kernel verifier because they cost milliseconds, while the kernel verifier needs the target
kernel — on hosts without sched_ext that is a micro-VM boot, which the kernel-verifier and the
dynamic stage then share (one boot: load, attach, run the workload, detach). Verdicts are cached by
artifact hash + tunables + target kernel, so re-verifying the same thing is instant.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from schedcp_common.policy import Policy, PolicyError

from ..atomic import write_atomic
from . import token
from .bpfobj import ObjectError
from .compile import CompileError, InputError, check_source, compile_source
from .objcheck import check_object
from .report import StageReport, VerifyReport
from .staticbox import STATIC_SECONDS, StaticTimeout, run_static
from .target import Target
from .trial import TrialRequest, judge, run_trial

Progress = Callable[[str, str], None]  # (stage, message) while a long stage runs


@dataclass
class VerifyRequest:
    source: bytes
    uid: int
    name: str = "custom"
    policy: Policy | None = None  # when set, tunables are validated against its bounds
    tunables: dict = field(default_factory=dict)
    hints: dict[int, int] = field(default_factory=dict)  # expected-runtime hints for the trial


@dataclass
class Verifier:
    target: Target
    state_dir: Path  # holds the token secret, verified artifacts and the verdict cache
    include_dirs: list[Path]
    extra_headers: list[Path] = field(default_factory=list)
    token_ttl: float = token.DEFAULT_TTL
    static_budget: float = STATIC_SECONDS

    @property
    def artifacts(self) -> Path:
        return self.state_dir / "artifacts"

    def _cache_file(self, key: str) -> Path:
        return self.state_dir / "verdicts" / f"{key}.json"

    def verify(self, req: VerifyRequest, progress: Progress | None = None) -> VerifyReport:
        progress = progress or (lambda stage, msg: None)
        report = VerifyReport(artifact="", name=req.name, tunables=dict(req.tunables))

        def stage(name: str, fn: Callable[[], tuple[bool, str, list[str]]]) -> bool:
            progress(name, "started")
            t0 = time.monotonic()
            ok, message, details = fn()
            report.stages.append(StageReport(name, "pass" if ok else "fail",
                                             round(time.monotonic() - t0, 3), message, details))
            progress(name, "passed" if ok else "failed")
            return ok

        compiled: dict = {}

        def do_input():
            try:
                if req.policy is not None:
                    report.tunables = req.policy.resolved(req.tunables)
                check_source(req.source)
            except (InputError, PolicyError) as e:
                return False, str(e), []
            return True, f"{len(req.source)} bytes, tunables {report.tunables or 'default'}", []

        def do_compile():
            try:
                obj = compile_source(req.source, self.include_dirs, self.extra_headers)
            except CompileError as e:
                return False, str(e), e.log.splitlines()[:60]
            compiled["data"] = obj.data
            report.artifact = hashlib.sha256(obj.data).hexdigest()
            return True, f"{len(obj.data)} bytes", obj.log.splitlines()[:20]

        if not (stage("input", do_input) and stage("compile", do_compile)):
            return report
        key = self._cache_key(report.artifact, report.tunables)
        cached = self._cached(key)
        if cached is not None:
            report.stages += [StageReport(**s) for s in cached["stages"]]
            report.cached = True
            if all(s.verdict != "fail" for s in report.stages):
                self._store(report.artifact, compiled["data"])
                self._sign(report, req.uid)
            return report
        # the object lives in a private folder until it passes: refused objects are never kept
        with tempfile.TemporaryDirectory(prefix="schedcp-verify-") as d:
            obj_path = Path(d) / f"{report.artifact}.bpf.o"
            obj_path.write_bytes(compiled["data"])
            self._check_and_trial(req, report, key, obj_path, progress, stage)
        if all(s.verdict != "fail" for s in report.stages):
            self._store(report.artifact, compiled["data"])
            self._sign(report, req.uid)
        return report

    def _check_and_trial(self, req: VerifyRequest, report: VerifyReport, key: str,
                         obj_path: Path, progress: Progress, stage) -> None:
        timed_out = False

        def do_static():
            nonlocal timed_out
            try:
                shape = check_object(obj_path.read_bytes())  # before anything parses it
                ints = {k: int(v) for k, v in report.tunables.items() if not isinstance(v, str)}
                ops, findings = run_static(obj_path, self.target.bpftool,
                                           self.target.functions(), ints, self.static_budget)
            except StaticTimeout as e:  # the host's load, not the object: never cached
                timed_out = True
                return False, str(e), []
            except ObjectError as e:
                return False, str(e), []
            bad = [f for f in findings if f.severe and not f.ok]
            details = [f"{'ok  ' if f.ok else 'FAIL'} {f.check}: {f.message}" for f in findings]
            if bad:
                return False, "; ".join(f"{f.check}: {f.message}" for f in bad), details
            return True, (f"{len(findings)} checks passed (ops {ops!r}, {shape.functions} "
                          "functions)"), details

        if not stage("static", do_static):
            if not timed_out:
                self._remember(key, report)
            return
        progress("kernel-verifier", "started")
        trial = run_trial(self.target, TrialRequest(
            object=str(obj_path), tunables=report.tunables, hints=req.hints), progress)
        try:
            judged = judge(trial)
        except (KeyError, TypeError, AttributeError, ValueError) as e:  # hostile guest output
            judged = [StageReport("kernel-verifier", "fail", 0.0,
                                  f"the trial's result is malformed ({type(e).__name__})")]
        for s in judged:
            report.stages.append(s)
            progress(s.name, "passed" if s.passed else "failed")
            if not s.passed:
                break
        self._remember(key, report)

    def _sign(self, report: VerifyReport, uid: int) -> None:
        t0 = time.monotonic()
        secret = token.load_secret(self.state_dir / "token.key")
        report.token = token.issue(secret, token.grant_for(report.artifact, report.tunables, uid,
                                                           self.token_ttl))
        report.stages.append(StageReport("token", "pass", round(time.monotonic() - t0, 3),
                                         f"valid for {self.token_ttl / 60:g} min, uid {uid}"))

    def _cache_key(self, artifact: str, tunables: dict) -> str:
        blob = json.dumps([artifact, tunables, self.target.release], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def _cached(self, key: str) -> dict | None:
        try:
            return json.loads(self._cache_file(key).read_text())
        except (OSError, ValueError):
            return None

    def _remember(self, key: str, report: VerifyReport) -> None:
        """Cache passes and deterministic refusals (static, kernel verifier) only: a dynamic
        failure may be a loaded host's noise and a trial that never ran says nothing (nor does
        a static stage killed for time: the caller does not come here then)."""
        if report.failed_stage not in (None, "static", "kernel-verifier") or any(
            s.message.startswith("the trial did not run") for s in report.stages
        ):
            return
        path = self._cache_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        stages = [vars(s) for s in report.stages if s.name not in ("input", "compile", "token")]
        write_atomic(path, json.dumps({"stages": stages}))

    def _store(self, artifact: str, data: bytes) -> Path:
        """Verified objects are kept by hash: deploy loads exactly the bytes that were checked.
        Only objects that passed are stored, so refused requests cost no disk."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{artifact}.bpf.o"
        if not path.exists():
            write_atomic(path, data)
        return path

"""The helper's core, as one object: verify, deploy, keep, revert, status, history.

It knows nothing of D-Bus or of who the caller is beyond a uid handed in: the service layer (and
the root CLI) authenticate and authorize, then call this. Every input is validated here anyway.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from schedcp_common.policy import Policy, PolicyError, data_dir, default_policies_dir, load_policies
from schedcp_common.vm.kit import KitError, find_kit

from .deploy import CanaryParams, Deployer, DeployError, Deployment, Listener, Spec
from .launch import Launcher
from .verifier import token
from .verifier.pipeline import Progress, Verifier, VerifyRequest
from .verifier.report import VerifyReport
from .verifier.target import Target, TargetError

DEFAULT_STATE_DIR = Path("/var/lib/schedcp")
TRUSTED_SCX_DIRS_ENV = "SCHEDCP_TRUSTED_SCX_DIRS"  # extra dirs for tests (root-owned, checked)


def default_bpf_dir() -> Path:
    checkout = Path(__file__).resolve().parents[2] / "bpf"
    return checkout if checkout.is_dir() else data_dir() / "bpf"


def state_dir_from_env() -> Path:
    return Path(os.environ.get("SCHEDCP_STATE_DIR", DEFAULT_STATE_DIR))


@dataclass
class HelperCore:
    state_dir: Path = field(default_factory=state_dir_from_env)
    policies_dir: Path = field(default_factory=default_policies_dir)
    bpf_dir: Path = field(default_factory=default_bpf_dir)
    listener: Listener | None = None

    def __post_init__(self) -> None:
        # absolute: the verifier hands artifact paths to a trial that runs in another cwd
        self.state_dir = Path(self.state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        self.policies: dict[str, Policy] = load_policies(self.policies_dir)
        self._verifier: Verifier | None = None
        trusted = [Path(p) for p in os.environ.get(TRUSTED_SCX_DIRS_ENV, "").split(":") if p]
        self.deployer = Deployer(
            self.state_dir, Launcher(self.state_dir / "artifacts", self.policies, trusted),
            self.listener)

    @property
    def verifier(self) -> Verifier:
        """Built on first use: a machine with neither sched_ext nor the guest kit must still
        answer status (and say what is missing) rather than fail to start."""
        if self._verifier is None:
            target = Target.detect()  # TargetError says how to fix it
            kit = target.kit
            if kit is None:  # inside the guest the target is direct, yet the kit's headers are here
                with contextlib.suppress(KitError):
                    kit = find_kit()
            include = [kit.include] if kit else [Path("/usr/include")]
            self._verifier = Verifier(target, self.state_dir, include,
                                      [self.bpf_dir / "schedcp.bpf.h"])
            assert self._verifier.artifacts == self.state_dir / "artifacts"
        return self._verifier

    @property
    def target(self) -> Target:
        return self.verifier.target

    # -- verify --------------------------------------------------------------------------------
    def verify_policy(self, name: str, tunables: dict, uid: int,
                      progress: Progress | None = None) -> VerifyReport:
        """One of our bpf/ policies, with tunables checked against its metadata."""
        policy = self.policy(name)
        if policy.kind != "bpf":
            raise PolicyError(f"{name} is a packaged scheduler: switch to it, nothing to verify")
        source = (self.bpf_dir / policy.source).read_bytes()
        with self._trial_window():
            return self.verifier.verify(VerifyRequest(source=source, uid=uid, name=name,
                                                      policy=policy, tunables=tunables),
                                        progress)

    def verify_source(self, source: bytes, tunables: dict, uid: int, name: str = "custom",
                      progress: Progress | None = None) -> VerifyReport:
        """Generated or edited code: tunables may only name the object's own globals."""
        with self._trial_window():
            return self.verifier.verify(VerifyRequest(source=source, uid=uid, name=name,
                                                      tunables=tunables), progress)

    def _trial_window(self):
        """Trials normally run in a micro-VM and leave the host alone; inside the throwaway
        guest they run in this kernel, so whatever we deployed steps aside meanwhile."""
        return self.deployer.paused() if self.target.direct else contextlib.nullcontext()

    # -- deploy --------------------------------------------------------------------------------
    def deploy(self, token_text: str, uid: int, canary: CanaryParams, owner: str = "",
               hints: dict[int, int] | None = None, name: str = "",
               resume: bool = False) -> Deployment:
        secret = token.load_secret(self.state_dir / "token.key")
        grant = token.check(secret, token_text, uid)
        spec = Spec("bpf", name or grant.artifact[:12], dict(grant.tunables), grant.artifact,
                    dict(hints or {}))
        return self.deployer.deploy(spec, canary, uid, owner, resume)

    def switch(self, name: str, tunables: dict, uid: int, canary: CanaryParams,
               owner: str = "", resume: bool = False) -> Deployment:
        """Run a packaged scx_* scheduler; its arguments are validated against its metadata."""
        policy = self.policy(name)
        if policy.kind != "scx":
            raise PolicyError(f"{name} is one of ours: verify it, then deploy the token")
        spec = Spec("scx", name, policy.resolved(tunables))
        return self.deployer.deploy(spec, canary, uid, owner, resume)

    def report(self, dep_id: str, value: float, baseline: float,
               higher_is_better: bool) -> None:
        """A caller-measured metric for the running canary; enough bad ones trip the breaker."""
        self.deployer.report(dep_id, value, baseline, higher_is_better)

    def update_hints(self, dep_id: str, hints: dict[int, int]) -> int:
        return self.deployer.update_hints(dep_id, hints)

    def expect_forks(self, dep_id: str, parent: int, runtimes: list[int]) -> int:
        return self.deployer.expect_forks(dep_id, parent, runtimes)

    def keep(self, dep_id: str) -> Deployment:
        return self.deployer.keep(dep_id)

    def revert(self, reason: str = "requested", dep_id: str | None = None) -> Deployment | None:
        return self.deployer.revert(reason, dep_id)

    def status(self) -> dict:
        st = self.deployer.status()
        try:
            st["target"], st["trials"] = self.target.release, self.target.trials
        except TargetError as e:  # no sched_ext here and no micro-VM kit to verify in
            st["target"], st["target_problem"], st["trials"] = "", str(e), ""
        return st

    def history(self) -> list[Deployment]:
        return list(self.deployer.history)

    def policy(self, name: str) -> Policy:
        try:
            return self.policies[name]
        except KeyError:
            raise PolicyError(f"no policy named {name!r}; known: "
                              f"{', '.join(sorted(self.policies))}") from None

    def shutdown(self) -> None:
        self.deployer.shutdown()


__all__ = ["CanaryParams", "DeployError", "HelperCore"]

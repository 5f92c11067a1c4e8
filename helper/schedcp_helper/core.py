"""The helper's core, as one object: verify, deploy, keep, revert, status, history.

It knows nothing of D-Bus or of who the caller is beyond a uid handed in: the service layer (and
the root CLI) authenticate and authorize, then call this. Every input is validated here anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from schedcp_common.policy import Policy, PolicyError, data_dir, default_policies_dir, load_policies
from schedcp_common.vm.kit import KitError, find_kit

from .artifactbook import ArtifactBook, within_metadata
from .deploy import CanaryParams, Deployer, DeployError, Deployment, Listener, Spec
from .errors import NotAuthorized, NotFound
from .launch import Launcher
from .scxrun import ScxRunError, UntrustedBinary, find_binary
from .verifier import token
from .verifier.pipeline import Progress, Verifier, VerifyRequest
from .verifier.report import VerifyReport
from .verifier.target import Target, TargetError
from .vialoader import LoaderPort

DEFAULT_STATE_DIR = Path("/var/lib/schedcp")
log = logging.getLogger(__name__)
TRUSTED_SCX_DIRS_ENV = "SCHEDCP_TRUSTED_SCX_DIRS"  # extra dirs for tests (root-owned, checked)


def default_bpf_dir() -> Path:
    checkout = Path(__file__).resolve().parents[2] / "bpf"
    return checkout if checkout.is_dir() else data_dir() / "bpf"


def state_dir_from_env() -> Path:
    return Path(os.environ.get("SCHEDCP_STATE_DIR", DEFAULT_STATE_DIR))


class UnknownPolicy(NotFound, PolicyError):
    """No policy of that name is installed."""


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
            self.state_dir, Launcher(self.state_dir / "artifacts", self.policies, trusted,
                                     marker=self.state_dir / "via-loader.json"),
            self.listener)
        self.book = ArtifactBook(self.state_dir / "artifacts-book.json")

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
            report = self.verifier.verify(VerifyRequest(source=source, uid=uid, name=name,
                                                        policy=policy, tunables=tunables),
                                          progress)
        self._book(report, name, shipped=True)
        return report

    def verify_source(self, source: bytes, tunables: dict, uid: int, name: str = "custom",
                      progress: Progress | None = None) -> VerifyReport:
        """Generated or edited code: tunables may only name the object's own globals."""
        with self._trial_window():
            report = self.verifier.verify(VerifyRequest(source=source, uid=uid, name=name,
                                                        tunables=tunables), progress)
        self._book(report, name, shipped=False)
        return report

    def _book(self, report: VerifyReport, name: str, shipped: bool) -> None:
        if report.ok and report.artifact:
            self.book.record(report.artifact, name, shipped)

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
        # unnamed: the name it was verified under (the book), else the artifact's hash
        booked = (self.book.get(grant.artifact) or {}).get("name")
        spec = Spec("bpf", name or booked or grant.artifact[:12], dict(grant.tunables),
                    grant.artifact, dict(hints or {}))
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

    def update_hints(self, dep_id: str, hints: dict[int, int], owner: str | None = None) -> int:
        """``owner``: the client asking; hints are only the deploying client's to send."""
        self._check_owner(dep_id, owner)
        return self.deployer.update_hints(dep_id, hints)

    def expect_forks(self, dep_id: str, parent: int, runtimes: list[int],
                     owner: str | None = None) -> int:
        self._check_owner(dep_id, owner)
        return self.deployer.expect_forks(dep_id, parent, runtimes)

    def _check_owner(self, dep_id: str, owner: str | None) -> None:
        if owner is not None and self.deployer.find(dep_id).owner != owner:
            raise NotAuthorized("only the connection that deployed it may send its hints")

    def keep(self, dep_id: str, uid: int = 0) -> Deployment:
        """Only the user who deployed it (or root) keeps a deployment."""
        if uid not in (0, self.deployer.find(dep_id).uid):
            raise NotAuthorized("only the user who deployed it (or root) can keep it")
        return self.deployer.keep(dep_id)

    def kept_owner(self, dep_id: str | None = None) -> int | None:
        """The uid whose kept choice a revert of ``dep_id`` would end (see Deployer)."""
        return self.deployer.kept_owner(dep_id)

    def current(self) -> Deployment | None:
        """The deployment running now (on canary, passed or kept), if any."""
        return self.deployer.current

    def owner_vanished(self, owner: str) -> None:
        self.deployer.owner_vanished(owner)

    def use_loader(self, port: LoaderPort | None) -> None:
        """scx_loader on the bus (the service found it): packaged schedulers it supports are
        switched through it instead of being started here. Never our BPF policies."""
        self.deployer.launch.loader = port

    def held_via_loader(self) -> str:
        """The scx_* name scx_loader runs for our current deployment, "" when it is not."""
        running = self.deployer.running
        return getattr(running, "name", "") if getattr(running, "via", "") else ""

    def recover(self) -> Spec | None:
        # a crashed helper's canary that scx_loader still runs: stopped, as our children are
        try:
            self.deployer.launch.release_left_behind(self.deployer.kept)
        except Exception as e:  # scx_loader gone or refusing: nothing of ours to stop there
            log.warning("could not stop what scx_loader ran for the previous helper: %s", e)
        return self.deployer.recover()

    def state_file(self, name: str) -> Path:
        """A file of the state folder, for the service's own records (e.g. a take-over)."""
        return self.state_dir / name

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

    def knows(self, name: str, kind: str = "") -> bool:
        """Whether a policy of that name (and ``kind``, if given) is installed."""
        policy = self.policies.get(name)
        return policy is not None and kind in ("", policy.kind)

    def deploy_request(self, token_text: str, uid: int) -> tuple[str, str, bool]:
        """(name, artifact, shipped) of what a token would deploy, ('', '', False) for a bad
        token: what the authorization dialog shows and which action it asks for. Shipped
        means verified from one of our policies with tunables inside its metadata."""
        try:
            grant = token.check(token.load_secret(self.state_dir / "token.key"), token_text, uid)
        except token.TokenError:
            return "", "", False
        entry = self.book.get(grant.artifact)
        if entry is None:
            return "", grant.artifact, False
        shipped = bool(entry.get("shipped")) and within_metadata(
            self.policies.get(entry.get("name", "")), grant.tunables)
        return entry["name"], grant.artifact, shipped

    def schedulers(self) -> list[dict]:
        """Every policy with its metadata, whether it can run here (a packaged scheduler needs
        its binary in a trusted folder, or scx_loader to support it) and whether one of its
        builds passed verification."""
        verified = self.book.shipped_names()
        trusted = self.deployer.launch.trusted_dirs
        by_loader = self.deployer.launch.loader_supports()
        out = []
        for p in self.policies.values():
            available = True
            if p.kind == "scx" and p.binary not in by_loader:
                try:
                    find_binary(p.binary, trusted)
                except (ScxRunError, UntrustedBinary, OSError):
                    available = False
            out.append({"name": p.name, "kind": p.kind, "summary": p.summary,
                        "goals": list(p.goals), "workloads": list(p.workloads),
                        "available": available, "verified": p.name in verified,
                        "tunables": {k: {"type": t.type, "default": t.default, "min": t.min,
                                         "max": t.max, "choices": list(t.choices),
                                         "unit": t.unit, "help": t.help}
                                     for k, t in p.tunables.items()}})
        return out

    def policy(self, name: str) -> Policy:
        try:
            return self.policies[name]
        except KeyError:
            raise UnknownPolicy(f"no policy named {name!r}; known: "
                              f"{', '.join(sorted(self.policies))}") from None

    def shutdown(self) -> None:
        self.deployer.shutdown()


__all__ = ["CanaryParams", "DeployError", "HelperCore"]

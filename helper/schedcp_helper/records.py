"""What a deployment is: the scheduler to run (Spec), how its canary watches it (CanaryParams)
and its record (Deployment), with the checked readers of the records state.json holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .states import State


@dataclass
class Spec:
    """What to run: a verified object of ours, or a packaged scx_* policy, with its tunables."""

    kind: str  # "bpf" | "scx"
    name: str
    tunables: dict = field(default_factory=dict)
    artifact: str = ""  # bpf: sha256 of the verified object
    hints: dict[int, int] = field(default_factory=dict)  # bpf: tgid → expected runtime ns


@dataclass
class CanaryParams:
    window_s: float = 30.0
    poll_s: float = 0.1
    target_pids: list[int] = field(default_factory=list)
    max_wait_ratio: float = 3.0  # trip when a target's runqueue-wait share exceeds this x baseline
    wait_floor: float = 0.10  # ... and exceeds this absolute share (noise guard)
    regression_ratio: float = 1.25  # trip when a reported metric is this much worse
    strikes: int = 3  # consecutive bad samples before tripping


@dataclass
class Deployment:
    id: str
    spec: Spec
    uid: int
    owner: str = ""  # the client holding it (a D-Bus unique name); "" = nobody
    state: State = State.CANARY
    ops: str = ""
    started: float = 0.0
    ended: float = 0.0
    reason: str = ""
    previous: Spec | None = None  # what a revert brings back (None: the kernel default)
    via: str = ""  # held through another tool ("scx_loader"), "" when we run it ourselves
    metrics: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Deployment:
        d = dict(d)
        d["spec"] = Spec(**d["spec"])
        d["previous"] = Spec(**d["previous"]) if d.get("previous") else None
        return cls(**d)


def spec_from_json(d: object) -> Spec:
    """A Spec from untrusted JSON, every field type-checked."""
    if not isinstance(d, dict) or set(d) - {"kind", "name", "tunables", "artifact", "hints"}:
        raise ValueError("a spec is not an object of known fields")
    spec = Spec(kind=d["kind"], name=d["name"], tunables=d.get("tunables", {}),
                artifact=d.get("artifact", ""),
                hints={int(k): int(v) for k, v in dict(d.get("hints", {})).items()})
    if spec.kind not in ("bpf", "scx") or not isinstance(spec.name, str) or not spec.name:
        raise ValueError(f"bad spec kind/name {spec.kind!r}/{spec.name!r}")
    if not isinstance(spec.tunables, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float | bool | str)
            for k, v in spec.tunables.items()):
        raise ValueError("bad tunables")
    if not isinstance(spec.artifact, str) or (spec.artifact and (
            len(spec.artifact) != 64 or set(spec.artifact) - set("0123456789abcdef"))):
        raise ValueError("bad artifact id")
    return spec


def deployment_from_json(d: object) -> Deployment:
    if not isinstance(d, dict):
        raise ValueError("a history entry is not an object")
    dep = Deployment(
        id=str(d["id"]), spec=spec_from_json(d["spec"]), uid=int(d["uid"]),
        owner=str(d.get("owner", "")),
        state=str(d.get("state", "")), ops=str(d.get("ops", "")),
        started=float(d.get("started", 0.0)), ended=float(d.get("ended", 0.0)),
        reason=str(d.get("reason", "")),
        previous=spec_from_json(d["previous"]) if d.get("previous") else None,
        via=str(d.get("via", ""))[:32],
        metrics=[m for m in d.get("metrics", []) if isinstance(m, dict)])
    if dep.state not in set(State):
        raise ValueError(f"unknown deployment state {dep.state!r}")
    dep.state = State(dep.state)
    return dep

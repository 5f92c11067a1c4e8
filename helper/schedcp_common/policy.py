"""Scheduler metadata from ``policies/*.toml``: what each scheduler is for and its tunables.

The helper trusts only its own installed copy of this metadata: tunable bounds declared here are
what every privileged path validates against, whatever the caller sends.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

GOALS = frozenset({"responsiveness", "throughput", "battery", "balanced"})
WORKLOADS = frozenset({"game", "build", "batch", "interactive", "media", "idle", "server"})
NAME_RE = re.compile(r"^[a-z0-9_]{1,48}$")
FLAG_RE = re.compile(r"^-{1,2}[A-Za-z0-9][A-Za-z0-9-]*$")
TYPES = ("int", "bool", "enum")

Value = int | bool | str


class PolicyError(ValueError):
    """Metadata or a tunable value is invalid; the message names the file or tunable."""


@dataclass(frozen=True)
class Tunable:
    name: str
    type: str
    default: Value
    help: str = ""
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    flag: str = ""
    label: str = ""  # what a person reads ("Turn length"); the name is for programs
    set_by_helper: bool = False  # filled in at deployment (e.g. the target's cgroup id)

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def validate(self, value: object) -> Value:
        """Return ``value`` if it has this tunable's type and lies within its bounds."""
        if self.type == "bool":
            if not isinstance(value, bool):
                raise PolicyError(f"{self.name}: expected true or false, got {value!r}")
            return value
        if self.type == "enum":
            if value not in self.choices:
                raise PolicyError(f"{self.name}: expected one of {', '.join(self.choices)}, "
                                  f"got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyError(f"{self.name}: expected an integer, got {value!r}")
        assert self.min is not None and self.max is not None
        if not self.min <= value <= self.max:
            unit = f" {self.unit}" if self.unit else ""
            raise PolicyError(f"{self.name}: {value}{unit} is outside {self.min}..{self.max}{unit}")
        return value


@dataclass(frozen=True)
class Policy:
    name: str
    kind: str  # "bpf" (ours, source in bpf/) or "scx" (a packaged binary)
    summary: str
    description: str
    goals: tuple[str, ...]
    workloads: tuple[str, ...]
    tunables: dict[str, Tunable] = field(default_factory=dict)
    presets: dict[str, dict[str, Value]] = field(default_factory=dict)
    source: str = ""
    binary: str = ""
    demo: bool = False  # the kernel's example schedulers: for trying sched_ext, not daily use

    def validate_tunables(self, values: dict[str, object]) -> dict[str, Value]:
        """Check a full or partial assignment; unknown names are refused, never ignored."""
        unknown = sorted(set(values) - set(self.tunables))
        if unknown:
            raise PolicyError(f"{self.name}: unknown tunable(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(self.tunables)) or 'none'}")
        return {k: self.tunables[k].validate(v) for k, v in values.items()}

    def resolved(self, values: dict[str, object] | None = None) -> dict[str, Value]:
        """Defaults overlaid with validated ``values``."""
        out = {k: t.default for k, t in self.tunables.items()}
        out.update(self.validate_tunables(values or {}))
        return out


def _tunable(policy: str, name: str, raw: dict, kind: str) -> Tunable:
    where = f"{policy}: tunable {name}"
    if not NAME_RE.match(name):
        raise PolicyError(f"{where}: bad name")
    ttype = raw.get("type")
    if ttype not in TYPES:
        raise PolicyError(f"{where}: type must be one of {', '.join(TYPES)}")
    flag = raw.get("flag", "")
    if kind == "scx" and not FLAG_RE.match(flag):
        raise PolicyError(f"{where}: scx tunables need a flag like --slice-us")
    t = Tunable(
        name=name, type=ttype, default=raw.get("default"), help=raw.get("help", ""),
        min=raw.get("min"), max=raw.get("max"), choices=tuple(raw.get("choices", ())),
        unit=raw.get("unit", ""), flag=flag, label=raw.get("label", ""),
        set_by_helper=raw.get("set_by_helper", False),
    )
    if not isinstance(t.label, str) or len(t.label) > 60:
        raise PolicyError(f"{where}: label must be a short string")
    if not isinstance(t.set_by_helper, bool):
        raise PolicyError(f"{where}: set_by_helper must be true or false")
    bounded = isinstance(t.min, int) and isinstance(t.max, int) and t.min <= t.max
    if ttype == "int" and not bounded:
        raise PolicyError(f"{where}: int tunables need integer min <= max")
    if ttype == "enum" and not t.choices:
        raise PolicyError(f"{where}: enum tunables need choices")
    try:
        t.validate(t.default)
    except PolicyError as e:
        raise PolicyError(f"{policy}: default of {e}") from None
    return t


def parse_policy(data: dict, name: str) -> Policy:
    """Validate one parsed TOML document; ``name`` is the file stem it must match."""
    if data.get("name") != name or not NAME_RE.match(name):
        raise PolicyError(f"{name}: `name` must equal the file name ({name!r})")
    kind = data.get("kind")
    if kind not in ("bpf", "scx"):
        raise PolicyError(f"{name}: kind must be 'bpf' or 'scx'")
    source, binary = data.get("source", ""), data.get("binary", "")
    if kind == "bpf" and not re.match(r"^[a-z0-9_]+\.bpf\.c$", source):
        raise PolicyError(f"{name}: bpf policies need source = '<file>.bpf.c'")
    if kind == "scx" and not re.match(r"^scx_[a-z0-9_]+$", binary):
        raise PolicyError(f"{name}: scx policies need binary = 'scx_<name>'")
    goals = tuple(data.get("goals", ()))
    workloads = tuple(data.get("workloads", ()))
    if not goals or not set(goals) <= GOALS:
        raise PolicyError(f"{name}: goals must be a non-empty subset of {sorted(GOALS)}")
    if not set(workloads) <= WORKLOADS:
        raise PolicyError(f"{name}: workloads must be a subset of {sorted(WORKLOADS)}")
    for key in ("summary", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise PolicyError(f"{name}: `{key}` is required")
    tunables = {k: _tunable(name, k, v, kind) for k, v in data.get("tunables", {}).items()}
    policy = Policy(
        name=name, kind=kind, summary=data["summary"].strip(),
        description=" ".join(data["description"].split()), goals=goals, workloads=workloads,
        tunables=tunables, source=source, binary=binary, demo=data.get("demo", False) is True,
    )
    presets = {}
    for goal, values in data.get("presets", {}).items():
        if goal not in GOALS:
            raise PolicyError(f"{name}: preset for unknown goal {goal!r}")
        try:
            presets[goal] = policy.validate_tunables(values)
        except PolicyError as e:
            raise PolicyError(f"{name}: preset {goal}: {e}") from None
    object.__setattr__(policy, "presets", presets)
    return policy


def load_policy(path: Path) -> Policy:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"{path}: {e}") from None
    return parse_policy(data, path.name.removesuffix(".toml"))


def load_policies(directory: Path) -> dict[str, Policy]:
    return {p.name: p for p in map(load_policy, sorted(directory.glob("*.toml")))}


def data_dir() -> Path:
    """Where policies/ and bpf/ are installed: /usr/share/schedcp, or $SCHEDCP_DATA_DIR
    (the flatpak's /app/share/schedcp)."""
    return Path(os.environ.get("SCHEDCP_DATA_DIR") or "/usr/share/schedcp")


def default_policies_dir() -> Path:
    """The source checkout's ``policies/``, else the installed copy."""
    checkout = Path(__file__).resolve().parents[2] / "policies"
    return checkout if checkout.is_dir() else data_dir() / "policies"

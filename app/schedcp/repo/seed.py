"""What the repository is seeded with: ``policies/*.toml`` (their ``bpf/`` source attached) and the
composable code primitives in ``policies/primitives/``.

A primitive is a C snippet for ``bpf/schedcp.bpf.h`` whose first comment holds TOML between
``/* ---`` and ``--- */`` lines: name, summary, description, goals, workloads, compose.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from schedcp_common.policy import Policy, default_policies_dir, load_policies

_HEADER = re.compile(r"\A\s*/\* ---\n(?P<toml>.*?)\n--- \*/\n", re.S)


class SeedError(ValueError):
    """A seed file is malformed; the message names it."""


@dataclass
class PolicyEntry:
    name: str
    kind: str  # "bpf" | "scx" | "custom" | "primitive"
    summary: str
    description: str
    goals: list[str] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)
    tunables: dict[str, dict[str, Any]] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def search_texts(self) -> list[str]:
        """Texts embedded for retrieval; a query is scored by its best match among them."""
        head = f"{self.name.replace('_', ' ')}: {self.summary}"
        return [head, f"{head} {self.description}"]


@dataclass(frozen=True)
class SeedDirs:
    policies: Path
    bpf: Path
    primitives: Path

    @classmethod
    def default(cls) -> SeedDirs:
        policies = default_policies_dir()
        return cls(policies, policies.parent / "bpf", policies / "primitives")

    def files(self) -> list[Path]:
        return sorted([*self.policies.glob("*.toml"), *self.bpf.glob("*.bpf.c"),
                       *self.bpf.glob("*.bpf.h"), *self.primitives.glob("*.bpf.h")])

    def digest(self) -> str:
        """Changes whenever any seed file is added, removed or edited."""
        h = hashlib.sha256()
        for path in self.files():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return h.hexdigest()


def _tunable_dict(policy: Policy) -> dict[str, dict[str, Any]]:
    out = {}
    for name, t in policy.tunables.items():
        d = {"type": t.type, "min": t.min, "max": t.max, "default": t.default, "help": t.help,
             "choices": list(t.choices), "unit": t.unit, "flag": t.flag, "label": t.label}
        out[name] = {k: v for k, v in d.items() if v not in (None, "", [])}
        if t.set_by_helper:
            out[name]["set_by_helper"] = True
    return out


def policy_entries(dirs: SeedDirs) -> list[PolicyEntry]:
    entries = []
    for p in load_policies(dirs.policies).values():
        src = dirs.bpf / p.source if p.kind == "bpf" else None
        entries.append(PolicyEntry(
            name=p.name, kind=p.kind, summary=p.summary, description=p.description,
            goals=list(p.goals), workloads=list(p.workloads), tunables=_tunable_dict(p),
            presets={g: dict(v) for g, v in p.presets.items()},
            source=src.read_text() if src and src.is_file() else None))
    return entries


def parse_primitive(path: Path) -> PolicyEntry:
    text = path.read_text()
    m = _HEADER.match(text)
    if not m:
        raise SeedError(f"{path.name}: must start with a /* --- TOML --- */ header")
    try:
        meta = tomllib.loads(m.group("toml"))
    except tomllib.TOMLDecodeError as e:
        raise SeedError(f"{path.name}: {e}") from None
    name = meta.get("name")
    if name != path.name.removesuffix(".bpf.h"):
        raise SeedError(f"{path.name}: name must equal the file stem")
    for key in ("summary", "description", "compose"):
        if not str(meta.get(key, "")).strip():
            raise SeedError(f"{path.name}: `{key}` is required")
    description = " ".join(meta["description"].split())
    compose = " ".join(meta["compose"].split())
    return PolicyEntry(name=name, kind="primitive", summary=meta["summary"].strip(),
                       description=f"{description} How to compose: {compose}",
                       goals=list(meta.get("goals", [])), workloads=list(meta.get("workloads", [])),
                       source=text)


def primitive_entries(dirs: SeedDirs) -> list[PolicyEntry]:
    return [parse_primitive(p) for p in sorted(dirs.primitives.glob("*.bpf.h"))]


def seed_entries(dirs: SeedDirs) -> list[PolicyEntry]:
    entries = policy_entries(dirs) + primitive_entries(dirs)
    names = [e.name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SeedError(f"duplicate names across policies and primitives: {', '.join(dupes)}")
    return entries

"""Structured verification reports: one entry per stage, with a message a person can act on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

STAGES = ("input", "compile", "static", "kernel-verifier", "dynamic", "token")


@dataclass
class StageReport:
    name: str
    verdict: str  # "pass" | "fail" | "skipped"
    seconds: float
    message: str
    details: list[str] = field(default_factory=list)  # per-check lines, a verifier log, ...

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass
class VerifyReport:
    artifact: str  # sha256 of the compiled object ("" if it never compiled)
    name: str  # policy name or "custom"
    tunables: dict
    stages: list[StageReport] = field(default_factory=list)
    token: str = ""
    cached: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(s.verdict != "fail" for s in self.stages) and bool(
            self.token)

    @property
    def failed_stage(self) -> str | None:
        return next((s.name for s in self.stages if s.verdict == "fail"), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"], d["failed_stage"] = self.ok, self.failed_stage
        return d

    def render(self) -> str:
        lines = [f"{self.name} ({self.artifact[:12] or 'no artifact'})"
                 + (" [cached verdict]" if self.cached else "")]
        for s in self.stages:
            lines.append(f"  {s.name:16} {s.verdict:7} {s.seconds:6.2f}s  {s.message}")
        lines.append("  => " + ("verified" if self.ok else f"refused at {self.failed_stage}"))
        return "\n".join(lines)

"""PolicyRepository: lookup, search filters, per-workload history, promotion."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from schedcp.model import Lesson
from schedcp.repo import Hit, PolicyEntry, PolicyRepository

from .conftest import REPO_ROOT

KEY = "batch:throughput:make"


def test_seeded_with_every_policy_and_primitive(repo: PolicyRepository) -> None:
    policies = {p.stem for p in (REPO_ROOT / "policies").glob("*.toml")}
    primitives = {p.name.removesuffix(".bpf.h")
                  for p in (REPO_ROOT / "policies" / "primitives").glob("*.bpf.h")}
    assert set(repo.names("bpf,scx")) == policies
    assert {e.name for e in repo.primitives()} == primitives and len(primitives) >= 6
    assert all(e.kind == "primitive" and e.source and e.source.startswith("/* ---")
               for e in repo.primitives())


def test_get_returns_metadata_and_source(repo: PolicyRepository) -> None:
    ljf = repo.get("ljf")
    assert isinstance(ljf, PolicyEntry) and ljf.kind == "bpf"
    assert "SCHEDCP_OPS(ljf," in ljf.source
    declared = tomllib.loads((REPO_ROOT / "policies" / "ljf.toml").read_text())
    assert ljf.tunables["max_boost_ms"] == declared["tunables"]["max_boost_ms"]
    assert ljf.presets["throughput"] == declared["presets"]["throughput"]
    lavd = repo.get("scx_lavd")
    assert lavd.kind == "scx" and lavd.source is None
    assert lavd.tunables["powersave"]["flag"] == "--powersave"
    with pytest.raises(KeyError):
        repo.get("no_such_policy")


def test_search_filters_by_kind_goal_and_k(repo: PolicyRepository) -> None:
    hits = repo.search("save battery on a laptop", k=3)
    assert len(hits) == 3 and all(isinstance(h, Hit) for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert [h.kind for h in repo.search("vtime", k=20, kind="primitive")] == ["primitive"] * 8
    assert {h.kind for h in repo.search("scheduler", k=50, kind="bpf,scx")} == {"bpf", "scx"}
    for h in repo.search("anything at all", k=50, goal="battery"):
        assert "battery" in repo.get(h.name).goals
    assert repo.search("   ") == [] and repo.search("x", k=0) == []
    with pytest.raises(ValueError, match="unknown kind"):
        repo.search("x", kind="kernel")


def test_history_best_and_antipatterns(repo: PolicyRepository) -> None:
    assert repo.history(KEY) == [] and repo.best(KEY) is None
    lessons = [
        Lesson(KEY, "fifo", {"slice_us": 20000}, "neutral", 0.01),
        Lesson(KEY, "ljf", {"slice_us": 30000}, "improved", 0.31, "long job first"),
        Lesson(KEY, "ljf", {"slice_us": 5000}, "improved", 0.22),
        Lesson(KEY, "custom", {}, "refused", None, "verifier: unbounded loop"),
        Lesson(KEY, "powersave", {"active_cpus": 1}, "regressed", -0.4),
        Lesson(KEY, "scx_rusty", {}, "failed", None, "binary missing"),
        Lesson("game:responsiveness:game.exe", "scx_lavd", {}, "improved", 0.9),
    ]
    for le in lessons:
        repo.record(le)
    assert repo.history(KEY) == lessons[:6]  # oldest first, numbers and tunables round-trip
    assert repo.best(KEY) == lessons[1]
    assert [le.outcome for le in repo.antipatterns(KEY)] == ["refused", "regressed", "failed"]
    assert repo.best("unknown:key:x") is None


def test_promote_only_when_it_beats_the_incumbent(repo: PolicyRepository) -> None:
    src = '#include "schedcp.bpf.h"\n/* generated */\n'
    repo.record(Lesson(KEY, "ljf", {}, "improved", 0.30))
    assert not repo.promote("gen_ljf2", src, "Longest job first with a tail boost.", KEY, 0.25)
    with pytest.raises(KeyError):
        repo.get("gen_ljf2")
    assert repo.promote("gen_ljf2", src, "Longest job first with a tail boost. Slices grow.",
                        KEY, 0.40)
    e = repo.get("gen_ljf2")
    assert (e.kind, e.source, e.goals, e.workloads) == ("custom", src, ["throughput"], ["batch"])
    assert e.summary == "Longest job first with a tail boost"
    # the promoted policy is now the incumbent for the workload
    assert not repo.promote("gen_ljf3", src, "Another try.", KEY, 0.35)
    assert repo.promote("gen_ljf3", src, "Another try.", KEY, 0.45)
    assert {h.name for h in repo.search("tail boost", kind="custom")} == {"gen_ljf2", "gen_ljf3"}
    # a new workload with no history: must beat the default (score > 0)
    assert not repo.promote("gen_other", src, "x", "build:throughput:ninja", 0.0)
    with pytest.raises(ValueError, match="packaged"):
        repo.promote("ljf", src, "shadow", "build:throughput:ninja", 0.9)
    with pytest.raises(ValueError, match="bad policy name"):
        repo.promote("Bad-Name", src, "x", KEY, 0.9)


def test_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with PolicyRepository.open(path, embedder="hash") as r:
        r.record(Lesson(KEY, "ljf", {"slice_us": 1}, "improved", 0.5))
        assert r.promote("gen_a", "src", "Packs batch jobs by length.", KEY, 0.6)
    with PolicyRepository.open(path, embedder="hash") as r:
        assert r.best(KEY).score == 0.5
        assert r.get("gen_a").kind == "custom"
        assert r.search("packs batch jobs by length", k=1, kind="custom")[0].name == "gen_a"


def test_default_location_is_the_user_data_dir(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with PolicyRepository.open(embedder="hash") as r:
        assert "ljf" in r.names()
    assert (tmp_path / "data" / "schedcp" / "policies.db").is_file()

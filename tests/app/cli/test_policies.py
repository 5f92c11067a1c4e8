"""`schedcp policies search|show` through the real argument parser, on the hashing embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schedcp.cli.main import main


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture):
    db = tmp_path / "p.db"

    def _run(*argv: str) -> tuple[int, str, str]:
        rc = main(["policies", "--db", str(db), "--embedder", "hash", *argv])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return _run


def test_search_prints_ranked_hits(run) -> None:
    rc, out, _ = run("search", "batch", "of", "jobs", "with", "one", "straggler", "-k", "3")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 3
    assert lines[0].split()[1:3] == ["ljf", "bpf"]
    scores = [float(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)


def test_search_json_with_filters(run) -> None:
    rc, out, _ = run("search", "save battery on my laptop", "--goal", "battery", "--kind",
                     "bpf,scx", "-k", "10", "--json")
    data = json.loads(out)
    assert rc == 0 and data["embedder"] == "hash-v1-512"
    assert data["query"] == "save battery on my laptop"
    assert data["hits"][0]["name"] == "powersave"
    # the two weak ones are kept apart, below the "good match" floor (issue #18)
    assert {h["name"] for h in data["hits"]} == {"powersave"}
    assert {h["name"] for h in data["below_min_score"]} == {"scx_flash", "scx_lavd"}
    assert all(h["score"] < data["min_score"] for h in data["below_min_score"])
    assert set(data["hits"][0]) == {"name", "score", "kind", "summary"}
    rc, out, _ = run("search", "track how long each task runs", "--kind", "primitive", "-k", "1")
    assert rc == 0 and out.split()[1:3] == ["runtime_tracker", "primitive"]


def test_search_errors(run) -> None:
    rc, _, err = run("search", "x", "--kind", "kernel")
    assert rc == 2 and "unknown kind" in err
    with pytest.raises(SystemExit) as e:
        run("search", "x", "-k", "0")
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run("search", "x", "--goal", "speed")
    assert e.value.code == 2


def test_show_text_and_json(run) -> None:
    rc, out, _ = run("show", "interactive")
    assert rc == 0 and out.startswith("interactive (bpf)\n")
    assert "starve_ms (int 10..1000 ms, default 100)" in out
    assert "preset responsiveness: slice_us=2000" in out and "SCHEDCP_OPS(interactive," in out
    rc, out, _ = run("show", "vtime_fair", "--json")
    entry = json.loads(out)
    assert rc == 0 and entry["kind"] == "primitive" and "vtime_fair_charge" in entry["source"]
    rc, _, err = run("show", "nope")
    assert rc == 2 and "no entry named 'nope'" in err and "scx_lavd" in err

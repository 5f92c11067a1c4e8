"""Schema versions, migrations, re-seeding when policies/ changes, re-embedding on a new model."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest

from schedcp.model import Lesson
from schedcp.repo import SCHEMA_VERSION, PolicyRepository, SeedDirs, StoreError, store

KEY = "build:throughput:make"
VECS = "SELECT count(*) FROM vec_chunks"
CHUNKS = "SELECT count(*) FROM chunks"


class TinyEmbedder:
    """A different embedder (id and dimension) to force a re-embed."""

    id = "tiny-test-8"
    dim = 8

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += len(texts)
        out = []
        for t in texts:
            v = [b - 127.5 for b in hashlib.sha256(t.encode()).digest()[:8]]
            n = math.sqrt(sum(x * x for x in v))
            out.append([x / n for x in v])
        return out


def _count(r: PolicyRepository, sql: str) -> int:
    return r._conn.execute(sql).fetchone()[0]


def test_new_file_records_version_and_embedder(tmp_path: Path) -> None:
    with PolicyRepository.open(tmp_path / "p.db", embedder="hash") as r:
        assert store.get_meta(r._conn, "schema_version") == str(SCHEMA_VERSION)
        assert store.get_meta(r._conn, "embedder_id") == r.embedder.id == "hash-v1-512"
        assert store.get_meta(r._conn, "embedder_dim") == "512"
        assert _count(r, VECS) == _count(r, CHUNKS) > 0


def test_version_1_file_is_migrated_keeping_history_and_custom_policies(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = store.connect(path)
    conn.execute(store.SCHEMA_V1)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("INSERT INTO lessons(workload_key, policy, tunables, outcome, score, note) "
                 "VALUES (?, 'ljf', '{\"slice_us\": 30000}', 'improved', 0.3, 'old')", (KEY,))
    conn.execute("INSERT INTO policies VALUES ('gen_old', 'custom', 'Old generated policy', "
                 "'Generated long ago.', '[]', '[]', '{}', '{}', 'int x;')")
    conn.close()
    with PolicyRepository.open(path, embedder="hash") as r:
        assert store.get_meta(r._conn, "schema_version") == str(SCHEMA_VERSION)
        legacy = {"legacy": True, "n_a": 1, "n_b": 1, "decision": "single run"}
        assert r.history(KEY) == [Lesson(KEY, "ljf", {"slice_us": 30000}, "improved", 0.3, "old",
                                         legacy)]
        assert r._conn.execute("SELECT recorded_at FROM lessons").fetchone()[0] == 0
        # the custom policy became "promoted": it survives seeding and is searchable
        assert r.get("gen_old").source == "int x;"
        assert r.search("generated long ago", k=1, kind="custom")[0].name == "gen_old"
        assert "ljf" in r.names()
        r.record(Lesson(KEY, "vtime", {}, "neutral", 0.0))
        assert r._conn.execute("SELECT max(recorded_at) FROM lessons").fetchone()[0] > 0


def test_version_2_lessons_lose_single_run_verdicts_but_keep_their_numbers(
        tmp_path: Path) -> None:
    """Issue #12: lessons from one run against one baseline were not significant. After the
    migration a single-run "regressed" no longer bans its configuration, "neutral" reads
    "inconclusive", an "improved" stays (to be re-measured first) marked legacy; refusals and
    failures stay; new lessons store their evidence."""
    path = tmp_path / "v2.db"
    conn = store.connect(path)
    conn.execute(store.SCHEMA_V1)
    store.MIGRATIONS[1](conn)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    rows = [("ljf", "improved", 0.3), ("fifo", "regressed", -0.08), ("vtime", "neutral", 0.01),
            ("scx_rusty", "failed", None), ("custom", "refused", None)]
    for policy, outcome, score in rows:
        conn.execute("INSERT INTO lessons(workload_key, policy, tunables, outcome, score, note, "
                     "recorded_at) VALUES (?, ?, '{}', ?, ?, 'old', 1.0)",
                     (KEY, policy, outcome, score))
    conn.close()
    with PolicyRepository.open(path, embedder="hash") as r:
        assert store.get_meta(r._conn, "schema_version") == str(SCHEMA_VERSION)
        got = {x.policy: x for x in r.history(KEY)}
        assert [got[p].outcome for p, _, _ in rows] == [
            "improved", "inconclusive", "inconclusive", "failed", "refused"]
        assert [got[p].score for p, _, _ in rows] == [0.3, -0.08, 0.01, None, None]
        assert got["ljf"].evidence["legacy"] and got["fifo"].evidence["n_b"] == 1
        assert got["scx_rusty"].evidence is None
        assert got["fifo"].note.startswith("single run, migrated from regressed")
        assert {x.policy for x in r.antipatterns(KEY)} == {"scx_rusty", "custom"}
        assert r.best(KEY).policy == "ljf"
        evidence = {"n_a": 5, "n_b": 5, "median_a": 20.1, "median_b": 16.2, "unit": "s",
                    "ratio": 0.81, "ratio_low": 0.76, "ratio_high": 0.86, "kernel": "6.12",
                    "baseline_scheduler": "kernel default", "cpu_model": "x", "ncpus": 2}
        r.record(Lesson(KEY, "ljf", {"slice_us": 1}, "improved", 0.19, "", evidence))
        assert r.history(KEY)[-1].evidence == evidence


def test_a_later_significant_success_lifts_an_antipattern(tmp_path: Path) -> None:
    with PolicyRepository.open(tmp_path / "p.db", embedder="hash") as r:
        r.record(Lesson(KEY, "fifo", {}, "regressed", -0.2))
        r.record(Lesson(KEY, "vtime", {}, "failed", None))
        assert [x.policy for x in r.antipatterns(KEY)] == ["fifo", "vtime"]
        r.record(Lesson(KEY, "fifo", {"slice_us": 1}, "improved", 0.1))  # other tunables
        r.record(Lesson(KEY, "fifo", {}, "inconclusive", 0.01))  # not significant
        assert [x.policy for x in r.antipatterns(KEY)] == ["fifo", "vtime"]
        r.record(Lesson(KEY, "fifo", {}, "improved", 0.12))
        assert [x.policy for x in r.antipatterns(KEY)] == ["vtime"]
        r.record(Lesson(KEY, "fifo", {}, "regressed", -0.3))  # and a new regression bans again
        assert [x.policy for x in r.antipatterns(KEY)] == ["vtime", "fifo"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    PolicyRepository.open(path, embedder="hash").close()
    conn = store.connect(path)
    store.set_meta(conn, "schema_version", SCHEMA_VERSION + 1)
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        PolicyRepository.open(path, embedder="hash")


def test_changed_embedder_reembeds_everything(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with PolicyRepository.open(path, embedder="hash") as r:
        assert r.promote("gen_x", "src", "Quantum flux capacitor scheduling.", KEY, 0.5)
        r.record(Lesson(KEY, "ljf", {}, "improved", 0.2))
    tiny = TinyEmbedder()
    with PolicyRepository.open(path, embedder=tiny) as r:
        nchunks = _count(r, "SELECT count(*) FROM chunks")
        assert tiny.calls == nchunks  # every chunk, the promoted policy's included
        assert _count(r, "SELECT count(*) FROM vec_chunks") == nchunks
        assert store.get_meta(r._conn, "embedder_id") == "tiny-test-8"
        # an exact text matches itself under any embedder
        text = r._conn.execute("SELECT text FROM chunks WHERE name='gen_x' LIMIT 1").fetchone()[0]
        assert r.search(text, k=1)[0].name == "gen_x"
        assert len(r.history(KEY)) == 1
    again = TinyEmbedder()
    PolicyRepository.open(path, embedder=again).close()
    assert again.calls == 0  # same embedder, same seed: nothing to do


def test_edited_seed_is_reloaded(tmp_path: Path, seed_copy: SeedDirs) -> None:
    path = tmp_path / "p.db"
    with PolicyRepository.open(path, embedder="hash", seed=seed_copy) as r:
        r.record(Lesson(KEY, "fifo", {}, "neutral", 0.0))
        assert r.promote("gen_y", "src", "Kept across reseeds.", KEY, 0.1)
    fifo = seed_copy.policies / "fifo.toml"
    fifo.write_text(fifo.read_text().replace(
        'summary = "Global first-in-first-out queue: the simple baseline."',
        'summary = "Zebra crossing queue."'))
    (seed_copy.policies / "scx_qmap.toml").unlink()
    with PolicyRepository.open(path, embedder="hash", seed=seed_copy) as r:
        assert r.get("fifo").summary == "Zebra crossing queue."
        assert r.search("zebra crossing", k=1)[0].name == "fifo"
        with pytest.raises(KeyError):
            r.get("scx_qmap")
        assert "scx_qmap" not in {h.name for h in r.search("kernel demonstration", k=50)}
        assert r.get("gen_y").kind == "custom" and len(r.history(KEY)) == 1
        assert _count(r, VECS) == _count(r, CHUNKS)


def test_processes_opening_a_new_file_at_once_seed_it_once(tmp_path: Path) -> None:
    """The agent and the CLI may both open a missing file: the second waits, then reads."""
    import subprocess
    import sys

    code = ("import sys; from schedcp.repo import PolicyRepository as R; "
            "r = R.open(sys.argv[1], embedder='hash'); print(len(r.search('batch', k=50))); "
            "r.close()")
    path = tmp_path / "shared.db"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    with PolicyRepository.open(path, embedder="hash") as r:
        n = len(r.names())
        assert {out.strip() for out, _ in results} == {str(n)}
        assert _count(r, VECS) == _count(r, CHUNKS) == 2 * n

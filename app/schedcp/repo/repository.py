"""PolicyRepository: semantic search over schedulers and primitives, and per-workload history.

One SQLite file per user. It seeds itself from the checkout's (or installed) ``policies/`` and
re-seeds when those files change; it re-embeds everything when the embedder changes. Promoted
custom policies and the lesson history survive both.
"""

from __future__ import annotations

import array
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import apsw
import platformdirs

from ..model import Lesson
from . import store
from .embed import Embedder, get_embedder
from .seed import PolicyEntry, SeedDirs, seed_entries

KINDS = ("bpf", "scx", "custom", "primitive")
BAD_OUTCOMES = ("refused", "failed", "regressed")
# cosine similarity of two workloads' descriptions above which one's best is suggested for the
# other (MiniLM: descriptions of the same kind of job score ~0.9, unrelated ones < 0.6)
SIMILAR = 0.85
_NAME_RE = re.compile(r"^[a-z0-9_]{1,48}$")


@dataclass
class Hit:
    name: str
    score: float  # cosine similarity of the query and the entry's best-matching text, -1..1
    kind: str
    summary: str


def lifted(history: list[Lesson]) -> list[Lesson]:
    """The bad lessons of ``history`` (oldest first) that no later "improved" lesson of the
    same policy and tunables has lifted."""
    bad: dict[str, list[Lesson]] = {}
    for lesson in history:
        key = lesson.policy + json.dumps(lesson.tunables, sort_keys=True)
        if lesson.outcome in BAD_OUTCOMES:
            bad.setdefault(key, []).append(lesson)
        elif lesson.outcome == "improved":
            bad.pop(key, None)
    return sorted((x for v in bad.values() for x in v), key=history.index)


def default_path() -> Path:
    return platformdirs.user_data_path("schedcp") / "policies.db"


def _kinds(kind: str | None) -> set[str]:
    """``kind`` is one kind or a comma-separated set ("bpf,scx"); None means all."""
    if kind is None:
        return set(KINDS)
    wanted = {k.strip() for k in kind.split(",") if k.strip()}
    unknown = wanted - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(KINDS)}")
    return wanted


class PolicyRepository:
    def __init__(self, conn: apsw.Connection, embedder: Embedder) -> None:
        self._conn = conn
        self.embedder = embedder

    @classmethod
    def open(cls, path: Path | None = None, *, embedder: Embedder | str | None = None,
             seed: SeedDirs | None = None) -> PolicyRepository:
        """Open (creating, migrating, seeding or re-embedding as needed) the repository file.

        ``embedder``: an Embedder, or "minilm" | "hash" | "auto" (default: $SCHEDCP_EMBEDDER,
        else the packaged model when installed). ``seed``: where policies come from.
        """
        if path is None:
            path = default_path()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if embedder is None or isinstance(embedder, str):
            embedder = get_embedder(embedder)
        conn = store.connect(path)
        try:
            store.ensure_schema(conn)
            repo = cls(conn, embedder)
            repo._sync(seed or SeedDirs.default())
        except BaseException:
            conn.close()
            raise
        return repo

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PolicyRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ seeding and embedding

    def _sync(self, dirs: SeedDirs) -> None:
        """Bring the file up to date with the seed files and the embedder.

        The common case (nothing changed) only reads. Otherwise one IMMEDIATE transaction does
        the work, re-checking inside it, so processes that open a new file at once (the agent
        and the CLI) serialise instead of both seeding or failing half-way.
        """
        c = self._conn
        digest = dirs.digest()

        def stale() -> tuple[bool, bool]:
            return (store.get_meta(c, "embedder_id") != self.embedder.id,
                    store.get_meta(c, "seed_digest") != digest)

        if not any(stale()) and not self._missing():
            return
        with store.immediate(c):
            new_embedder, new_seed = stale()  # again, under the lock
            if new_embedder:
                store.reset_vectors(c, self.embedder.dim)
                store.set_meta(c, "embedder_id", self.embedder.id)
                store.set_meta(c, "embedder_dim", self.embedder.dim)
            if new_seed:
                c.execute("DELETE FROM policies WHERE origin = 'seed'")
                for entry in seed_entries(dirs):
                    self._insert(entry, origin="seed")
                store.set_meta(c, "seed_digest", digest)
            self._chunk_missing()
            self._embed_missing()

    def _missing(self) -> bool:
        """Entries without search texts, or texts without vectors."""
        return self._conn.execute(
            "SELECT EXISTS (SELECT 1 FROM policies WHERE name NOT IN (SELECT name FROM chunks))"
            " OR EXISTS (SELECT 1 FROM chunks WHERE id NOT IN (SELECT rowid FROM vec_chunks))"
        ).fetchone()[0] == 1

    def _insert(self, e: PolicyEntry, origin: str, workload_key: str | None = None,
                score: float | None = None) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO policies(name, kind, summary, description, goals, workloads, "
            "tunables, presets, source, origin, workload_key, score) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (e.name, e.kind, e.summary, e.description, json.dumps(e.goals),
             json.dumps(e.workloads), json.dumps(e.tunables), json.dumps(e.presets), e.source,
             origin, workload_key, score))
        self._conn.execute("DELETE FROM chunks WHERE name = ?", (e.name,))
        for text in e.search_texts():
            self._conn.execute("INSERT INTO chunks(name, text) VALUES (?, ?)", (e.name, text))

    def _chunk_missing(self) -> None:
        """Give search texts to entries that have none (e.g. rows from an older schema)."""
        names = [n for (n,) in self._conn.execute(
            "SELECT name FROM policies WHERE name NOT IN (SELECT name FROM chunks)")]
        for name in names:
            for text in self.get(name).search_texts():
                self._conn.execute("INSERT INTO chunks(name, text) VALUES (?, ?)", (name, text))

    def _embed_missing(self) -> None:
        """Embed chunks that have no vector and drop vectors whose chunk is gone."""
        c = self._conn
        c.execute("DELETE FROM vec_chunks WHERE rowid NOT IN (SELECT id FROM chunks)")
        todo = c.execute("SELECT id, text FROM chunks WHERE id NOT IN "
                         "(SELECT rowid FROM vec_chunks) ORDER BY id").fetchall()
        if not todo:
            return
        vectors = self.embedder.embed([t for _, t in todo])
        for (rowid, _), vec in zip(todo, vectors, strict=True):
            c.execute("INSERT INTO vec_chunks(rowid, embedding) VALUES (?, ?)",
                      (rowid, store.serialize(vec)))

    # ------------------------------------------------------------ search and lookup

    def search(self, query: str, k: int = 5, kind: str | None = None,
               goal: str | None = None) -> list[Hit]:
        """The ``k`` entries closest in meaning to ``query``, best first, optionally limited to a
        kind (or comma-separated kinds) and to entries that list ``goal``."""
        kinds = _kinds(kind)
        if k <= 0 or not query.strip():
            return []
        c = self._conn
        nchunks = c.execute("SELECT count(*) FROM chunks").fetchone()[0]
        (qvec,) = self.embedder.embed([query])
        rows = c.execute(
            "SELECT ch.name, v.distance FROM "
            "(SELECT rowid, distance FROM vec_chunks WHERE embedding MATCH ? AND k = ?) v "
            "JOIN chunks ch ON ch.id = v.rowid ORDER BY v.distance",
            (store.serialize(qvec), min(max(nchunks, 1), 4096))).fetchall()
        best: dict[str, float] = {}
        for name, dist in rows:
            best.setdefault(name, 1.0 - dist)
        hits = []
        for name, score in sorted(best.items(), key=lambda kv: -kv[1]):
            kind_, summary, goals = c.execute(
                "SELECT kind, summary, goals FROM policies WHERE name = ?", (name,)).fetchone()
            if kind_ in kinds and (goal is None or goal in json.loads(goals)):
                hits.append(Hit(name, round(score, 4), kind_, summary))
                if len(hits) == k:
                    break
        return hits

    def _entry(self, row: tuple) -> PolicyEntry:
        name, kind, summary, description, goals, workloads, tunables, presets, source = row
        return PolicyEntry(name, kind, summary, description, json.loads(goals),
                           json.loads(workloads), json.loads(tunables), json.loads(presets), source)

    _COLS = "name, kind, summary, description, goals, workloads, tunables, presets, source"

    def get(self, name: str) -> PolicyEntry:
        row = self._conn.execute(f"SELECT {self._COLS} FROM policies WHERE name = ?",
                                 (name,)).fetchone()
        if row is None:
            raise KeyError(name)
        return self._entry(row)

    def names(self, kind: str | None = None) -> list[str]:
        kinds = _kinds(kind)
        rows = self._conn.execute("SELECT name, kind FROM policies ORDER BY name").fetchall()
        return [n for n, k in rows if k in kinds]

    def primitives(self) -> list[PolicyEntry]:
        rows = self._conn.execute(f"SELECT {self._COLS} FROM policies WHERE kind = 'primitive' "
                                  "ORDER BY name").fetchall()
        return [self._entry(r) for r in rows]

    # ------------------------------------------------------------ history

    def record(self, lesson: Lesson) -> None:
        self._conn.execute(
            "INSERT INTO lessons(workload_key, policy, tunables, outcome, score, note, recorded_at,"
            " evidence) VALUES (?,?,?,?,?,?,?,?)",
            (lesson.workload_key, lesson.policy, json.dumps(lesson.tunables, sort_keys=True),
             lesson.outcome, lesson.score, lesson.note, time.time(),
             json.dumps(lesson.evidence, sort_keys=True) if lesson.evidence is not None
             else None))

    def _lessons(self, where: str, args: tuple) -> list[Lesson]:
        rows = self._conn.execute(
            f"SELECT workload_key, policy, tunables, outcome, score, note, evidence FROM lessons "
            f"WHERE {where} ORDER BY id", args).fetchall()
        return [Lesson(k, p, json.loads(t), o, s, n, json.loads(e) if e else None)
                for k, p, t, o, s, n, e in rows]

    def history(self, workload_key: str) -> list[Lesson]:
        """Every lesson for the workload, oldest first."""
        return self._lessons("workload_key = ?", (workload_key,))

    def best(self, workload_key: str) -> Lesson | None:
        """The highest-scoring "improved" lesson (the earliest one on a tie)."""
        lessons = self._lessons("workload_key = ? AND outcome = 'improved' AND score IS NOT NULL",
                                (workload_key,))
        return max(lessons, key=lambda le: le.score, default=None)  # max keeps the first of ties

    def antipatterns(self, workload_key: str) -> list[Lesson]:
        """What not to try again: refused, failed or (significantly) regressed configurations,
        oldest first, unless a later significant improvement of the same configuration lifted
        the ban (the machine, the kernel or the policy's code may have changed since)."""
        return lifted(self.history(workload_key))

    def remember_workload(self, key: str, description: str) -> None:
        """Keep the workload's description and its vector: what :meth:`similar` compares."""
        if not description.strip():
            return
        (vec,) = self.embedder.embed([description])
        self._conn.execute(
            "INSERT OR REPLACE INTO workloads(key, description, embedding, embedder, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, description, store.serialize(vec), self.embedder.id, time.time()))

    def similar(self, description: str, exclude: str = "", threshold: float = SIMILAR,
                k: int = 3) -> list[tuple[str, float]]:
        """Earlier workloads (keys with an improved lesson) whose description is at least
        ``threshold`` similar (cosine of the embeddings) to ``description``, nearest first."""
        if not description.strip():
            return []
        rows = self._conn.execute(
            "SELECT key, embedding FROM workloads WHERE embedder = ? AND key != ? AND key IN "
            "(SELECT workload_key FROM lessons WHERE outcome = 'improved')",
            (self.embedder.id, exclude)).fetchall()
        if not rows:
            return []
        (q,) = self.embedder.embed([description])
        qn = math.sqrt(sum(x * x for x in q)) or 1.0
        out = []
        for key, blob in rows:
            v = array.array("f", blob)
            vn = math.sqrt(sum(x * x for x in v)) or 1.0
            score = sum(a * b for a, b in zip(q, v, strict=False)) / (qn * vn)
            if score >= threshold:
                out.append((key, round(score, 4)))
        return sorted(out, key=lambda kv: -kv[1])[:k]

    def promote(self, name: str, source: str, description: str, workload_key: str,
                score: float) -> bool:
        """Keep a generated scheduler (kind "custom") if ``score`` beats the incumbent for the
        workload: the best improved lesson and any custom policy already promoted for it.
        With no incumbent it must at least improve on the default (score > 0)."""
        if not _NAME_RE.match(name):
            raise ValueError(f"bad policy name {name!r}: use [a-z0-9_], at most 48 characters")
        c = self._conn
        with store.immediate(c, wait_ms=store.BUSY_TIMEOUT_MS):  # check and insert as one
            return self._promote(name, source, description, workload_key, score)

    def _promote(self, name: str, source: str, description: str, workload_key: str,
                 score: float) -> bool:
        c = self._conn
        row = c.execute("SELECT origin FROM policies WHERE name = ?", (name,)).fetchone()
        if row and row[0] != "promoted":
            raise ValueError(f"{name!r} is a packaged policy; give the generated one a new name")
        incumbent = 0.0
        if (lesson := self.best(workload_key)) is not None:
            incumbent = max(incumbent, lesson.score)
        top = c.execute("SELECT max(score) FROM policies WHERE origin = 'promoted' AND "
                        "(workload_key = ? OR name = ?)", (workload_key, name)).fetchone()[0]
        if top is not None:
            incumbent = max(incumbent, top)
        if not score > incumbent:
            return False
        kind, goal = [*workload_key.split(":"), "", ""][:2]
        text = " ".join(description.split())
        entry = PolicyEntry(name=name, kind="custom", summary=text.split(". ")[0][:160],
                            description=text, goals=[goal] if goal else [],
                            workloads=[kind] if kind else [], source=source)
        self._insert(entry, origin="promoted", workload_key=workload_key, score=score)
        self._embed_missing()
        return True

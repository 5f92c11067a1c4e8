"""The repository's SQLite file: connection (apsw + sqlite-vec), versioned schema, migrations.

apsw rather than the standard ``sqlite3`` because many Python builds (pyenv's among them) cannot
load extensions, and sqlite-vec is an extension. The vector table's dimension depends on the
embedder, so it is (re)created by :func:`reset_vectors`, not by the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw
import sqlite_vec

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 5000  # the agent and the CLI may share the file

# Version 1: the first layout. Kept verbatim: the migration test builds a v1 file from it.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE policies (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, summary TEXT NOT NULL, description TEXT NOT NULL,
    goals TEXT NOT NULL, workloads TEXT NOT NULL, tunables TEXT NOT NULL, presets TEXT NOT NULL,
    source TEXT);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
    text TEXT NOT NULL);
CREATE TABLE lessons (
    id INTEGER PRIMARY KEY, workload_key TEXT NOT NULL, policy TEXT NOT NULL,
    tunables TEXT NOT NULL, outcome TEXT NOT NULL, score REAL, note TEXT NOT NULL DEFAULT '');
CREATE INDEX lessons_by_workload ON lessons(workload_key, id);
"""


def _v1_to_v2(conn: apsw.Connection) -> None:
    """v2: promoted policies remember where they came from; lessons carry a timestamp."""
    conn.execute("""
        ALTER TABLE policies ADD COLUMN origin TEXT NOT NULL DEFAULT 'seed';
        ALTER TABLE policies ADD COLUMN workload_key TEXT;
        ALTER TABLE policies ADD COLUMN score REAL;
        ALTER TABLE lessons ADD COLUMN recorded_at REAL NOT NULL DEFAULT 0;
        UPDATE policies SET origin = 'promoted' WHERE kind = 'custom';
    """)


LEGACY_EVIDENCE = '{"legacy": true, "n_a": 1, "n_b": 1, "decision": "single run"}'


def _v2_to_v3(conn: apsw.Connection) -> None:
    """v3: lessons carry the evidence of their A/B trial set (JSON: n, medians, spread,
    interval, units, baseline scheduler, kernel, CPU), and the workloads table remembers each
    key's description and vector so similar workloads can share a history.

    Older lessons come from one run against one baseline: no significance. "neutral" becomes
    "inconclusive"; "regressed" becomes "inconclusive" too (a single slow run banned
    configurations for ever; antipatterns now need a significant regression); "improved"
    stays (the planner tries it first and re-measures it with trials) but is marked legacy.
    Refusals and failures are not measurements and stay as they are."""
    conn.execute(f"""
        ALTER TABLE lessons ADD COLUMN evidence TEXT;
        UPDATE lessons SET evidence = '{LEGACY_EVIDENCE}'
            WHERE outcome IN ('improved', 'neutral', 'regressed');
        UPDATE lessons SET note = 'single run, migrated from regressed: ' || note,
            outcome = 'inconclusive' WHERE outcome = 'regressed';
        UPDATE lessons SET outcome = 'inconclusive' WHERE outcome = 'neutral';
        CREATE TABLE workloads (
            key TEXT PRIMARY KEY, description TEXT NOT NULL, embedding BLOB,
            embedder TEXT NOT NULL DEFAULT '', updated_at REAL NOT NULL DEFAULT 0);
    """)


#: MIGRATIONS[n] upgrades a version-n file to n+1, inside the caller's transaction.
MIGRATIONS: dict[int, Callable[[apsw.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


class StoreError(RuntimeError):
    """The file cannot be used: newer than this code, or sqlite-vec failed to load."""


def connect(path: Path | str) -> apsw.Connection:
    """Open ``path`` (":memory:" allowed) with sqlite-vec loaded, foreign keys on, WAL."""
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    try:
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
    except apsw.Error as e:
        raise StoreError(f"cannot load sqlite-vec: {e}") from e
    finally:
        conn.enable_load_extension(False)
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def get_meta(conn: apsw.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: apsw.Connection, key: str, value: object) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))


def _has_table(conn: apsw.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    return row is not None


@contextmanager
def immediate(conn: apsw.Connection, wait_ms: int = 120_000) -> Iterator[None]:
    """A write transaction that takes the write lock up front, waiting up to ``wait_ms`` for it.

    Deferred transactions that read, then write, fail at once with "database is locked" when
    another process wrote in between (WAL cannot upgrade a stale read); seeding takes seconds.
    """
    conn.set_busy_timeout(wait_ms)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)


def _version(conn: apsw.Connection) -> int:
    """0 for a new file."""
    return int(get_meta(conn, "schema_version") or 1) if _has_table(conn, "meta") else 0


def ensure_schema(conn: apsw.Connection) -> int:
    """Create a fresh file at the current version or migrate an older one; returns the old version
    (0 for a new file)."""
    old = _version(conn)
    if old == SCHEMA_VERSION:
        return old
    with immediate(conn):
        version = old = _version(conn)  # again, under the lock: another process may have won
        if version == 0:
            conn.execute(SCHEMA_V1)
            version = 1
        if version > SCHEMA_VERSION:
            raise StoreError(f"repository schema {version} is newer than this schedcp "
                             f"({SCHEMA_VERSION}); upgrade schedcp or move the file away")
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](conn)
            version += 1
        set_meta(conn, "schema_version", version)
    return old


def reset_vectors(conn: apsw.Connection, dim: int) -> None:
    """(Re)create the vector table for ``dim``-sized embeddings; every chunk must be re-embedded."""
    conn.execute("DROP TABLE IF EXISTS vec_chunks")
    conn.execute(f"CREATE VIRTUAL TABLE vec_chunks USING vec0("
                 f"embedding float[{int(dim)}] distance_metric=cosine)")


def serialize(vec: list[float]) -> bytes:
    return sqlite_vec.serialize_float32(vec)

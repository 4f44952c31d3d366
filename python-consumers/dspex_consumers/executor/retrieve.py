"""Retrieve steps: embedding search over passages. The embedder is a step setting: `dspex/test` (hashed
words, deterministic), `dspex/offline` (the offline GGUF model's mean-pooled llama.cpp embeddings) or any
LiteLLM embedding model through `dspy.Embedder`. A corpus's embeddings are computed once per embedder."""

import hashlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dspy
import numpy as np

from .errors import BadStep

Embed = Callable[[list[str]], np.ndarray]

TEST_DIMENSIONS = 256
_WORD = re.compile(r"\w+", re.UNICODE)


def hashed_words(texts: list[str]) -> np.ndarray:
    """Each lower-cased word hashed to a signed coordinate: texts sharing words point the same way."""
    vectors = np.zeros((len(texts), TEST_DIMENSIONS))
    for row, text in enumerate(texts):
        for word in _WORD.findall(text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            vectors[row, int.from_bytes(digest[:4], "big") % TEST_DIMENSIONS] += 1 if digest[4] % 2 else -1
    return vectors


_OFFLINE: dict[str, Any] = {}
_OFFLINE_LOCK = threading.Lock()  # one llama context: calls take turns


def offline_embed(texts: list[str]) -> np.ndarray:
    """The offline model in llama.cpp's embedding mode, mean-pooled. One text per decode: this build's
    batch of several sequences fails (llama_decode -1)."""
    from ..lms.offline import load_llama, model_path

    with _OFFLINE_LOCK:
        if "llama" not in _OFFLINE:
            _OFFLINE["llama"] = load_llama(str(model_path()), 512, embedding=True)
        llama = _OFFLINE["llama"]
        return np.array([llama.embed(text) for text in texts], dtype=np.float64)


def embedder_for(model: str) -> Embed:
    if model == "dspex/test":
        return hashed_words
    if model == "dspex/offline":
        return offline_embed
    if model.startswith("dspex/"):
        raise BadStep(f"unknown dspex embedder {model!r} (known: dspex/test, dspex/offline)")
    embedder = dspy.Embedder(model, caching=False)  # provider keys come from this process's environment
    return lambda texts: np.asarray(embedder(texts), dtype=np.float64)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


_INDEXES: dict[tuple[str, str], np.ndarray] = {}
_INDEX_LOCK = threading.Lock()


def _index(model: str, passages: Sequence[str], embed: Embed) -> np.ndarray:
    key = (model, hashlib.sha256("\0".join(passages).encode()).hexdigest())
    with _INDEX_LOCK:
        if key not in _INDEXES:
            if len(_INDEXES) >= 32:
                _INDEXES.clear()
            _INDEXES[key] = _unit(embed(list(passages)))
        return _INDEXES[key]


def search(passages: Sequence[str], query: str, model: str, k: int) -> list[str]:
    """The k passages nearest the query by cosine, best first; ties keep the corpus order."""
    embed = embedder_for(model)
    scores = _index(model, passages, embed) @ _unit(embed([query]))[0]
    order = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
    return [passages[i] for i in order[:k]]


class Retrieve(dspy.Module):
    """`query -> passages`: the first input is the query, the first output gets the passages."""

    def __init__(self, signature: type[dspy.Signature], config: Mapping[str, Any], corpora: Mapping[str, Sequence[str]]):
        super().__init__()
        self.query_field = next(iter(signature.input_fields))
        self.output_field = next(iter(signature.output_fields))
        if "corpus" in config:
            if config["corpus"] not in corpora:
                known = ", ".join(sorted(corpora)) or "none"
                raise BadStep(f"unknown corpus {config['corpus']!r} (this consumer has: {known}; start it with --corpus NAME=FILE)")
            self.passages = list(corpora[config["corpus"]])
        else:
            self.passages = list(config["passages"])
        self.model = config["embedder"]
        self.k = int(config.get("k", 3))

    def forward(self, **inputs: Any) -> dspy.Prediction:
        query = str(inputs[self.query_field] or "")
        return dspy.Prediction(**{self.output_field: search(self.passages, query, self.model, self.k)})

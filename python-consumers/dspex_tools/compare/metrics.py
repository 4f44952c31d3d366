"""dspex's built-in metrics (processors/evaluation/metrics.ts), in Python: the same scores for the same values."""

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower case, no accents, no punctuation, no articles, single spaces (SQuAD's normalization)."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not ("\u0300" <= ch <= "\u036f"))
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return _SPACES.sub(" ", _ARTICLES.sub(" ", text)).strip()


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _alternatives(wanted: Any) -> list[Any]:
    return wanted if isinstance(wanted, list) else [wanted]


def _compared(prediction: Mapping[str, Any], expected: Mapping[str, Any], field: str | None) -> tuple[Any, Any]:
    name = field or next(iter(expected), None)
    return (None, None) if name is None else (prediction.get(name), expected.get(name))


def exact_match(prediction: Mapping[str, Any], expected: Mapping[str, Any], field: str | None = None) -> float:
    predicted, wanted = _compared(prediction, expected, field)
    got = normalize_text(_text(predicted))
    return 1.0 if any(normalize_text(_text(w)) == got for w in _alternatives(wanted)) else 0.0


def contains(prediction: Mapping[str, Any], expected: Mapping[str, Any], field: str | None = None) -> float:
    predicted, wanted = _compared(prediction, expected, field)
    got = normalize_text(_text(predicted))
    return 1.0 if any(normalize_text(_text(w)) in got for w in _alternatives(wanted)) else 0.0


METRICS: dict[str, Callable[..., float]] = {"exact_match": exact_match, "contains": contains}

"""Keyword search over a small in-memory corpus: BM25-like term overlap, deterministic ties."""

import math
import re
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def search(corpus: Sequence[str], query: str, k: int = 3) -> list[str]:
    """The k passages sharing the most (idf-weighted) terms with the query, best first."""
    documents = [Counter(tokens(passage)) for passage in corpus]
    query_terms = set(tokens(query))
    if not query_terms or not documents:
        return []
    frequency = Counter(term for document in documents for term in set(document) if term in query_terms)
    idf = {term: math.log(1 + len(documents) / (1 + frequency[term])) for term in query_terms}
    scores = [sum(idf[term] * min(document[term], 3) for term in query_terms) for document in documents]
    ranked = sorted(range(len(corpus)), key=lambda index: (-scores[index], index))
    return [corpus[index] for index in ranked[:k] if scores[index] > 0]

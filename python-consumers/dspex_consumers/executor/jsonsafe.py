"""Any value DSPy hands back → plain JSON (dicts, lists, strings, numbers, booleans, null)."""

import math
from collections.abc import Mapping
from typing import Any


def to_json(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "model_dump"):
        return to_json(value.model_dump(mode="json"))
    if hasattr(value, "toDict"):
        return to_json(value.toDict())
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(item) for item in value]
    return str(value)

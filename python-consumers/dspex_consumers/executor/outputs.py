"""Checks outputs against the signature's wire types and constraints (the shapes the TS side validates)."""

import re
from typing import Any

from .types import _literal_values


def problems_in(outputs: dict[str, Any], fields: list[dict[str, Any]]) -> list[str]:
    found = []
    for field in fields:
        name = field["name"]
        value = outputs.get(name)
        if value is None:
            if not field.get("optional", False):
                found.append(f"{name} is missing")
            continue
        found.extend(_check(name, value, field.get("type", "str"), field.get("constraints") or {}))
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(name: str, value: Any, type_text: str, constraints: dict[str, Any]) -> list[str]:
    kind = type_text.replace(" ", "")
    if kind == "str":
        if not isinstance(value, str):
            return [f"{name} must be a string"]
        return _string_bounds(name, value, constraints)
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return _number_bounds(name, value, constraints) if ok else [f"{name} must be an integer"]
    if kind in ("float", "confidence", "probability"):
        if not _is_number(value):
            return [f"{name} must be a number"]
        low = {"probability": 0, "confidence": 0}.get(kind)
        high = 1 if kind == "probability" else None
        bounds = {"min": constraints.get("min", low), "max": constraints.get("max", high)}
        return _number_bounds(name, value, {key: bound for key, bound in bounds.items() if bound is not None})
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"{name} must be true or false"]
    if kind.startswith("Literal["):
        options = _literal_values(type_text.strip()[len("Literal[") : -1])
        return [] if value in options else [f"{name} must be one of {', '.join(map(repr, options))}"]
    if kind == "embedding":
        if not isinstance(value, list) or not value or not all(_is_number(item) for item in value):
            return [f"{name} must be a non-empty list of numbers"]
        dims = constraints.get("dimensions")
        return [f"{name} must have exactly {dims} dimensions"] if dims and len(value) != dims else []
    if kind.startswith(("list", "List")):
        if not isinstance(value, list):
            return [f"{name} must be a list"]
        item_type = kind[kind.index("[") + 1 : -1] if "[" in kind else "str"
        found = [problem for index, item in enumerate(value) for problem in _check(f"{name}[{index}]", item, item_type, {})]
        if "minItems" in constraints and len(value) < constraints["minItems"]:
            found.append(f"{name} must have at least {constraints['minItems']} items")
        if "maxItems" in constraints and len(value) > constraints["maxItems"]:
            found.append(f"{name} must have at most {constraints['maxItems']} items")
        return found
    if kind.startswith(("dict", "Dict")):
        return [] if isinstance(value, dict) else [f"{name} must be an object"]
    return []


def _string_bounds(name: str, value: str, constraints: dict[str, Any]) -> list[str]:
    found = []
    if "minLength" in constraints and len(value) < constraints["minLength"]:
        found.append(f"{name} must have at least {constraints['minLength']} characters")
    if "maxLength" in constraints and len(value) > constraints["maxLength"]:
        found.append(f"{name} must have at most {constraints['maxLength']} characters")
    if "pattern" in constraints and not re.fullmatch(constraints["pattern"], value):
        found.append(f"{name} must match {constraints['pattern']}")
    return found


def _number_bounds(name: str, value: float, constraints: dict[str, Any]) -> list[str]:
    low, high = constraints.get("min"), constraints.get("max")
    if low is not None and high is not None and not low <= value <= high:
        return [f"{name} must be between {low} and {high}"]
    if low is not None and value < low:
        return [f"{name} must be >= {low}"]
    if high is not None and value > high:
        return [f"{name} must be <= {high}"]
    return []

"""jsonschema's errors → the reasons a record is refused: `<path>: <what was expected>`, as streams/codec.ts.

Each problem once (a missing field is listed once, with its path), no echo of the input's values, and
for a union (anyOf/oneOf) the problems of the one alternative the value is meant to be.
"""

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

MAX_PROBLEMS = 20
FORMATS = {"uuid": "a UUID", "date-time": "an ISO datetime", "email": "an email address", "uri": "a URI"}


def problems_of(validator: Draft202012Validator, instance: Any) -> str | None:
    """The problems of `instance`, joined with "; ", or None when it is valid."""
    distinct = _unique(problem for error in validator.iter_errors(instance) for problem in describe(error))
    found = list(itertools.islice(distinct, MAX_PROBLEMS + 1))
    if not found:
        return None
    more = ["and more"] if len(found) > MAX_PROBLEMS else []
    return "; ".join(found[:MAX_PROBLEMS] + more)


def describe(error: ValidationError) -> list[str]:
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [f"{path_of(error, name)}: is required" for name in missing]
    if error.validator in ("anyOf", "oneOf"):
        return _describe_union(error)
    return [f"{path_of(error)}: {expectation(error)}"]


def path_of(error: ValidationError, *more: str) -> str:
    return ".".join(str(part) for part in [*error.absolute_path, *more]) or "(root)"


def expectation(error: ValidationError) -> str:
    value, schema = error.validator_value, error.schema
    match error.validator:
        case "type":
            expected = " or ".join(value) if isinstance(value, list) else value
            return f"expected {expected}, received {json_type(error.instance)}"
        case "const":
            return f"expected {shortened(json.dumps(value))}"
        case "enum":
            return f"expected one of {shortened('|'.join(json.dumps(option) for option in value), 300)}"
        case "format" | "pattern" if schema.get("format") in FORMATS:
            return f"expected {FORMATS[schema['format']]}"
        case "pattern":
            return f"expected text matching {shortened(value)}"
        case "minLength" | "maxLength":
            return f"expected {'at least' if error.validator == 'minLength' else 'at most'} {_count(value, 'character')}"
        case "minItems" | "maxItems":
            return f"expected {'at least' if error.validator == 'minItems' else 'at most'} {_count(value, 'item')}"
        case "minimum" | "exclusiveMinimum" | "maximum" | "exclusiveMaximum":
            sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[error.validator]
            return f"expected a number {sign} {value}"
    return shortened(error.message, 300)


def _describe_union(error: ValidationError) -> list[str]:
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    meant = [subs for subs in branches.values() if not any(_misfit(sub, error) for sub in subs)]
    if len(meant) == 1:
        return [problem for sub in meant[0] for problem in describe(sub)]
    alternatives = error.validator_value
    discriminator = _discriminator(alternatives)
    if discriminator is not None and isinstance(error.instance, dict):
        options = "|".join(json.dumps(alternative["properties"][discriminator]["const"]) for alternative in alternatives)
        return [f"{path_of(error, discriminator)}: expected one of {shortened(options, 300)}"]
    types = _unique(str(alternative.get("type", "a JSON value")) for alternative in alternatives)
    return [f"{path_of(error)}: expected {' or '.join(types)}, received {json_type(error.instance)}"]


def _misfit(sub: ValidationError, union: ValidationError) -> bool:
    """Whether `sub` says the value is not meant to be its alternative: another type, another discriminator."""
    depth = len(sub.absolute_path) - len(union.absolute_path)
    return (sub.validator == "type" and depth == 0) or (sub.validator == "const" and depth == 1)


def _discriminator(alternatives: list[Any]) -> str | None:
    """The field whose constant tells the alternatives apart (`kind`), when they all have one and the same."""
    names = {
        next((name for name, field in alternative.get("properties", {}).items() if "const" in field), None)
        for alternative in alternatives
    }
    return names.pop() if len(names) == 1 else None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _unique(items: Iterable[str]) -> Iterator[str]:
    seen: set[str] = set()
    for item in items:
        if item not in seen:
            seen.add(item)
            yield item


def shortened(text: str, limit: int = 100) -> str:
    """The start of a text quoted in a reason, so a huge input makes no huge reason."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"

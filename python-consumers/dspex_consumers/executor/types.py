"""Wire type expressions (`str`, `list[int]`, `Literal["a", "b"]`, `probability`...) → Python annotations."""

import ast
import json
from typing import Any, Literal, Optional

SCALARS: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "probability": float,
    "confidence": float,
    "embedding": list[float],
    "dict": dict[str, Any],
    "list": list[str],
    "any": Any,
}


class UnknownType(ValueError):
    pass


def annotation_of(type_text: str, optional: bool = False) -> Any:
    annotation = _parse(type_text.strip())
    return Optional[annotation] if optional else annotation  # noqa: UP045 (a runtime annotation, as DSPy reads it)


def _parse(text: str) -> Any:
    if text in SCALARS:
        return SCALARS[text]
    head, _, rest = text.partition("[")
    if not rest.endswith("]"):
        raise UnknownType(f"unknown type {text!r}")
    body = rest[:-1]
    match head.strip():
        case "list" | "List":
            return list[_parse(body.strip())]
        case "dict" | "Dict":
            key, value = _split_top_level(body)
            return dict[_parse(key), _parse(value)]
        case "Literal":
            return Literal[tuple(_literal_values(body))]
        case "Optional":
            return Optional[_parse(body.strip())]  # noqa: UP045 (a runtime annotation, as DSPy reads it)
    raise UnknownType(f"unknown type {text!r}")


def _split_top_level(body: str) -> tuple[str, str]:
    depth = 0
    for index, char in enumerate(body):
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            return body[:index].strip(), body[index + 1 :].strip()
    raise UnknownType(f"dict needs a key and a value type: dict[{body}]")


def _literal_values(body: str) -> list[Any]:
    try:
        return json.loads(f"[{body}]")
    except json.JSONDecodeError:
        return list(ast.literal_eval(f"[{body}]"))

"""Builds a dspy.Signature from the wire's SignatureSpec: typed fields, descriptions, instructions."""

from typing import Any

import dspy

from .errors import BadStep
from .types import annotation_of

# DSPy's predictors take these keyword arguments for themselves: an input of that name never reaches the LM.
DSPY_KEYWORDS = frozenset({"signature", "demos", "config", "lm", "new_signature"})


def check_names(step: dict[str, Any]) -> None:
    """Refuses names Python, pydantic or DSPy keep for their own: `__class__`, any leading underscore, `lm`..."""
    named = [(field.get("name", ""), "input field") for field in step["signature"]["inputs"]]
    named += [(field.get("name", ""), "output field") for field in step["signature"]["outputs"]]
    named += [(name, "input") for name in step["inputs"]]
    for name, role in named:
        if name.startswith("_"):
            raise BadStep(f"{role} {name!r} starts with an underscore, as Python's own names do (__class__, __init__): rename it")
        if role == "input field" and name in DSPY_KEYWORDS:
            raise BadStep(f"input field {name!r} is a keyword DSPy's predictors take for themselves: rename it")


def describe_field(field: dict[str, Any]) -> str | None:
    """The field's description, with its constraints spelled out for the LM."""
    parts = [field["description"]] if field.get("description") else []
    parts.extend(_constraint_phrases(field.get("type", "str"), field.get("constraints") or {}))
    return "; ".join(parts) or None


def _constraint_phrases(type_text: str, constraints: dict[str, Any]) -> list[str]:
    phrases = []
    if type_text == "probability":
        phrases.append("a number between 0 and 1")
    if type_text == "confidence":
        phrases.append("a number >= 0")
    named = {
        "minLength": "at least {} characters",
        "maxLength": "at most {} characters",
        "pattern": "matching the regular expression {}",
        "min": ">= {}",
        "max": "<= {}",
        "minItems": "at least {} items",
        "maxItems": "at most {} items",
        "dimensions": "exactly {} numbers",
    }
    phrases.extend(template.format(constraints[key]) for key, template in named.items() if key in constraints)
    return phrases


def build_signature(spec: dict[str, Any], name: str = "StepSignature") -> type[dspy.Signature]:
    fields: dict[str, tuple[Any, Any]] = {}
    for field in spec["inputs"]:
        fields[field["name"]] = _field(field, dspy.InputField)
    for field in spec["outputs"]:
        fields[field["name"]] = _field(field, dspy.OutputField)
    return dspy.Signature(fields, spec.get("instructions") or "", signature_name=name)


def _field(field: dict[str, Any], kind: Any) -> tuple[Any, Any]:
    annotation = annotation_of(field.get("type", "str"), field.get("optional", False))
    description = describe_field(field)
    return annotation, kind(desc=description) if description else kind()

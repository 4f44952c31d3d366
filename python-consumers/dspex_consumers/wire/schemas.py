"""Validates events against the JSON Schemas exported from the TypeScript catalog (schemas/)."""

import functools
import json
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from .problems import problems_of, shortened


class InvalidEvent(ValueError):
    """An event that does not match the catalog; the message says why (for the dead-letter topic)."""


def schemas_dir() -> Path:
    configured = os.environ.get("DSPEX_SCHEMAS_DIR")
    if configured:
        return Path(configured)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "schemas" / "index.json"
        if candidate.is_file():
            return candidate.parent
    raise FileNotFoundError("schemas/ not found; set DSPEX_SCHEMAS_DIR to the repo's schemas folder")


@functools.cache
def catalog() -> dict[str, int]:
    """Event type → its current schema version."""
    index = json.loads((schemas_dir() / "index.json").read_text())
    return {entry["type"]: entry["version"] for entry in index}


@functools.cache
def validator(event_type: str, version: int) -> Draft202012Validator:
    schema = json.loads((schemas_dir() / f"{event_type}.v{version}.json").read_text())
    return Draft202012Validator(schema, format_checker=FormatChecker())


@functools.cache
def envelope_validator() -> Draft202012Validator:
    """The fields every event has (streams/envelope.ts `AnyEnvelope`), taken from the catalog's schemas."""
    any_event = json.loads((schemas_dir() / "StepDispatched.v1.json").read_text())
    properties = {
        **any_event["properties"],
        "type": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 1},
        "data": {},
    }
    schema = {"type": "object", "required": any_event["required"], "properties": properties}
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate_event(event: Any) -> dict[str, Any]:
    """Returns the event when it matches its schema; raises InvalidEvent with the reason otherwise
    (the reasons of `parseEvent` in streams/codec.ts)."""
    problems = problems_of(envelope_validator(), event)
    if problems:
        raise InvalidEvent(f"not a dspex envelope: {problems}")
    event_type, version = event["type"], event["schemaVersion"]
    current = catalog().get(event_type)
    if current is None:
        raise InvalidEvent(f"unknown event type {json.dumps(shortened(event_type), ensure_ascii=False)}")
    if version > current:
        raise InvalidEvent(f"{event_type} schema version {version} is newer than this build knows ({current}): upgrade dspex")
    if version < current:
        raise InvalidEvent(f"{event_type} schema version {version} has no upcaster to {current}")
    problems = problems_of(validator(event_type, current), event)
    if problems:
        raise InvalidEvent(f"invalid {event_type}: {problems}")
    return event

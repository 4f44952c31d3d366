"""Validates events against the JSON Schemas exported from the TypeScript catalog (schemas/)."""

import functools
import json
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker


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


def validate_event(event: Any) -> dict[str, Any]:
    """Returns the event when it matches its schema; raises InvalidEvent with the reason otherwise."""
    if not isinstance(event, dict) or "type" not in event or "data" not in event:
        raise InvalidEvent("not a dspex envelope")
    event_type = event["type"]
    versions = catalog()
    if not isinstance(event_type, str) or event_type not in versions:
        raise InvalidEvent(f"unknown event type {_shortened(repr(event_type))}")
    version = event.get("schemaVersion")
    if isinstance(version, int) and not isinstance(version, bool) and version > versions[event_type]:
        raise InvalidEvent(f"{event_type} schemaVersion {version} is newer than this build ({versions[event_type]})")
    errors = sorted(validator(event_type, versions[event_type]).iter_errors(event), key=lambda e: list(e.path))
    if errors:
        raise InvalidEvent("; ".join(_describe(error) for error in errors[:5]))
    return event


def _shortened(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _describe(error: Any) -> str:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return "; ".join(f"{'.'.join([*path, name])}: is required" for name in missing)
    return f"{'.'.join(path) or 'event'}: {_shortened(error.message, 300)}"

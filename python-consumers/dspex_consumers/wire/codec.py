"""Bytes on the wire ⇄ validated events, mirroring streams/codec.ts (same reasons for the same faults)."""

import json
from dataclasses import dataclass
from typing import Any

from .schemas import InvalidEvent, validate_event

# Record headers every dspex record carries (streams/codec.ts `Headers`).
HEADER_TYPE = "dspex-type"
HEADER_ID = "dspex-id"
HEADER_SCHEMA_VERSION = "dspex-schema-version"
HEADER_CONTENT_TYPE = "content-type"

# The wire's limits (streams/codec.ts `maxEventBytes`, `maxNestingDepth`): the same on both sides.
MAX_EVENT_BYTES = 1_000_000
MAX_NESTING_DEPTH = 64
TOO_DEEP = f"value nests arrays and objects deeper than {MAX_NESTING_DEPTH} levels"


@dataclass(frozen=True)
class Decoded:
    event: dict[str, Any] | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.event is not None


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and dicts nest deeper than `limit`; the recursion stops at `limit`, so any depth is safe."""
    if not isinstance(value, (dict, list)):
        return False
    if limit <= 0:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(nests_deeper_than(child, limit - 1) for child in children)


def decode_bytes(raw: bytes) -> Decoded:
    """Never raises: whatever the bytes, a validated event or the reason it is not one."""
    if len(raw) > MAX_EVENT_BYTES:
        return Decoded(None, f"value is {len(raw)} bytes, over the limit of {MAX_EVENT_BYTES}")
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark is skipped, as TS's TextDecoder does
    except UnicodeDecodeError:
        return Decoded(None, "value is not valid UTF-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return Decoded(None, f"value is not JSON: {error}")
    except RecursionError:
        return Decoded(None, TOO_DEEP)
    return decode_value(value)


def decode_value(value: Any, at_most_bytes: int = 0) -> Decoded:
    """decode_bytes for a value already parsed (from a larger frame): the same checks, never raises.

    `at_most_bytes` bounds the value's encoded size (the frame it came in); past the limit it is measured.
    """
    if at_most_bytes > MAX_EVENT_BYTES:
        try:
            size = len(encode_event(value))
        except (RecursionError, TypeError, ValueError):
            size = 0  # not an event: the checks below say why
        if size > MAX_EVENT_BYTES:
            return Decoded(None, f"value is {size} bytes, over the limit of {MAX_EVENT_BYTES}")
    if nests_deeper_than(value, MAX_NESTING_DEPTH):
        return Decoded(None, TOO_DEEP)
    try:
        return Decoded(validate_event(value))
    except InvalidEvent as error:
        return Decoded(None, str(error))
    except RecursionError:
        return Decoded(None, TOO_DEEP)


def wire_problem(event: dict[str, Any]) -> str | None:
    """Why an event this consumer built would be refused by the wire's limits, or None when it fits."""
    if nests_deeper_than(event, MAX_NESTING_DEPTH):
        return f"nests arrays and objects deeper than {MAX_NESTING_DEPTH} levels"
    size = len(encode_event(event))
    if size > MAX_EVENT_BYTES:
        return f"is {size} bytes of JSON, over the limit of {MAX_EVENT_BYTES}"
    return None


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def headers_of(event: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [
        (HEADER_TYPE, event["type"].encode()),
        (HEADER_ID, event["id"].encode()),
        (HEADER_SCHEMA_VERSION, str(event["schemaVersion"]).encode()),
        (HEADER_CONTENT_TYPE, b"application/json"),
    ]

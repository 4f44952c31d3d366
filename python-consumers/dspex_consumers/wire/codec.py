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


@dataclass(frozen=True)
class Decoded:
    event: dict[str, Any] | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.event is not None


def decode_bytes(raw: bytes) -> Decoded:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Decoded(None, "value is not valid UTF-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return Decoded(None, f"value is not JSON: {error}")
    try:
        return Decoded(validate_event(value))
    except InvalidEvent as error:
        return Decoded(None, f"invalid event: {error}")


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def headers_of(event: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [
        (HEADER_TYPE, event["type"].encode()),
        (HEADER_ID, event["id"].encode()),
        (HEADER_SCHEMA_VERSION, str(event["schemaVersion"]).encode()),
        (HEADER_CONTENT_TYPE, b"application/json"),
    ]

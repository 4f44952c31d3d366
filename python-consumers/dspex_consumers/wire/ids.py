"""Deterministic ids, computed exactly like streams/ids.ts (UUIDv5 in the dspex namespace)."""

import hashlib
import uuid

DSPEX_NAMESPACE = "6f1c2b7e-3d4a-5b8c-9e0f-a1b2c3d4e5f6"


def uuid_v5(name: str, namespace: str = DSPEX_NAMESPACE) -> str:
    digest = bytearray(hashlib.sha1(uuid.UUID(namespace).bytes + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


def derived_id(cause_id: str, discriminator: str) -> str:
    """The id of an event derived from a cause: a redelivered cause yields the same id."""
    return uuid_v5(f"{cause_id}/{discriminator}")

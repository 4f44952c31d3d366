"""Frames: a 4-byte big-endian length, then that many bytes of UTF-8 JSON."""

import json
import struct
from typing import Any, BinaryIO

MAX_FRAME_BYTES = 64 * 1024 * 1024
_LENGTH = struct.Struct(">I")


class FrameError(ValueError):
    pass


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return _LENGTH.pack(len(body)) + body


def read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    """`size` bytes, or None at a clean end of stream; a stream cut mid-frame is an error."""
    chunks, missing = [], size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            if missing == size:
                return None
            raise FrameError(f"stream ended {missing} bytes short of a frame")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's body (raw bytes, decoded by the caller), or None at end of stream."""
    header = read_exactly(stream, _LENGTH.size)
    if header is None:
        return None
    (length,) = _LENGTH.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    body = read_exactly(stream, length)
    if body is None:
        raise FrameError("stream ended before the frame's body")
    return body

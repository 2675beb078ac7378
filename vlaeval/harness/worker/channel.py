"""Framed msgpack messages over a pair of binary pipes (driver <-> sim worker).

Each frame is a 4-byte big-endian length followed by a msgpack map. Only plain
JSON-like values cross this channel (episode specs, results, status); observations
and actions travel over the policy protocol instead. Never pickle.
"""

from __future__ import annotations

import struct
import threading
from typing import Any, BinaryIO

import msgpack

MAX_FRAME_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct(">I")


class ChannelClosed(EOFError):
    """The other end closed the pipe (process exited)."""


class ChannelError(ValueError):
    """A frame that is not a valid message."""


class Channel:
    def __init__(self, reader: BinaryIO, writer: BinaryIO):
        self._reader = reader
        self._writer = writer
        self._write_lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        body = msgpack.packb(message, use_bin_type=True)
        with self._write_lock:
            self._writer.write(_HEADER.pack(len(body)) + body)
            self._writer.flush()

    def recv(self) -> dict[str, Any]:
        header = self._read_exact(_HEADER.size)
        (length,) = _HEADER.unpack(header)
        if length > MAX_FRAME_BYTES:
            raise ChannelError(f"control frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
        try:
            message = msgpack.unpackb(self._read_exact(length), raw=False)
        except Exception as exc:  # msgpack raises several unrelated types
            raise ChannelError(f"undecodable control frame: {exc}") from None
        if not isinstance(message, dict) or "type" not in message:
            raise ChannelError("control frame is not a message map with a 'type'")
        return message

    def _read_exact(self, n: int) -> bytes:
        chunks, remaining = [], n
        while remaining:
            chunk = self._reader.read(remaining)
            if not chunk:
                raise ChannelClosed("control channel closed")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

"""Same-host fast path: large observation arrays travel through one shared-memory segment.

A client on the same machine as its policy server (the usual ``vlaeval run`` layout) would
otherwise push every camera frame through msgpack, WebSocket masking and loopback TCP: about
seven copies of ~1 MB per SimplerEnv step. With shared memory the client copies each large
array once into a segment and sends a small reference; the server copies it out once while
decoding, before it replies, so the client may overwrite the segment for the next request.

Handshake: the client creates ``/dev/shm/vlaeval-<random>`` (sparse, ``max_bytes`` long, a
random 16-byte nonce at offset 0) and offers ``{"segment", "nonce", "size"}`` in its HELLO. A
server that can open the file and read the same nonce maps it read-only and answers
``"shm": true``; otherwise the conversation stays on the wire. Either way the client unlinks the
file as soon as the HELLO is answered, so a crashed worker leaves nothing in ``/dev/shm``.

Trust: the segment belongs to a client on the same host (as the same user, file mode 0600); a
client that shrank its own file after the handshake could fault the server's reads, which our
client never does.

An array travels as ``{"__shm_ndarray__": True, "dtype", "shape", "offset"}``; arrays smaller
than :data:`MIN_ARRAY_BYTES`, or that no longer fit in the segment, stay inline. Only numpy and
the standard library are used (this runs inside simulator environments with numpy 1.23).
"""

from __future__ import annotations

import mmap
import os
import re
import secrets
from typing import Any

import numpy as np

from vlaeval.harness.protocol.codec import SHM_MARKER, CodecError, array_layout, check_dtype

SHM_DIR = "/dev/shm"
MIN_ARRAY_BYTES = 64 * 1024
"""Arrays at least this large go through the segment (a frame); smaller ones stay inline."""

MAX_SEGMENT_BYTES = 1 << 30
"""Largest segment a server maps (it is sparse: only the bytes written use memory)."""

DISABLE_ENV = "VLAEVAL_SHM"
"""Set to ``0`` to keep every array on the wire."""

_HEADER_BYTES = 64  # nonce (16 bytes), then padding; data starts 64-byte aligned
_ALIGN = 64
_NAME = re.compile(r"^vlaeval-[0-9a-f]{32}$")


def enabled_by_environment() -> bool:
    return os.environ.get(DISABLE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class ShmWriter:
    """Client side: owns the segment, places a message's large arrays into it."""

    def __init__(self, size: int):
        self.name = f"vlaeval-{secrets.token_hex(16)}"
        self.nonce = secrets.token_bytes(16)
        self.size = _HEADER_BYTES + size
        self.path = ""  # set once this writer created the file: only then does it unlink it
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        path = os.path.join(SHM_DIR, self.name)
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            self.path = path
            os.ftruncate(self._fd, self.size)
            self._map = mmap.mmap(self._fd, self.size)
        except OSError:
            self.close()
            raise
        self._map[:16] = self.nonce
        self._allocated = _HEADER_BYTES  # bytes backed by memory (posix_fallocate): writing there cannot SIGBUS
        self._cursor = _HEADER_BYTES

    @classmethod
    def create(cls, size: int) -> "ShmWriter | None":
        """A writer, or ``None`` where shared memory is unavailable or disabled."""
        if not enabled_by_environment() or not os.path.isdir(SHM_DIR):
            return None
        try:
            return cls(size)
        except OSError:
            return None

    def offer(self) -> dict[str, Any]:
        """The HELLO offer a server verifies."""
        return {"segment": self.name, "nonce": self.nonce.hex(), "size": self.size}

    def unlink(self) -> None:
        """Remove the name (the mappings stay valid); called once the server has answered the offer."""
        self._discard_file()

    def begin_message(self) -> None:
        self._cursor = _HEADER_BYTES

    @property
    def message_bytes(self) -> int:
        """Bytes the current message has placed in the segment (with alignment)."""
        return self._cursor - _HEADER_BYTES

    def place(self, array: np.ndarray) -> dict[str, Any] | None:
        """Copy ``array`` into the segment and return its reference, or ``None`` to send it inline."""
        if array.nbytes < MIN_ARRAY_BYTES or self._map is None:
            return None
        dtype = check_dtype(array.dtype)
        offset = self._cursor
        end = offset + array.nbytes
        if end > self.size or not self._back(end):
            return None
        np.copyto(np.ndarray(array.shape, dtype=dtype, buffer=self._map, offset=offset), array, casting="no")
        self._cursor = -(-end // _ALIGN) * _ALIGN
        return {SHM_MARKER: True, "dtype": dtype.str, "shape": list(array.shape), "offset": offset}

    def _back(self, end: int) -> bool:
        """Reserve memory up to ``end`` so a full ``/dev/shm`` is an error here, not a SIGBUS later."""
        if end <= self._allocated:
            return True
        if self._fd is None:
            return False
        try:
            os.posix_fallocate(self._fd, self._allocated, end - self._allocated)
        except OSError:
            return False
        self._allocated = end
        return True

    def _discard_file(self) -> None:
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = ""

    def close(self) -> None:
        self._discard_file()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._map is not None:
            self._map.close()
            self._map = None


class ShmReader:
    """Server side: one session's read-only mapping of the client's segment."""

    def __init__(self, mapping: mmap.mmap, max_bytes: int):
        self._map: mmap.mmap | None = mapping
        self.max_bytes = max_bytes

    @classmethod
    def accept(cls, offer: Any, max_bytes: int) -> "ShmReader | None":
        """Map the offered segment if it exists here and carries the offered nonce, else ``None``."""
        if not isinstance(offer, dict):
            return None
        name, nonce, size = offer.get("segment"), offer.get("nonce"), offer.get("size")
        if not (isinstance(name, str) and _NAME.match(name) and isinstance(nonce, str)
                and isinstance(size, int) and _HEADER_BYTES <= size <= MAX_SEGMENT_BYTES):
            return None
        try:
            expected = bytes.fromhex(nonce)
            fd = os.open(os.path.join(SHM_DIR, name), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (ValueError, OSError):
            return None
        try:
            if os.fstat(fd).st_size != size:
                return None
            mapping = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        except OSError:
            return None
        finally:
            os.close(fd)
        if len(expected) != 16 or mapping[:16] != expected:
            mapping.close()
            return None
        return cls(mapping, max_bytes)

    def array(self, ref: dict[Any, Any]) -> np.ndarray:
        """A writable copy of the referenced array, after checking it lies inside the segment."""
        if self._map is None:
            raise CodecError("shared-memory array after the session's segment was closed")
        dtype, shape, nbytes = array_layout(ref.get("dtype"), ref.get("shape"), self.max_bytes)
        offset = ref.get("offset")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < _HEADER_BYTES:
            raise CodecError(f"shared-memory array offset must be an integer >= {_HEADER_BYTES}, got {offset!r}")
        if offset + nbytes > len(self._map):
            raise CodecError(f"shared-memory array [{offset}, {offset + nbytes}) lies outside the "
                             f"{len(self._map)}-byte segment")
        region = np.frombuffer(self._map, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset)
        return region.reshape(shape).copy()

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view is still alive: the mapping goes with it
                pass
            self._map = None

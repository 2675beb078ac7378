"""msgpack with an explicit, whitelisted numpy array codec (never pickle).

An array travels as a map with string marker keys::

    {"__ndarray__": True, "dtype": "<f4", "shape": [224, 224, 3], "data": b"..."}

or, on a connection that set up shared memory (:mod:`.shm`), as a reference into it::

    {"__shm_ndarray__": True, "dtype": "|u1", "shape": [512, 640, 3], "offset": 64}

numpy scalars travel as plain Python scalars. Decoding validates the dtype against
:data:`ALLOWED_DTYPES`, the shape against the byte length and the total size, and
returns writable arrays that own their memory.

Only numpy, msgpack and the standard library are imported (this runs inside
simulator environments with numpy 1.23), so no numpy-2-only API is used.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol, Sequence

import msgpack
import numpy as np

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Largest frame :func:`unpackb` accepts unless told otherwise (64 MiB)."""

ARRAY_MARKER = "__ndarray__"
SHM_MARKER = "__shm_ndarray__"


class ArrayPlacer(Protocol):
    """Where an encoder may put a large array instead of inlining it (:class:`.shm.ShmWriter`)."""

    def place(self, array: np.ndarray) -> dict[str, Any] | None: ...


class ArrayResolver(Protocol):
    """What turns a shared-memory reference back into an array (:class:`.shm.ShmReader`)."""

    def array(self, ref: dict[Any, Any]) -> np.ndarray: ...

ALLOWED_DTYPES = frozenset(
    {"bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
     "float16", "float32", "float64"}
)
"""dtype names that may cross the wire (kinds b, i, u, f; no object/str/complex/void)."""

_MAX_NDIM = 32  # numpy 1.x limit


class CodecError(ValueError):
    """A frame or value cannot be encoded or decoded; the message is one line."""


def check_dtype(dtype: Any) -> np.dtype:
    """Return ``dtype`` as a :class:`numpy.dtype` if it is whitelisted, else raise :class:`CodecError`."""
    if not isinstance(dtype, (str, np.dtype)):
        raise CodecError(f"array dtype must be a string, got {type(dtype).__name__}")
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        raise CodecError(f"unknown array dtype {dtype!r}") from None
    if resolved.kind not in "biuf" or resolved.name not in ALLOWED_DTYPES:
        raise CodecError(f"array dtype {resolved.str!r} ({resolved.name}) is not allowed")
    return resolved


def array_layout(dtype: Any, shape: Any, max_bytes: int) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, nbytes)`` of an array described on the wire, after validating all three."""
    resolved = check_dtype(dtype)
    dims = _check_shape(shape)
    nbytes = math.prod(dims) * resolved.itemsize
    if nbytes > max_bytes:
        raise CodecError(f"array of shape {dims} ({nbytes} bytes) exceeds limit of {max_bytes} bytes")
    return resolved, dims, nbytes


def array_from_parts(dtype: Any, shape: Any, data: Any, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Build a writable array from wire parts after validating dtype, shape and size."""
    resolved, dims, expected = array_layout(dtype, shape, max_bytes)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"array data must be bytes, got {type(data).__name__}")
    if expected != len(data):
        raise CodecError(
            f"array of shape {dims} and dtype {resolved.str} needs {expected} bytes, got {len(data)}"
        )
    if expected == 0:
        return np.zeros(dims, dtype=resolved)
    return np.frombuffer(data, dtype=resolved).reshape(dims).copy()


def _check_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, (list, tuple)) or len(shape) > _MAX_NDIM:
        raise CodecError(f"array shape must be a list of at most {_MAX_NDIM} integers, got {shape!r}")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise CodecError(f"array shape must hold non-negative integers, got {list(shape)!r}")
    return tuple(shape)


def _encode_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        dtype = check_dtype(obj.dtype)
        return {ARRAY_MARKER: True, "dtype": dtype.str, "shape": list(obj.shape), "data": obj.tobytes()}
    if isinstance(obj, np.generic):
        check_dtype(obj.dtype)
        return obj.item()
    raise CodecError(f"cannot encode object of type {type(obj).__name__}")


def _encoder(shm: ArrayPlacer | None) -> Callable[[Any], Any]:
    if shm is None:
        return _encode_default

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            ref = shm.place(obj)
            if ref is not None:
                return ref
        return _encode_default(obj)

    return default


def _decode_hook(max_bytes: int, shm: ArrayResolver | None = None) -> Callable[[dict[Any, Any]], Any]:
    def hook(obj: dict[Any, Any]) -> Any:
        if ARRAY_MARKER in obj:
            return array_from_parts(obj.get("dtype"), obj.get("shape"), obj.get("data"), max_bytes)
        if SHM_MARKER in obj:
            if shm is None:
                raise CodecError("shared-memory array on a connection that did not set up shared memory")
            return shm.array(obj)
        return obj

    return hook


def pack_with(obj: Any, default: Callable[[Any], Any]) -> bytes:
    """``msgpack.packb`` with ``default``; any failure becomes a :class:`CodecError`."""
    try:
        return msgpack.packb(obj, default=default, use_bin_type=True)
    except CodecError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode message: {one_line(exc)}") from None


def unpack_with(data: Any, hook: Callable[[dict[Any, Any]], Any], max_bytes: int) -> Any:
    """``msgpack.unpackb`` with a size check and ``hook``; any failure becomes a :class:`CodecError`."""
    check_frame(data, max_bytes)
    try:
        return msgpack.unpackb(data, object_hook=hook, raw=False)
    except CodecError:
        raise
    except (ValueError, TypeError, msgpack.exceptions.UnpackException) as exc:
        raise CodecError(f"frame is not valid msgpack: {one_line(exc)}") from None


def check_frame(data: Any, max_bytes: int) -> None:
    """Raise :class:`CodecError` unless ``data`` is a binary frame of at most ``max_bytes``."""
    if isinstance(data, str):
        raise CodecError("expected a binary frame, got a text frame")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected a binary frame, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise CodecError(f"frame of {len(data)} bytes exceeds limit of {max_bytes} bytes")


def packb(obj: Any, shm: ArrayPlacer | None = None) -> bytes:
    """Encode ``obj`` (dicts, lists, scalars, str, bytes, numpy arrays and scalars);
    with ``shm``, large arrays go into shared memory and the frame holds references."""
    return pack_with(obj, _encoder(shm))


def unpackb(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, shm: ArrayResolver | None = None) -> Any:
    """Decode a frame made by :func:`packb`; arrays (inline or in ``shm``) come back as writable copies."""
    return unpack_with(data, _decode_hook(max_bytes, shm), max_bytes)


def one_line(text: object, limit: int = 500) -> str:
    """The first non-empty line of ``str(text)``, at most ``limit`` characters."""
    lines: Sequence[str] = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else (type(text).__name__ if isinstance(text, BaseException) else "")
    return first if len(first) <= limit else first[: limit - 3] + "..."

"""openpi's wire format: msgpack with byte-key numpy maps, and its observation keys.

openpi (``openpi_client.msgpack_numpy``) encodes an array as::

    {b"__ndarray__": True, b"data": bytes, b"dtype": "<f4", b"shape": (H, W, C)}

and a numpy scalar as ``{b"__npgeneric__": True, b"data": value, b"dtype": "<f4"}``.
This module speaks that encoding with the same dtype whitelist and checks as
:mod:`vlaeval.harness.protocol.codec` (never pickle), and maps openpi's observation
keys to vlaeval's. Only numpy, msgpack and the standard library are imported.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from vlaeval.harness.protocol.codec import (
    DEFAULT_MAX_BYTES,
    CodecError,
    array_from_parts,
    check_dtype,
    pack_with,
    unpack_with,
)

ARRAY_MARKER = b"__ndarray__"
SCALAR_MARKER = b"__npgeneric__"

DEFAULT_KEYS: dict[str, str] = {
    "observation/image": "agentview",
    "observation/wrist_image": "wrist",
    "observation/state": "state",
    "prompt": "instruction",
}
"""openpi observation key -> vlaeval observation key (LIBERO example layout)."""


def _encode_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        dtype = check_dtype(obj.dtype)
        return {ARRAY_MARKER: True, b"data": obj.tobytes(), b"dtype": dtype.str, b"shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        dtype = check_dtype(obj.dtype)
        return {SCALAR_MARKER: True, b"data": obj.item(), b"dtype": dtype.str}
    raise CodecError(f"cannot encode object of type {type(obj).__name__}")


def _decode_hook(max_bytes: int) -> Callable[[dict[Any, Any]], Any]:
    def hook(obj: dict[Any, Any]) -> Any:
        if ARRAY_MARKER in obj:
            return array_from_parts(obj.get(b"dtype"), obj.get(b"shape"), obj.get(b"data"), max_bytes)
        if SCALAR_MARKER in obj:
            return _scalar(obj.get(b"dtype"), obj.get(b"data"))
        return obj

    return hook


def _scalar(dtype: Any, value: Any) -> np.generic:
    resolved = check_dtype(dtype)
    if isinstance(value, (dict, list, str, bytes)) or value is None:
        raise CodecError(f"numpy scalar data must be a number, got {type(value).__name__}")
    try:
        return resolved.type(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"invalid numpy scalar of dtype {resolved.str}: {exc}") from None


def packb(obj: Any) -> bytes:
    """Encode ``obj`` the way ``openpi_client.msgpack_numpy.packb`` does."""
    return pack_with(obj, _encode_default)


def unpackb(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Decode an openpi frame; arrays come back as validated, writable copies."""
    return unpack_with(data, _decode_hook(max_bytes), max_bytes)


def rename_keys(obs: Mapping[str, Any], mapping: Mapping[str, str], keep_unmapped: bool) -> dict[str, Any]:
    """Rename ``obs`` keys through ``mapping``; unmapped keys are kept or dropped."""
    renamed = {mapping[k]: v for k, v in obs.items() if k in mapping}
    if keep_unmapped:
        renamed.update({k: v for k, v in obs.items() if k not in mapping and k not in renamed})
    return renamed


def inverse_keys(mapping: Mapping[str, str]) -> dict[str, str]:
    """vlaeval key -> openpi key, for a client that drives an openpi server."""
    return {ours: theirs for theirs, ours in mapping.items()}

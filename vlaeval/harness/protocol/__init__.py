"""Wire protocol between sim workers and policy servers (vlaeval's own, and openpi's)."""

from __future__ import annotations

from vlaeval.harness.protocol.client import (
    OpenpiPolicyHandle,
    RemotePolicyHandle,
    connect_policy,
    health_url,
    wait_for_health,
)
from vlaeval.harness.protocol.codec import DEFAULT_MAX_BYTES, CodecError, packb, unpackb
from vlaeval.harness.protocol.messages import (
    HARNESS_VERSION,
    PROTOCOL_VERSION,
    ErrorCode,
    Message,
    ProtocolError,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "HARNESS_VERSION",
    "PROTOCOL_VERSION",
    "CodecError",
    "ErrorCode",
    "Message",
    "OpenpiPolicyHandle",
    "PolicyServer",
    "ProtocolError",
    "RemotePolicyHandle",
    "connect_policy",
    "health_url",
    "packb",
    "unpackb",
    "wait_for_health",
]


def __getattr__(name: str):
    # The server needs websockets>=13's asyncio API; sim environments only import the client.
    if name == "PolicyServer":
        from vlaeval.harness.protocol.server import PolicyServer

        return PolicyServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

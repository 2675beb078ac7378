"""The vlaeval wire protocol: typed envelopes ``{"type", "seq", "payload"[, "timestamp"]}``.

Conversation (client -> server, each reply echoes the request's ``seq``)::

    HELLO          {protocol_version, harness_version, client}
      -> HELLO     {protocol_version, harness_version, policy, fingerprint, server}
    EPISODE_START  {instruction, episode}   -> EPISODE_STARTED {}
    OBSERVATION    {obs}                    -> ACTION          {action}
    EPISODE_END    {result}                 -> EPISODE_ENDED   {}
    any request    -> ERROR {message, code, fatal}

An ERROR answering a frame whose ``seq`` could not be read carries ``seq: None``.

A client on the server's host may offer a shared-memory segment in ``HELLO.client["shm"]``;
``HELLO.server["shm"]`` says whether the server mapped it, and then large arrays travel
through it (:mod:`.shm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from vlaeval import __version__ as HARNESS_VERSION
from vlaeval.harness.protocol import codec
from vlaeval.harness.protocol.codec import one_line

PROTOCOL_VERSION = 1

HELLO = "HELLO"
EPISODE_START = "EPISODE_START"
EPISODE_STARTED = "EPISODE_STARTED"
OBSERVATION = "OBSERVATION"
ACTION = "ACTION"
EPISODE_END = "EPISODE_END"
EPISODE_ENDED = "EPISODE_ENDED"
ERROR = "ERROR"

REPLY_TO: dict[str, str] = {
    HELLO: HELLO,
    EPISODE_START: EPISODE_STARTED,
    OBSERVATION: ACTION,
    EPISODE_END: EPISODE_ENDED,
}
"""Request type -> the reply type a successful request gets."""

PAYLOAD_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    HELLO: {"protocol_version": int},
    EPISODE_START: {"instruction": str, "episode": dict},
    EPISODE_STARTED: {},
    OBSERVATION: {"obs": dict},
    ACTION: {"action": np.ndarray},
    EPISODE_END: {"result": dict},
    EPISODE_ENDED: {},
    ERROR: {"message": str, "code": str, "fatal": bool},
}
"""Required payload keys and their types, per message type."""


class ErrorCode:
    """Values of ``ERROR.payload["code"]``."""

    BAD_FRAME = "bad_frame"  # not msgpack, text frame, oversized, bad array
    BAD_MESSAGE = "bad_message"  # not an envelope, unknown type, missing payload keys
    VERSION_MISMATCH = "version_mismatch"
    NO_EPISODE = "no_episode"  # OBSERVATION / EPISODE_END before EPISODE_START
    POLICY_ERROR = "policy_error"  # the policy raised
    BAD_ACTION = "bad_action"  # the policy's action failed as_action_chunk


class ProtocolError(ValueError):
    """A request failed; ``code`` is an :class:`ErrorCode` value, ``fatal`` closes the session."""

    def __init__(self, message: str, code: str = ErrorCode.BAD_MESSAGE, fatal: bool = False):
        super().__init__(one_line(message))
        self.code = code
        self.fatal = fatal


@dataclass(frozen=True)
class Message:
    """One envelope. ``seq`` is ``None`` only for an ERROR about an unreadable frame."""

    type: str
    seq: int | None
    payload: dict[str, Any]
    timestamp: float | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"type": self.type, "seq": self.seq, "payload": self.payload}
        if self.timestamp is not None:
            wire["timestamp"] = self.timestamp
        return wire

    @classmethod
    def from_wire(cls, obj: Any) -> "Message":
        """Validate a decoded frame; raise :class:`ProtocolError` if it is not a well-formed message."""
        if not isinstance(obj, dict):
            raise ProtocolError(f"message must be a map, got {type(obj).__name__}")
        kind, seq, payload = obj.get("type"), obj.get("seq"), obj.get("payload")
        if kind not in PAYLOAD_SCHEMA:
            raise ProtocolError(f"unknown message type {kind!r}")
        if not _is_int(seq) and not (kind == ERROR and seq is None):
            raise ProtocolError(f"{kind} message needs an integer 'seq', got {seq!r}")
        if not isinstance(payload, dict):
            raise ProtocolError(f"{kind} message needs a map 'payload', got {type(payload).__name__}")
        _check_payload(kind, payload)
        timestamp = obj.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, (int, float)):
            raise ProtocolError(f"'timestamp' must be a number, got {type(timestamp).__name__}")
        return cls(kind, seq, payload, timestamp)

    def reply(self, kind: str, **payload: Any) -> "Message":
        """A reply of type ``kind`` that echoes this message's ``seq``."""
        return Message(kind, self.seq, payload)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_payload(kind: str, payload: dict[str, Any]) -> None:
    for key, expected in PAYLOAD_SCHEMA[kind].items():
        if key not in payload:
            raise ProtocolError(f"{kind} payload is missing {key!r}")
        if not isinstance(payload[key], expected):
            raise ProtocolError(f"{kind} payload {key!r} has type {type(payload[key]).__name__}")


def encode(message: Message, shm: codec.ArrayPlacer | None = None) -> bytes:
    """Serialize ``message`` (raises :class:`~vlaeval.harness.protocol.codec.CodecError`);
    ``shm``: the connection's shared-memory segment for large arrays (:mod:`.shm`)."""
    return codec.packb(message.to_wire(), shm)


def decode(data: bytes, max_bytes: int = codec.DEFAULT_MAX_BYTES, shm: codec.ArrayResolver | None = None) -> Message:
    """Parse and validate a frame (raises ``CodecError`` or :class:`ProtocolError`)."""
    return Message.from_wire(codec.unpackb(data, max_bytes, shm))


def peek_seq(data: Any) -> int | None:
    """Best-effort ``seq`` of a frame that failed to decode (arrays left undecoded)."""
    try:
        obj = msgpack.unpackb(data, raw=False)
    except Exception:  # any garbage: there is no seq to echo
        return None
    seq = obj.get("seq") if isinstance(obj, dict) else None
    return seq if _is_int(seq) else None


def error(seq: int | None, message: str, code: str, fatal: bool = False) -> Message:
    """An ERROR message with a one-line ``message``."""
    return Message(ERROR, seq, {"message": one_line(message), "code": code, "fatal": fatal})


def hello_request(seq: int, client: dict[str, Any]) -> Message:
    """The client's opening HELLO."""
    payload = {"protocol_version": PROTOCOL_VERSION, "harness_version": HARNESS_VERSION, "client": client}
    return Message(HELLO, seq, payload)


def hello_reply(request: Message, policy: dict[str, Any], fingerprint: str, server: dict[str, Any]) -> Message:
    """The server's HELLO answering ``request``."""
    return request.reply(
        HELLO,
        protocol_version=PROTOCOL_VERSION,
        harness_version=HARNESS_VERSION,
        policy=policy,
        fingerprint=fingerprint,
        server=server,
    )

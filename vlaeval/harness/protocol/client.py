"""Policy handles that talk to a policy server; they run inside simulator environments.

* :class:`RemotePolicyHandle` speaks the vlaeval protocol (:mod:`.messages`).
* :class:`OpenpiPolicyHandle` drives an existing openpi policy server (:mod:`.openpi`).
* :func:`connect_policy` picks one from the URL scheme; :func:`wait_for_health` polls
  ``http://host:port/health``.

Only the standard library, numpy, msgpack and websockets are imported.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Mapping

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from vlaeval.harness.policy import Observation, PolicyFailure, PolicyHandle, PolicySpec
from vlaeval.harness.protocol import messages, openpi
from vlaeval.harness.protocol.codec import DEFAULT_MAX_BYTES, CodecError, one_line
from vlaeval.harness.protocol.messages import Message, ProtocolError
from vlaeval.harness.protocol.shm import ShmWriter

# websockets >= 15 honours *_proxy environment variables; a policy server is always reached directly.
_NO_PROXY: dict[str, Any] = {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}


def _open_connection(
    url: str, timeout_s: float, retries: int, retry_delay_s: float, max_bytes: int
) -> ClientConnection:
    """Connect, retrying ``retries`` times; raise :class:`PolicyFailure` with a one-line reason."""
    attempt = 0
    while True:
        try:
            return connect(url, open_timeout=timeout_s, max_size=max_bytes, compression=None, **_NO_PROXY)
        except InvalidURI as exc:
            raise PolicyFailure(f"invalid policy server URL {url!r}: {one_line(exc)}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            if attempt >= retries:
                raise PolicyFailure(f"cannot reach policy server at {url}: {one_line(exc)}") from None
        attempt += 1
        time.sleep(retry_delay_s)


class _WebsocketHandle(PolicyHandle):
    """One synchronous websocket connection: send a frame, wait for the reply frame."""

    def __init__(self, url: str, timeout_s: float, connect_retries: int, retry_delay_s: float, max_message_bytes: int):
        self.url = url
        self.timeout_s = timeout_s
        self.max_message_bytes = max_message_bytes
        # Held as an entered context manager, the form every websockets >= 12 supports without warnings.
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection | None = self._stack.enter_context(
            _open_connection(url, timeout_s, connect_retries, retry_delay_s, max_message_bytes)
        )

    def _receive(self) -> bytes:
        """The next binary frame; a lost connection or timeout closes the handle and raises PolicyFailure."""
        try:
            data = self._live().recv(timeout=self.timeout_s)
            # Hand the GIL over once: the connection's reader thread still needs it to go back to
            # waiting on the socket; left waiting, it forces a GIL switch in the middle of the next
            # simulator step (1.5-2.3 % slower SimplerEnv steps in a micro-benchmark).
            time.sleep(0)
        except TimeoutError:
            self.close()  # a late reply would desynchronise the conversation
            raise PolicyFailure(f"no reply from policy server at {self.url} within {self.timeout_s:g}s") from None
        except ConnectionClosed as exc:
            raise self._lost(exc) from None
        if isinstance(data, str):  # openpi servers send a traceback as text before closing
            last_line = data.strip().splitlines()[-1] if data.strip() else "(empty)"
            raise PolicyFailure(f"policy server at {self.url} replied with text: {one_line(last_line)}")
        return data

    def _exchange(self, data: bytes, shared_bytes: int = 0) -> bytes:
        """Send one frame (plus ``shared_bytes`` of its arrays already in shared memory); return the reply frame."""
        size = len(data) + shared_bytes
        if size > self.max_message_bytes:
            raise PolicyFailure(f"request of {size} bytes exceeds the limit of {self.max_message_bytes} bytes")
        try:
            self._live().send(data)
        except ConnectionClosed as exc:
            raise self._lost(exc) from None
        return self._receive()

    def _live(self) -> ClientConnection:
        if self._ws is None:
            raise PolicyFailure(f"connection to policy server at {self.url} is closed")
        return self._ws

    def _lost(self, exc: ConnectionClosed) -> PolicyFailure:
        self.close()
        return PolicyFailure(f"lost connection to policy server at {self.url}: {one_line(exc)}")

    def close(self) -> None:
        self._ws = None
        self._stack.close()


class RemotePolicyHandle(_WebsocketHandle):
    """:class:`PolicyHandle` over the vlaeval protocol (``ws://`` / ``wss://``)."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 120.0,
        connect_retries: int = 3,
        retry_delay_s: float = 0.5,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        client_info: dict[str, Any] | None = None,
        shared_memory: bool = True,
    ):
        """``shared_memory``: offer the server a shared-memory segment for large arrays (used only
        when the server is on this host and maps it; ``VLAEVAL_SHM=0`` turns it off)."""
        super().__init__(url, timeout_s, connect_retries, retry_delay_s, max_message_bytes)
        self._seq = 0
        self._shm: ShmWriter | None = None  # set once the server has mapped our segment
        offered = ShmWriter.create(max_message_bytes) if shared_memory else None
        info = dict(client_info or {})
        if offered is not None:
            info["shm"] = offered.offer()
        try:
            self.server_info = self._hello(info)
        except PolicyFailure:
            if offered is not None:
                offered.close()
            self.close()
            raise
        finally:
            if offered is not None:
                offered.unlink()  # answered either way: nothing is left in /dev/shm if this process dies
        server = self.server_info.get("server") or {}
        if offered is not None:
            if server.get("shm") is True:
                self._shm = offered
            else:
                offered.close()
        self.max_message_bytes = min(max_message_bytes, int(server.get("max_message_bytes", max_message_bytes)))
        self._spec = PolicySpec.from_dict(self.server_info["policy"])

    @property
    def transport(self) -> str:
        """``shm`` when large arrays go through shared memory, else ``wire``."""
        return "shm" if self._shm is not None else "wire"

    def close(self) -> None:
        super().close()
        if self._shm is not None:
            self._shm.close()
            self._shm = None

    @property
    def fingerprint(self) -> str:
        """The server policy's fingerprint (from its HELLO)."""
        return str(self.server_info.get("fingerprint", ""))

    def spec(self) -> PolicySpec:
        return self._spec

    def start_episode(self, instruction: str, info: dict[str, Any]) -> None:
        self._request(messages.EPISODE_START, instruction=instruction, episode=info)

    def act(self, obs: Observation) -> np.ndarray:
        return self._request(messages.OBSERVATION, obs=obs).payload["action"]

    def end_episode(self, result: dict[str, Any]) -> None:
        self._request(messages.EPISODE_END, result=result)

    def _hello(self, client_info: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        reply = self._roundtrip(messages.hello_request(self._seq, client_info))
        version = reply.payload.get("protocol_version")
        if version != messages.PROTOCOL_VERSION:
            raise PolicyFailure(
                f"policy server at {self.url} speaks protocol version {version}, "
                f"this client speaks {messages.PROTOCOL_VERSION}"
            )
        if not isinstance(reply.payload.get("policy"), dict):
            raise PolicyFailure(f"policy server at {self.url} sent a HELLO without a policy spec")
        return reply.payload

    def _request(self, kind: str, **payload: Any) -> Message:
        self._seq += 1
        return self._roundtrip(Message(kind, self._seq, payload, timestamp=time.time()))

    def _roundtrip(self, request: Message) -> Message:
        """Send ``request``; return its reply, raising PolicyFailure for ERROR or a protocol breach."""
        try:
            if self._shm is not None:
                self._shm.begin_message()  # the previous request was answered: its arrays were copied out
            data = messages.encode(request, self._shm)
        except CodecError as exc:
            raise PolicyFailure(f"cannot encode {request.type}: {exc}") from None
        try:
            shared = self._shm.message_bytes if self._shm is not None else 0
            reply = messages.decode(self._exchange(data, shared), self.max_message_bytes)
        except (CodecError, ProtocolError) as exc:
            self.close()
            raise PolicyFailure(f"bad reply from policy server at {self.url}: {exc}") from None
        if reply.type == messages.ERROR and reply.seq in (request.seq, None):
            self._raise_error(reply)
        if reply.seq != request.seq or reply.type != messages.REPLY_TO[request.type]:
            self.close()
            raise PolicyFailure(
                f"policy server at {self.url} answered {request.type} #{request.seq} with {reply.type} #{reply.seq}"
            )
        return reply

    def _raise_error(self, reply: Message) -> None:
        if reply.payload["fatal"]:
            self.close()
        raise PolicyFailure(f"policy server error ({reply.payload['code']}): {reply.payload['message']}")


class OpenpiPolicyHandle(_WebsocketHandle):
    """:class:`PolicyHandle` driving an openpi policy server (openpi's wire, no episodes)."""

    def __init__(
        self,
        url: str,
        keys: Mapping[str, str] | None = None,
        action_dim: int = 7,
        chunk_size: int | None = None,
        timeout_s: float = 120.0,
        connect_retries: int = 3,
        retry_delay_s: float = 0.5,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
    ):
        """``keys`` maps openpi keys to vlaeval keys (default :data:`openpi.DEFAULT_KEYS`).

        Only mapped observation keys are sent. ``chunk_size`` defaults to the horizon of
        the first reply (1 before it).
        """
        super().__init__(url, timeout_s, connect_retries, retry_delay_s, max_message_bytes)
        self._to_openpi = openpi.inverse_keys(openpi.DEFAULT_KEYS if keys is None else keys)
        self._to_openpi.setdefault("instruction", "prompt")
        self._action_dim = action_dim
        self._chunk_size = chunk_size
        self._instruction = ""
        try:
            self.metadata = self._decode(self._receive())
        except PolicyFailure:
            self.close()
            raise

    def spec(self) -> PolicySpec:
        name = str(self.metadata.get("name", "openpi")) if isinstance(self.metadata, dict) else "openpi"
        return PolicySpec(action_dim=self._action_dim, chunk_size=self._chunk_size or 1, name=name)

    def start_episode(self, instruction: str, info: dict[str, Any]) -> None:
        self._instruction = instruction

    def act(self, obs: Observation) -> np.ndarray:
        request = openpi.rename_keys({"instruction": self._instruction, **obs}, self._to_openpi, keep_unmapped=False)
        try:
            data = openpi.packb(request)
        except CodecError as exc:
            raise PolicyFailure(f"cannot encode observation for openpi: {exc}") from None
        reply = self._decode(self._exchange(data))
        if not isinstance(reply, dict) or "actions" not in reply:
            detail = reply.get("error") if isinstance(reply, dict) else None
            raise PolicyFailure(f"openpi server at {self.url} returned no actions: {one_line(detail or reply)}")
        actions = np.asarray(reply["actions"])
        if self._chunk_size is None and actions.ndim == 2:
            self._chunk_size = int(actions.shape[0])
        return actions

    def end_episode(self, result: dict[str, Any]) -> None:
        self._instruction = ""

    def _decode(self, data: bytes) -> Any:
        try:
            return openpi.unpackb(data, self.max_message_bytes)
        except CodecError as exc:
            raise PolicyFailure(f"bad reply from openpi server at {self.url}: {exc}") from None


def connect_policy(url: str, **kwargs: Any) -> PolicyHandle:
    """``ws://``/``wss://`` -> :class:`RemotePolicyHandle`; ``openpi://host:port`` -> :class:`OpenpiPolicyHandle`."""
    scheme, rest = _split_scheme(url)
    factories: dict[str, Callable[..., PolicyHandle]] = {
        "ws": RemotePolicyHandle,
        "wss": RemotePolicyHandle,
        "openpi": lambda u, **kw: OpenpiPolicyHandle(f"ws://{rest}", **kw),
    }
    if scheme not in factories:
        raise PolicyFailure(f"unsupported policy URL {url!r} (expected ws://, wss:// or openpi://)")
    return factories[scheme](url, **kwargs)


def health_url(url: str) -> str:
    """``http(s)://host:port/health`` for a ``ws://``, ``wss://`` or ``openpi://`` policy URL."""
    scheme, rest = _split_scheme(url)
    netloc = urllib.parse.urlsplit(f"//{rest}").netloc
    return f"{'https' if scheme == 'wss' else 'http'}://{netloc}/health"


def wait_for_health(url: str, timeout_s: float = 60.0, interval_s: float = 0.2) -> None:
    """Poll the server's ``/health`` until it answers 200; raise :class:`PolicyFailure` after ``timeout_s``."""
    target = health_url(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with opener.open(target, timeout=max(interval_s, 1.0)) as response:
                if response.status == 200:
                    return
                reason = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            reason = one_line(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            raise PolicyFailure(f"policy server at {target} not healthy after {timeout_s:g}s: {reason}")
        time.sleep(interval_s)


def _split_scheme(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise PolicyFailure(f"policy URL {url!r} has no scheme (expected ws://, wss:// or openpi://)")
    return scheme.lower(), rest

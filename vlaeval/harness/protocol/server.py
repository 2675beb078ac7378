"""Serve a :class:`~vlaeval.harness.policy.Policy` over websockets, batching across connections.

Each connection is one session (one episode at a time). OBSERVATION requests from all
connections go through one queue: a batcher collects up to ``max_batch`` of them, or
whatever arrived within ``max_wait_ms`` of the first, and hands them to a single
inference thread (policies need not be thread-safe: every policy call runs there).

Errors are per request: a bad frame, a missing episode, a policy exception or an
invalid action gets an ERROR reply and the connection keeps serving. In ``openpi``
mode the server speaks openpi's wire instead (see :mod:`.openpi`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import http
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal

import numpy as np

from vlaeval import __version__
from vlaeval.harness.policy import ActionError, Observation, Policy, as_action_chunk
from vlaeval.harness.protocol import messages, openpi
from vlaeval.harness.protocol.codec import DEFAULT_MAX_BYTES, CodecError, one_line
from vlaeval.harness.protocol.messages import ErrorCode, Message, ProtocolError
from vlaeval.harness.protocol.shm import ShmReader

try:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response
except ImportError as exc:  # websockets < 13
    raise ImportError("PolicyServer needs websockets>=13 (websockets.asyncio.server)") from exc

logger = logging.getLogger(__name__)

Mode = Literal["vlaeval", "openpi"]
HEALTH_PATHS = ("/health", "/healthz")


@dataclass
class _Session:
    """One connection's episode state."""

    peer: str
    state: Any = None
    active: bool = False
    instruction: str | None = None
    shm: ShmReader | None = None  # the client's shared-memory segment, when it offered one we can map

    def close_shm(self) -> None:
        if self.shm is not None:
            self.shm.close()
            self.shm = None


@dataclass
class _Pending:
    """An OBSERVATION waiting for the batcher."""

    state: Any
    obs: Observation
    future: asyncio.Future[tuple[np.ndarray, int]] = field(repr=False)


class PolicyServer:
    """Websocket server for one policy; see the module docstring."""

    def __init__(
        self,
        policy: Policy,
        host: str = "127.0.0.1",
        port: int = 0,
        max_batch: int = 1,
        max_wait_ms: float = 2.0,
        mode: Mode = "vlaeval",
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        openpi_keys: dict[str, str] | None = None,
        shared_memory: bool = True,
    ):
        """``shared_memory``: accept same-host clients' shared-memory segments for large arrays."""
        if mode not in ("vlaeval", "openpi"):
            raise ValueError(f"unknown server mode {mode!r} (expected 'vlaeval' or 'openpi')")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.policy = policy
        self.host, self.port = host, port
        self.max_batch, self.max_wait_s = max_batch, max_wait_ms / 1000.0
        self.mode = mode
        self.max_message_bytes = max_message_bytes
        self.shared_memory = shared_memory
        self.openpi_keys = dict(openpi.DEFAULT_KEYS if openpi_keys is None else openpi_keys)
        self._spec = policy.spec()
        self._fingerprint = policy.fingerprint()
        self._stats = {"connections": 0, "requests": 0, "errors": 0, "forward_calls": 0, "batches": 0}
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._handlers: dict[str, Callable[[_Session, Message], Awaitable[Message]]] = {
            messages.HELLO: self._on_hello,
            messages.EPISODE_START: self._on_episode_start,
            messages.OBSERVATION: self._on_observation,
            messages.EPISODE_END: self._on_episode_end,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``ws://host:port`` to connect to (loopback when bound to all interfaces)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self.port}"

    @property
    def stats(self) -> dict[str, int]:
        """Counters: connections, requests (frames received), errors (ERROR replies),
        forward_calls (calls into act/act_batch), batches (OBSERVATION batches run)."""
        return dict(self._stats)

    async def serve(self) -> None:
        """Listen until :meth:`stop` is called."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._queue = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vlaeval-policy")
        try:
            async with serve(
                self._handle,
                self.host,
                self.port,
                process_request=self._process_request,
                max_size=self.max_message_bytes,
                compression=None,
            ) as server:
                self.port = server.sockets[0].getsockname()[1]
                logger.info("policy server (%s mode) listening on %s", self.mode, self.url)
                batcher = asyncio.create_task(self._batch_loop())
                self._ready.set()
                await self._stop_event.wait()
            batcher.cancel()
        finally:
            self._executor.shutdown(wait=False)

    def start_in_thread(self, timeout_s: float = 30.0) -> tuple[str, int]:
        """Serve from a daemon thread with its own event loop; return ``(host, port)`` once listening."""
        self._thread = threading.Thread(target=self._run_thread, name="vlaeval-policy-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._startup_error is not None:
            raise RuntimeError(f"policy server failed to start: {one_line(self._startup_error or 'timeout')}")
        return self.host, self.port

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving (callable from any thread); joins the server thread if there is one."""
        if self._loop is not None and self._stop_event is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run_thread(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException as exc:  # reported to start_in_thread's caller
            self._startup_error = exc
            logger.exception("policy server stopped with an error")
        finally:
            self._ready.set()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?")[0] in HEALTH_PATHS:
            return connection.respond(http.HTTPStatus.OK, "OK")
        return None

    # ---------------------------------------------------------------- connections

    async def _handle(self, ws: ServerConnection) -> None:
        session = _Session(peer=str(ws.remote_address))
        self._stats["connections"] += 1
        logger.debug("connection from %s", session.peer)
        on_frame = self._on_vlaeval_frame if self.mode == "vlaeval" else self._on_openpi_frame
        try:
            if self.mode == "openpi":
                await ws.send(openpi.packb({"vlaeval": __version__, "policy": self._spec.to_dict()}))
            async for frame in ws:
                self._stats["requests"] += 1
                await ws.send(await on_frame(session, frame))
        except ConnectionClosed as exc:
            logger.debug("connection from %s closed: %s", session.peer, exc)
        finally:
            with contextlib.suppress(ProtocolError):  # already logged by _call_policy
                await self._end_episode(session, {"status": "disconnected"})
            session.close_shm()

    async def _on_vlaeval_frame(self, session: _Session, frame: Any) -> bytes:
        try:
            request = messages.decode(frame, self.max_message_bytes, session.shm)
        except (CodecError, ProtocolError) as exc:
            return self._error(messages.peek_seq(frame), exc)
        try:
            handler = self._handlers.get(request.type)
            if handler is None:
                raise ProtocolError(f"{request.type} is not a request a client may send")
            return messages.encode(await handler(session, request))
        except (CodecError, ProtocolError) as exc:
            return self._error(request.seq, exc)

    def _error(self, seq: int | None, exc: CodecError | ProtocolError) -> bytes:
        code = exc.code if isinstance(exc, ProtocolError) else ErrorCode.BAD_FRAME
        fatal = isinstance(exc, ProtocolError) and exc.fatal
        self._stats["errors"] += 1
        logger.warning("request %s failed (%s): %s", seq, code, exc)
        return messages.encode(messages.error(seq, str(exc), code, fatal))

    async def _on_hello(self, session: _Session, request: Message) -> Message:
        version = request.payload["protocol_version"]
        if version != messages.PROTOCOL_VERSION:
            raise ProtocolError(
                f"protocol version mismatch: client speaks {version}, server speaks {messages.PROTOCOL_VERSION}",
                ErrorCode.VERSION_MISMATCH,
                fatal=True,
            )
        client = request.payload.get("client")
        offer = client.get("shm") if isinstance(client, dict) else None
        if offer is not None and self.shared_memory:
            session.close_shm()
            session.shm = ShmReader.accept(offer, self.max_message_bytes)
        server = {"mode": self.mode, "max_batch": self.max_batch, "max_message_bytes": self.max_message_bytes,
                  "shm": session.shm is not None}
        return messages.hello_reply(request, self._spec.to_dict(), self._fingerprint, server)

    async def _on_episode_start(self, session: _Session, request: Message) -> Message:
        await self._end_episode(session, {"status": "abandoned"})
        await self._start_episode(session, request.payload["instruction"], request.payload["episode"])
        return request.reply(messages.EPISODE_STARTED)

    async def _on_observation(self, session: _Session, request: Message) -> Message:
        if not session.active:
            raise ProtocolError("OBSERVATION before EPISODE_START", ErrorCode.NO_EPISODE)
        action, batch_size = await self._infer(session, request.payload["obs"])
        return request.reply(messages.ACTION, action=action, batch_size=batch_size)

    async def _on_episode_end(self, session: _Session, request: Message) -> Message:
        if not session.active:
            raise ProtocolError("EPISODE_END without a running episode", ErrorCode.NO_EPISODE)
        await self._end_episode(session, request.payload["result"])
        return request.reply(messages.EPISODE_ENDED)

    async def _on_openpi_frame(self, session: _Session, frame: Any) -> bytes:
        started = time.perf_counter()
        try:
            raw = openpi.unpackb(frame, self.max_message_bytes)
            if not isinstance(raw, dict):
                raise ProtocolError(f"openpi frame must be a map of observations, got {type(raw).__name__}")
            obs = openpi.rename_keys(raw, self.openpi_keys, keep_unmapped=True)
            await self._ensure_openpi_episode(session, str(obs.get("instruction", "")))
            action, batch_size = await self._infer(session, obs)
        except (CodecError, ProtocolError) as exc:
            self._stats["errors"] += 1
            logger.warning("openpi request failed: %s", one_line(exc))
            return openpi.packb({"error": one_line(exc)})
        timing = {"infer_ms": (time.perf_counter() - started) * 1000.0, "batch_size": batch_size}
        return openpi.packb({"actions": action, "server_timing": timing})

    async def _ensure_openpi_episode(self, session: _Session, instruction: str) -> None:
        """openpi has no episodes: start one on the first frame and whenever the prompt changes."""
        if session.active and session.instruction == instruction:
            return
        await self._end_episode(session, {"status": "prompt_changed"})
        await self._start_episode(session, instruction, {"source": "openpi"})

    # ------------------------------------------------------------ policy calls

    async def _call_policy(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a policy method on the inference thread; exceptions become ProtocolError."""
        assert self._loop is not None
        try:
            return await self._loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except Exception as exc:
            logger.exception("policy %s raised", getattr(fn, "__name__", fn))
            raise _policy_error(exc) from None

    async def _start_episode(self, session: _Session, instruction: str, info: dict[str, Any]) -> None:
        session.state = await self._call_policy(self.policy.start_episode, instruction, info)
        session.active, session.instruction = True, instruction

    async def _end_episode(self, session: _Session, result: dict[str, Any]) -> None:
        if not session.active:
            return
        session.active = False
        try:
            await self._call_policy(self.policy.end_episode, session.state, result)
        finally:
            session.state = None

    async def _infer(self, session: _Session, obs: Observation) -> tuple[np.ndarray, int]:
        assert self._loop is not None and self._queue is not None
        future: asyncio.Future[tuple[np.ndarray, int]] = self._loop.create_future()
        await self._queue.put(_Pending(session.state, obs, future))
        return await future

    async def _batch_loop(self) -> None:
        assert self._loop is not None and self._queue is not None
        while True:
            batch = await self._collect_batch()
            try:
                outcomes = await self._loop.run_in_executor(self._executor, self._run_batch, batch)
            except Exception as exc:  # a failure outside the policy must not stop the batcher
                logger.exception("batch of %d requests failed", len(batch))
                outcomes = [_policy_error(exc)] * len(batch)
            for pending, outcome in zip(batch, outcomes):
                if pending.future.done():
                    continue
                if isinstance(outcome, Exception):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result((outcome, len(batch)))

    async def _collect_batch(self) -> list[_Pending]:
        """Up to ``max_batch`` requests: the first, plus whatever arrives within ``max_wait``."""
        assert self._loop is not None and self._queue is not None
        batch = [await self._queue.get()]
        deadline = self._loop.time() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    def _run_batch(self, batch: list[_Pending]) -> list[np.ndarray | ProtocolError]:
        """On the inference thread: one act_batch call when it pays, else one act per request."""
        self._stats["batches"] += 1
        if len(batch) == 1 or not self.policy.supports_batching:
            return [_outcome(self._act_one, p) for p in batch]
        try:
            actions = self._act_batch(batch)
        except ProtocolError as exc:
            return [exc] * len(batch)
        return [_outcome(self._check_action, a) for a in actions]

    def _act_batch(self, batch: list[_Pending]) -> list[Any]:
        actions = self._forward(self.policy.act_batch, [p.state for p in batch], [p.obs for p in batch])
        try:
            actions = list(actions)
        except TypeError:
            message = f"act_batch returned {type(actions).__name__}, not a sequence"
            raise ProtocolError(message, ErrorCode.POLICY_ERROR) from None
        if len(actions) != len(batch):
            message = f"act_batch returned {len(actions)} actions for {len(batch)} observations"
            raise ProtocolError(message, ErrorCode.POLICY_ERROR)
        return actions

    def _act_one(self, pending: _Pending) -> np.ndarray:
        return self._check_action(self._forward(self.policy.act, pending.state, pending.obs))

    def _forward(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call act/act_batch, counting the call; an exception becomes ProtocolError."""
        self._stats["forward_calls"] += 1
        try:
            return fn(*args)
        except Exception as exc:
            logger.exception("policy %s raised", fn.__name__)
            raise _policy_error(exc) from None

    def _check_action(self, action: Any) -> np.ndarray:
        try:
            return as_action_chunk(action, self._spec.output_dim)
        except ActionError as exc:
            raise ProtocolError(f"policy returned an invalid action: {exc}", ErrorCode.BAD_ACTION) from None


def _outcome(fn: Callable[..., np.ndarray], *args: Any) -> np.ndarray | ProtocolError:
    try:
        return fn(*args)
    except ProtocolError as exc:
        return exc


def _policy_error(exc: Exception) -> ProtocolError:
    return ProtocolError(f"policy raised {type(exc).__name__}: {one_line(exc)}", ErrorCode.POLICY_ERROR)

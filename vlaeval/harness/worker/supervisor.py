"""Launch, health-check and supervise one sim worker process.

The driver holds a :class:`WorkerProcess` per worker slot. A watchdog kills a worker
that stays silent longer than ``watchdog_s`` (a hung simulator); a dead worker raises
:class:`WorkerDied`, and the executor decides whether to retry on a fresh one.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vlaeval
from vlaeval.harness.recording import Recording
from vlaeval.harness.specs import EpisodeResult, EpisodeSpec
from vlaeval.harness.worker.channel import Channel, ChannelClosed, ChannelError

_PR_SET_PDEATHSIG = 1
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""A simulator step multiplies tiny matrices: BLAS thread pools in a worker only spin, on the
CPUs the renderer (lavapipe, MuJoCo) needs; so workers default to one BLAS thread."""


def apply_sim_process_defaults(env: dict[str, str]) -> dict[str, str]:
    """Set, unless already set, the process settings every simulator process gets (see :data:`BLAS_THREAD_VARS`)."""
    for var in BLAS_THREAD_VARS:  # unless the user or the config chose otherwise
        env.setdefault(var, "1")
    return env


class WorkerDied(RuntimeError):
    """The worker process crashed, hung, or failed an episode with an exception."""


@dataclass
class WorkerConfig:
    """How to start a worker: which interpreter, which backend, which policy."""

    python: str
    backend: str
    policy_url: str
    options: dict[str, Any] = field(default_factory=dict)
    policy_options: dict[str, Any] = field(default_factory=dict)
    extra_pythonpath: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 600.0
    watchdog_s: float = 300.0
    log_dir: str | None = None


def worker_environment(config: WorkerConfig) -> dict[str, str]:
    """The worker's environment: ours plus ``config.env``, vlaeval importable, one BLAS thread by default."""
    source_root = str(Path(vlaeval.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env.update(config.env)
    env["PYTHONPATH"] = os.pathsep.join([source_root, *config.extra_pythonpath, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return apply_sim_process_defaults(env)


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL the worker when the driver dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class WorkerProcess:
    def __init__(self, config: WorkerConfig, name: str = "worker"):
        self.config = config
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._inbox: queue.Queue[dict[str, Any] | BaseException] = queue.Queue()
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._channel: Channel | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> dict[str, Any]:
        """Start the process and wait for its ``ready`` message (the health check)."""
        if self.process is not None:
            self.kill()
            self._release()
        env = worker_environment(self.config)
        self.process = subprocess.Popen(
            [self.config.python, "-m", "vlaeval.harness.worker.main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._inbox = queue.Queue()
        self._channel = Channel(self.process.stdout, self.process.stdin)  # type: ignore[arg-type]
        # each reader feeds the inbox of its own process, never a successor's
        threading.Thread(target=self._read_loop, args=(self._channel, self._inbox), daemon=True).start()
        threading.Thread(target=self._stderr_loop, args=(self.process,), daemon=True).start()
        self._send(
            {
                "type": "init",
                "backend": self.config.backend,
                "options": self.config.options,
                "policy_url": self.config.policy_url,
                "policy_options": self.config.policy_options,
            }
        )
        reply = self._wait_for({"ready"}, self.config.startup_timeout_s, "start")
        self.info = reply
        return reply

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self._send({"type": "shutdown"})
                self.process.wait(timeout=timeout_s)
            except (OSError, WorkerDied, subprocess.TimeoutExpired):
                self.kill()
        self._release()

    def _release(self) -> None:
        """Forget an exited process, closing our ends of its pipes."""
        if self.process is not None:
            for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- work --------------------------------------------------------------
    def run_episode(self, episode: EpisodeSpec, recording: Recording | None = None) -> EpisodeResult:
        """Run one episode; raise :class:`WorkerDied` on crash, hang or sim exception."""
        if not self.alive():
            self.start()
        recording = recording or Recording()
        self._send({"type": "run", "episode": episode.to_dict(), "recording": recording.to_dict()})
        reply = self._wait_for({"result", "episode_error"}, self.config.watchdog_s, "episode")
        if reply["type"] == "episode_error":
            raise WorkerDied(f"simulator error: {reply['error']}")
        if "backend" in reply:
            self.info["backend"] = reply["backend"]
        return EpisodeResult.from_dict(reply["result"])

    # -- plumbing -------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        assert self._channel is not None
        try:
            self._channel.send(message)
        except (BrokenPipeError, OSError):
            raise WorkerDied(self._death_reason()) from None

    def _wait_for(self, kinds: set[str], silence_s: float, what: str) -> dict[str, Any]:
        """Wait for a message of ``kinds``; any heartbeat resets the watchdog."""
        while True:
            try:
                message = self._inbox.get(timeout=silence_s)
            except queue.Empty:
                self.kill()
                raise WorkerDied(f"watchdog: worker silent for {silence_s:.0f} s during {what}; killed") from None
            if isinstance(message, BaseException):
                raise WorkerDied(self._death_reason()) from None
            kind = message.get("type")
            if kind in kinds:
                return message
            if kind == "fatal":
                self.kill()
                raise WorkerDied(f"worker failed: {message.get('error')}")
            # heartbeats and anything else just prove the worker is alive

    def _death_reason(self) -> str:
        if self.process is not None:
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
                code = self.process.returncode
            tail = " | ".join(line for line in list(self._stderr_tail)[-3:] if line)
            return f"worker {_signal_name(code)}" + (f" (stderr: {tail})" if tail else "")
        return "worker not running"

    @staticmethod
    def _read_loop(channel: Channel, inbox: queue.Queue[dict[str, Any] | BaseException]) -> None:
        while True:
            try:
                inbox.put(channel.recv())
            except (ChannelClosed, ChannelError, OSError, ValueError) as exc:
                inbox.put(exc)
                return

    def _stderr_loop(self, process: subprocess.Popen[bytes]) -> None:
        log_file = None
        if self.config.log_dir:
            Path(self.config.log_dir).mkdir(parents=True, exist_ok=True)
            log_file = open(Path(self.config.log_dir) / f"{self.name}.log", "ab")
        try:
            assert process.stderr is not None
            for raw in process.stderr:
                if log_file:
                    log_file.write(raw)
                    log_file.flush()
                self._stderr_tail.append(raw.decode(errors="replace").rstrip())
        except (OSError, ValueError):  # the pipe was closed under us: the process is gone
            pass
        finally:
            if log_file:
                log_file.close()


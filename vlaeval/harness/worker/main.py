"""Sim worker process: ``python -m vlaeval.harness.worker.main``.

Runs in a simulator's own environment. It reads control messages from stdin and writes
replies to the original stdout; anything the simulator prints goes to stderr. The
first message is ``init`` (backend class, options, policy URL); then ``run`` messages,
each answered by ``heartbeat`` messages while stepping and one ``result``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from typing import Any

from vlaeval.harness.backend import SimBackend, make_backend
from vlaeval.harness.episode import run_recorded_episode
from vlaeval.harness.policy import PolicyHandle
from vlaeval.harness.recording import Recording
from vlaeval.harness.specs import EpisodeSpec
from vlaeval.harness.worker.channel import Channel, ChannelClosed

HEARTBEAT_INTERVAL_S = 1.0
log = logging.getLogger("vlaeval.worker")


def _take_control_channel() -> Channel:
    """Keep the real stdout for control frames; route fd 1 to stderr for stray prints."""
    control_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return Channel(sys.stdin.buffer, control_out)


class Worker:
    def __init__(self, channel: Channel, init: dict[str, Any]):
        from vlaeval.harness.protocol.client import connect_policy

        self.channel = channel
        self.backend: SimBackend = make_backend(init["backend"], init.get("options") or {})
        self.policy: PolicyHandle = connect_policy(init["policy_url"], **(init.get("policy_options") or {}))

    def describe(self) -> dict[str, Any]:
        """The backend's description plus how observations reach the policy (``shm`` or ``wire``)."""
        return {**self.backend.describe(), "policy_transport": getattr(self.policy, "transport", "wire")}

    def run(self, message: dict[str, Any]) -> dict[str, Any]:
        episode = EpisodeSpec.from_dict(message["episode"])
        last_beat = [0.0]

        def heartbeat(step: int) -> None:
            now = time.monotonic()
            if now - last_beat[0] >= HEARTBEAT_INTERVAL_S:
                last_beat[0] = now
                self.channel.send({"type": "heartbeat", "step": step})

        recording = Recording.from_dict(message.get("recording"))
        result = run_recorded_episode(self.backend, self.policy, episode, recording, on_step=heartbeat)
        return result.to_dict()

    def close(self) -> None:
        for closer in (self.policy.close, self.backend.close):
            try:
                closer()
            except Exception:  # closing must not hide the real outcome
                log.debug("close failed", exc_info=True)


def serve(channel: Channel) -> int:
    init = channel.recv()
    if init.get("type") != "init":
        channel.send({"type": "fatal", "error": f"expected init, got {init.get('type')!r}"})
        return 2
    try:
        worker = Worker(channel, init)
    except Exception as exc:
        channel.send({"type": "fatal", "error": f"{type(exc).__name__}: {exc}"})
        return 2
    channel.send({"type": "ready", "pid": os.getpid(), "backend": worker.describe(),
                  "python": sys.version.split()[0]})
    described = False
    try:
        while True:
            message = channel.recv()
            kind = message["type"]
            if kind == "shutdown":
                return 0
            if kind == "ping":
                channel.send({"type": "pong"})
            elif kind == "run":
                try:
                    reply = {"type": "result", "result": worker.run(message)}
                    if not described:  # after the first episode the renderer is known
                        reply["backend"] = worker.describe()
                        described = True
                    channel.send(reply)
                except Exception as exc:
                    traceback.print_exc()
                    channel.send({"type": "episode_error", "error": f"{type(exc).__name__}: {exc}"})
            else:
                channel.send({"type": "fatal", "error": f"unknown control message {kind!r}"})
    except ChannelClosed:
        return 0
    finally:
        worker.close()


def main() -> int:
    logging.basicConfig(level=os.environ.get("VLAEVAL_WORKER_LOG", "WARNING"), stream=sys.stderr)
    return serve(_take_control_channel())


if __name__ == "__main__":
    sys.exit(main())

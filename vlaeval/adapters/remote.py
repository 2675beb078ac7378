"""Adapters for policies served elsewhere: a vlaeval policy server or an openpi server.

Each episode gets its own connection (its handle is the per-episode state), so a
remote server sees concurrent episodes as concurrent sessions and can batch them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from vlaeval.harness.policy import Observation, Policy, PolicyHandle, PolicySpec
from vlaeval.harness.protocol.client import OpenpiPolicyHandle, RemotePolicyHandle


class _HandlePolicy(Policy):
    """A :class:`Policy` whose episodes are :class:`PolicyHandle` connections."""

    def __init__(self, url: str, **options: Any):
        self.url = url
        self.options = options
        probe = self._connect()
        try:
            self._spec = probe.spec()
            self._server_fingerprint = self._describe(probe)
        finally:
            probe.close()

    def _connect(self) -> PolicyHandle:
        raise NotImplementedError

    def _describe(self, handle: Any) -> str:
        """What identifies the served weights/config."""
        raise NotImplementedError

    def spec(self) -> PolicySpec:
        return self._spec

    def fingerprint(self) -> str:
        return f"{self.name}:{self._server_fingerprint}"

    def start_episode(self, instruction: str, info: dict[str, Any]) -> PolicyHandle:
        handle = self._connect()
        try:
            handle.start_episode(instruction, info)
        except BaseException:
            handle.close()
            raise
        return handle

    def act(self, state: PolicyHandle, obs: Observation) -> np.ndarray:
        return state.act(obs)

    def end_episode(self, state: PolicyHandle, result: dict[str, Any]) -> None:
        try:
            state.end_episode(result)
        finally:
            state.close()


class RemotePolicy(_HandlePolicy):
    """A policy behind a vlaeval :class:`~vlaeval.harness.protocol.server.PolicyServer` (``ws://``)."""

    name = "remote"

    def _connect(self) -> RemotePolicyHandle:
        return RemotePolicyHandle(self.url, **self.options)

    def _describe(self, handle: RemotePolicyHandle) -> str:
        return handle.fingerprint


class OpenpiRemotePolicy(_HandlePolicy):
    """A policy behind an openpi server (``ws://host:port``); options as for :class:`OpenpiPolicyHandle`."""

    name = "openpi"

    def _connect(self) -> OpenpiPolicyHandle:
        return OpenpiPolicyHandle(self.url.replace("openpi://", "ws://", 1), **self.options)

    def _describe(self, handle: OpenpiPolicyHandle) -> str:
        # openpi servers publish no fingerprint: identify them by URL and metadata.
        metadata = json.dumps(handle.metadata, sort_keys=True, default=repr)
        return f"{handle.url}:{hashlib.sha256(metadata.encode()).hexdigest()[:16]}"

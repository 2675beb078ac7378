"""``oracle``: privileged scripted policies, one per suite family.

The policy asks the harness for privileged simulator state (``observation_keys``
contains ``"privileged"``) and, at the start of each episode, picks the oracle of
the episode's suite. Only LIBERO has one for now.

With ``VLAEVAL_ORACLE_LOG=<file>`` (or ``--model-arg log=<file>``) every finished
episode appends one JSON line: the episode's identity, its status, and the oracle's
own account (plan steps, missed grasps, the phase it was in, why it gave up).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import numpy as np

from vlaeval.harness.policy import Observation, Policy, PolicySpec

ORACLE_VERSION = "1"


class OracleUnavailable(ValueError):
    """The episode's suite has no scripted oracle."""


def _family(info: dict[str, Any]) -> str:
    benchmark = str((info.get("protocol") or {}).get("benchmark") or "")
    suite = str(info.get("suite") or "")
    for name in (benchmark, suite):
        if name.replace("-", "_").startswith("libero"):
            return "libero"
        if name.startswith("simpler"):
            return "simpler"
    return suite or benchmark or "?"


class OraclePolicy(Policy):
    """Scripted oracle reading privileged state; deterministic."""

    name = "oracle"

    def __init__(self, log: str | None = None):
        self.log_path = log or os.environ.get("VLAEVAL_ORACLE_LOG") or None
        self._lock = threading.Lock()

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, chunk_size=1, gripper="close_positive", gripper_range=(-1.0, 1.0),
                          observation_keys=("privileged",), name=self.name)

    def fingerprint(self) -> str:
        from vlaeval.suites.libero import oracle as libero_oracle

        return f"oracle(v={ORACLE_VERSION},libero={libero_oracle.VERSION})"

    def start_episode(self, instruction: str, info: dict[str, Any]) -> Any:
        family = _family(info)
        if family == "libero":
            from vlaeval.suites.libero.oracle import LiberoOracle

            return LiberoOracle(instruction, info)
        raise OracleUnavailable(
            f"no scripted oracle for suite {info.get('suite')!r} (oracles exist for: libero-*)"
        )

    def act(self, state: Any, obs: Observation) -> np.ndarray:
        if state is None:
            raise OracleUnavailable("act() before start_episode()")
        priv = obs.get("privileged")
        if not priv:
            raise OracleUnavailable("the oracle needs obs['privileged'] (the backend sent none)")
        return state.act(priv)

    def end_episode(self, state: Any, result: dict[str, Any]) -> None:
        if not self.log_path or state is None:
            return
        info = getattr(state, "info", {}) or {}
        record = {
            "suite": info.get("suite"), "benchmark": (info.get("protocol") or {}).get("benchmark"),
            "task_id": info.get("task_id"), "task_index": info.get("task_index"),
            "episode_index": info.get("episode_index"), "seed": info.get("seed"),
            "status": result.get("status"), "success": result.get("success"), "steps": result.get("steps"),
            "phase": getattr(state, "phase", None), "failure": getattr(state, "failure", None),
            "plan_done": getattr(state, "done", None), "log": list(getattr(state, "log", [])),
        }
        with self._lock, open(self.log_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


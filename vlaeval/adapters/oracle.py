"""``oracle``: privileged scripted policies, one per suite family.

The policy asks the harness for privileged simulator state (``observation_keys``
contains ``"privileged"``) and, at the start of each episode, picks the oracle of
the episode's suite: LIBERO (:mod:`vlaeval.suites.libero.oracle`) and SimplerEnv
(:mod:`vlaeval.suites.simpler.oracle`, every ``simpler-*`` suite).

With ``VLAEVAL_ORACLE_LOG=<file>`` (or ``--model-arg log=<file>``) every finished
episode appends one JSON line: the episode's identity, its status, and the oracle's
own account (plan steps, missed grasps, the phase it was in, why it gave up).

Multi-subtask episodes (SimplerEnv's drawer + apple): when the instruction changes the
harness ends the policy's episode with status ``subtask_changed`` and starts it again on
the new instruction, as upstream evaluators reset a learned policy. A scripted plan must
not start over (it would let go of what it carries), so the oracle's state is kept and
handed back to that restart; only the episode's real end is logged.
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
        self._continuing: dict[tuple[Any, ...], Any] = {}  # episode -> its state across a subtask change

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, chunk_size=1, gripper="close_positive", gripper_range=(-1.0, 1.0),
                          observation_keys=("privileged",), name=self.name)

    def fingerprint(self) -> str:
        from vlaeval.suites.libero import oracle as libero_oracle
        from vlaeval.suites.simpler import oracle as simpler_oracle

        return f"oracle(v={ORACLE_VERSION},libero={libero_oracle.VERSION},simpler={simpler_oracle.VERSION})"

    @staticmethod
    def _episode_key(info: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(info.get(k) for k in ("suite", "task_id", "task_index", "episode_index", "seed"))

    def start_episode(self, instruction: str, info: dict[str, Any]) -> Any:
        if info.get("subtask"):  # the same episode, on its next instruction: carry on with the plan
            with self._lock:
                state = self._continuing.pop(self._episode_key(info), None)
            if state is not None:
                if hasattr(state, "log"):
                    state.log.append(f"instruction changed (subtask {info['subtask']}): {instruction!r}")
                return state
        family = _family(info)
        if family == "libero":
            from vlaeval.suites.libero.oracle import LiberoOracle

            return LiberoOracle(instruction, info)
        if family == "simpler":
            from vlaeval.suites.simpler.oracle import SimplerOracle

            return SimplerOracle(instruction, info)
        raise OracleUnavailable(
            f"no scripted oracle for suite {info.get('suite')!r} (oracles exist for: libero-*, simpler-*)"
        )

    def act(self, state: Any, obs: Observation) -> np.ndarray:
        if state is None:
            raise OracleUnavailable("act() before start_episode()")
        priv = obs.get("privileged")
        if not priv:
            raise OracleUnavailable("the oracle needs obs['privileged'] (the backend sent none)")
        return state.act(priv)

    def end_episode(self, state: Any, result: dict[str, Any]) -> None:
        if state is None:
            return
        info = getattr(state, "info", {}) or {}
        if result.get("status") == "subtask_changed":
            with self._lock:
                self._continuing[self._episode_key(info)] = state
            return
        if not self.log_path:
            return
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


"""``replay``: play back recorded actions from a file, one sequence per episode.

The file is ``.npy`` (one ``(T, D)`` array used for every episode) or ``.npz`` whose
keys are ``"<task_id>/<episode_index>"`` (or ``"<task_index>/<episode_index>"``, or
``"default"``). After the sequence ends the last action repeats. Loaded with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from vlaeval.harness.policy import Observation, Policy, PolicySpec


class ReplayPolicy(Policy):
    name = "replay"

    def __init__(self, path: str):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"replay file not found: {self.path}")
        try:
            loaded = np.load(self.path, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"cannot read replay file {self.path}: {exc}") from None
        self.sequences: dict[str, np.ndarray] = (
            {"default": loaded} if isinstance(loaded, np.ndarray) else {k: loaded[k] for k in loaded.files}
        )
        dims = {seq.shape[-1] for seq in self.sequences.values()}
        if len(dims) != 1 or any(seq.ndim != 2 for seq in self.sequences.values()):
            raise ValueError(f"replay file {self.path} must hold (T, D) arrays of one action dimension")
        self.action_dim = dims.pop()
        self._digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=self.action_dim, name=self.name)

    def fingerprint(self) -> str:
        return f"replay({self._digest})"

    def start_episode(self, instruction: str, info: dict[str, Any]) -> dict[str, Any]:
        candidates = (
            f"{info.get('task_id')}/{info.get('episode_index')}",
            f"{info.get('task_index')}/{info.get('episode_index')}",
            "default",
        )
        for key in candidates:
            if key in self.sequences:
                return {"actions": self.sequences[key], "t": 0}
        raise KeyError(f"replay file has no sequence for {candidates[0]!r} and no 'default'")

    def act(self, state: dict[str, Any], obs: Observation) -> np.ndarray:
        actions = state["actions"]
        action = actions[min(state["t"], len(actions) - 1)]
        state["t"] += 1
        return action

"""How an action chunk ``(H, D)`` becomes one action per environment step.

Chunk execution is a protocol parameter (it changes the numbers), so it is chosen by
the suite protocol and recorded with every result:

* ``replan_steps=k``: query the policy every ``k`` steps and execute ``chunk[0..k-1]``
  (``None`` or ``0`` executes the whole chunk before querying again).
* ``ensemble="adaptive"``: query every step and average the current step's predictions
  from the last ``ensemble_horizon`` chunks with weights ``softmax(alpha * cos)``,
  cosine taken against the newest prediction (the CogACT/InstructVLA ensembler).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class AdaptiveEnsembler:
    """Temporal ensembling of overlapping chunk predictions."""

    def __init__(self, horizon: int, alpha: float = 0.1):
        if horizon < 1:
            raise ValueError("ensemble_horizon must be >= 1")
        self.alpha = alpha
        self.history: deque[np.ndarray] = deque(maxlen=horizon)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        self.history.append(chunk)
        # candidate k: the chunk predicted k steps ago, at its k-th entry
        candidates = [
            c[min(k, len(c) - 1)] for k, c in enumerate(reversed(self.history))
        ]
        stack = np.stack(candidates)
        reference = stack[0]
        cos = stack @ reference / (np.linalg.norm(stack, axis=1) * np.linalg.norm(reference) + 1e-7)
        weights = np.exp(self.alpha * cos)
        weights /= weights.sum()
        return (weights[:, None] * stack).sum(axis=0)


class ChunkExecutor:
    """Yields the action to execute at each step; says when the policy must be queried."""

    def __init__(self, protocol: dict[str, Any]):
        self.mode = protocol.get("ensemble", "none") or "none"
        if self.mode not in ("none", "adaptive"):
            raise ValueError(f"unknown ensemble mode {self.mode!r} (expected 'none' or 'adaptive')")
        self.replan_steps = int(protocol.get("replan_steps") or 0)
        self.ensembler = (
            AdaptiveEnsembler(int(protocol.get("ensemble_horizon", 8)), float(protocol.get("ensemble_alpha", 0.1)))
            if self.mode == "adaptive"
            else None
        )
        self._queue: deque[np.ndarray] = deque()

    def needs_query(self) -> bool:
        return self.ensembler is not None or not self._queue

    def push(self, chunk: np.ndarray) -> None:
        if self.ensembler is not None:
            self._queue = deque([self.ensembler(chunk)])
            return
        take = len(chunk) if self.replan_steps <= 0 else min(self.replan_steps, len(chunk))
        self._queue = deque(chunk[:take])

    def pop(self) -> np.ndarray:
        return self._queue.popleft()

"""Reference policies: ``random`` (uniform in the action box) and ``zero`` (no motion)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vlaeval.harness.policy import Observation, Policy, PolicySpec


class RandomPolicy(Policy):
    """Uniform random actions in ``[low, high]``; per-episode RNG seeded from the episode."""

    name = "random"

    def __init__(self, action_dim: int = 7, low: float = -1.0, high: float = 1.0, seed: int = 0):
        self.action_dim = int(action_dim)
        self.low, self.high = float(low), float(high)
        self.seed = int(seed)

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=self.action_dim, name=self.name)

    def fingerprint(self) -> str:
        return f"random(dim={self.action_dim},low={self.low},high={self.high},seed={self.seed})"

    def start_episode(self, instruction: str, info: dict[str, Any]) -> np.random.Generator:
        entropy = [self.seed, int(info.get("seed", 0)), int(info.get("task_index", 0)), int(info.get("episode_index", 0))]
        return np.random.default_rng(entropy)

    def act(self, state: np.random.Generator, obs: Observation) -> np.ndarray:
        return state.uniform(self.low, self.high, size=self.action_dim)


class ZeroPolicy(Policy):
    """All-zero motion with the gripper held open."""

    name = "zero"

    def __init__(self, action_dim: int = 7):
        self.action_dim = int(action_dim)

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=self.action_dim, name=self.name)

    def fingerprint(self) -> str:
        return f"zero(dim={self.action_dim})"

    def act(self, state: Any, obs: Observation) -> np.ndarray:
        action = np.zeros(self.action_dim)
        action[-1] = -1.0  # open, in the default close_positive convention
        return action

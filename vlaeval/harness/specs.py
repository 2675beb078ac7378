"""Typed, versioned descriptions of what is evaluated.

These types cross process boundaries (driver -> sim worker -> store), so they are
plain dataclasses that convert to and from JSON-safe dicts. Nothing here imports a
simulator, torch or a network library.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["success", "failure", "error"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every stable hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(value: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite (e.g. one LIBERO BDDL problem)."""

    suite: str
    task_id: str
    instruction: str
    index: int = 0
    n_init_states: int = 1
    max_steps: int = 100
    group: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteSpec:
    """A benchmark suite: its version and its frozen protocol parameters.

    ``protocol`` holds every parameter that changes the numbers (step limits, settle
    steps, chunk execution, image size...). It is frozen per ``version``: changing a
    default means bumping the version, and every result records the values it ran with.
    """

    name: str
    version: str
    backend: str
    protocol: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class EpisodeSpec:
    """Everything that determines one episode, independent of the policy."""

    suite: str
    suite_version: str
    task_id: str
    episode_index: int
    seed: int
    max_steps: int
    instruction: str
    protocol: dict[str, Any] = field(default_factory=dict)
    task_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EpisodeSpec":
        return cls(**data)

    def key(self, model_fingerprint: str) -> str:
        """Identity of a finished episode in the store (resume skips known keys)."""
        return stable_hash(
            {
                "suite": self.suite,
                "suite_version": self.suite_version,
                "task_id": self.task_id,
                "episode_index": self.episode_index,
                "seed": self.seed,
                "max_steps": self.max_steps,
                "protocol": self.protocol,
                "model": model_fingerprint,
            },
            length=24,
        )


@dataclass
class EpisodeResult:
    """What a sim worker reports for one episode."""

    status: Status
    success: bool
    steps: int
    metrics: dict[str, Any] = field(default_factory=dict)
    """Task scores beyond success (partial success, text metrics...)."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Text the model produced and what it is scored against (answers, reasoning)."""
    timing: dict[str, float] = field(default_factory=dict)
    """Where the time went: reset_s, loop_s, policy_s, sim_s."""
    video: str | None = None
    error: str | None = None
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EpisodeResult":
        return cls(**data)

    @classmethod
    def failed(cls, reason: str, steps: int = 0) -> "EpisodeResult":
        return cls(status="error", success=False, steps=steps, error=reason)

"""The simulator side of an episode: the interface each suite's backend implements.

A backend lives inside a sim worker process, in the simulator's own Python
environment. It is constructed from a plain dict of options (sent by the driver),
builds environments on demand, and exposes reset/step on :class:`EpisodeSpec` terms.
Only numpy and the standard library may be imported at module level by backends;
the simulator itself is imported lazily inside the backend's methods.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlaeval.harness.policy import GripperConvention, Observation
from vlaeval.harness.specs import EpisodeSpec


@dataclass
class StepOutcome:
    obs: Observation
    success: bool
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class SimBackend(ABC):
    """One simulator environment, reused across episodes by a worker."""

    action_dim: int = 7
    gripper: GripperConvention = "close_positive"
    gripper_range: tuple[float, float] = (-1.0, 1.0)

    def __init__(self, options: dict[str, Any] | None = None):
        self.options = dict(options or {})

    def describe(self) -> dict[str, Any]:
        """Versions, renderer and anything else worth recording with results."""
        return {}

    @abstractmethod
    def reset(self, episode: EpisodeSpec) -> Observation:
        """Build/reset the env for ``episode``; return the first observation.

        The returned observation includes ``instruction``. Settle steps that the
        suite's protocol prescribes happen here, not in the policy loop.
        """

    @abstractmethod
    def step(self, action: np.ndarray) -> StepOutcome:
        """Execute one ``(action_dim,)`` action in the suite's own convention."""

    def frame(self, obs: Observation) -> np.ndarray | None:
        """The image to put in a video for this observation (HWC uint8)."""
        for key in ("image", "agentview", "agentview_image"):
            if key in obs:
                return np.asarray(obs[key])
        return None

    def advance_subtask(self) -> str | None:
        """The policy signalled terminate: move a multi-subtask episode on to its next subtask
        and return that subtask's instruction; ``None`` when the episode is on its last one."""
        return None

    def success_if_ended(self, outcome: StepOutcome) -> bool:
        """The episode's outcome if it ends after the step that gave ``outcome`` (the policy
        terminated early); suites that judge only the last step override this."""
        return outcome.success

    def privileged(self) -> dict[str, Any]:
        """Simulator state for scripted oracles (object poses...)."""
        return {}

    def close(self) -> None:
        pass


def load_object(dotted: str) -> Any:
    """Import ``package.module:attr`` (or ``package.module.attr``)."""
    module_name, _, attr = dotted.partition(":")
    if not attr:
        module_name, _, attr = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"{module_name!r} has no attribute {attr!r}") from None


def make_backend(dotted: str, options: dict[str, Any] | None = None) -> SimBackend:
    cls = load_object(dotted)
    backend = cls(options or {})
    if not isinstance(backend, SimBackend):
        raise TypeError(f"{dotted} is not a SimBackend")
    return backend

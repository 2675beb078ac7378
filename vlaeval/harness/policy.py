"""The policy side of an episode: what a policy declares, and the interfaces it implements.

Two interfaces meet here:

* :class:`Policy` is implemented by adapters (random, zero, replay, InstructVLA, ...).
  One policy object serves many concurrent episodes; per-episode state lives in the
  object returned by :meth:`Policy.start_episode`, which lets a server batch the
  requests of several episodes into one :meth:`Policy.act_batch` call.
* :class:`PolicyHandle` is what an episode loop in a sim worker talks to: one episode at
  a time. :class:`LocalPolicyHandle` wraps a :class:`Policy` in the same process; the
  protocol client (``vlaeval.harness.protocol.client``) implements it over the wire.

Only numpy and the standard library are imported: this module runs inside the
simulator environments too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Observation = dict[str, Any]
"""Named numpy arrays (images HWC uint8, ``state`` float) plus ``instruction: str``."""

GripperConvention = Literal["close_positive", "open_positive"]
"""``close_positive``: -1 open, +1 close (LIBERO, robosuite). ``open_positive``: +1 open."""


class ActionError(ValueError):
    """A policy returned an action the harness refuses to execute (NaN, wrong shape)."""


class PolicyFailure(RuntimeError):
    """The policy side failed (server ERROR reply, lost connection): not a simulator crash."""


@dataclass(frozen=True)
class PolicySpec:
    """What a policy declares in HELLO; the harness checks it against the suite before step 1."""

    action_dim: int = 7
    chunk_size: int = 1
    gripper: GripperConvention = "close_positive"
    gripper_range: tuple[float, float] = (-1.0, 1.0)
    observation_keys: tuple[str, ...] = ()
    """Observation entries the policy needs; ``"a|b"`` accepts either (e.g. ``"agentview|image"``)."""
    name: str = ""
    terminate: bool = False
    """The policy appends a terminate flag to every action (``action_dim + 1`` values, > 0.5 = done):
    it ends the episode, or moves a multi-subtask episode on to its next subtask (RT-1 style)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def output_dim(self) -> int:
        """Values per action the policy returns (the action, plus the terminate flag if declared)."""
        return self.action_dim + int(self.terminate)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gripper_range"] = list(self.gripper_range)
        data["observation_keys"] = list(self.observation_keys)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PolicySpec":
        data = dict(data)
        data["gripper_range"] = tuple(data.get("gripper_range", (-1.0, 1.0)))
        data["observation_keys"] = tuple(data.get("observation_keys", ()))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def as_action_chunk(action: Any, action_dim: int) -> np.ndarray:
    """Validate a policy output and return it as a float64 ``(H, action_dim)`` chunk.

    Raises :class:`ActionError` with a one-line reason for anything the simulator
    must not receive.
    """
    try:
        array = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ActionError(f"action is not numeric: {exc}") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != action_dim or array.shape[0] == 0:
        raise ActionError(
            f"action has shape {tuple(np.shape(action))}, expected ({action_dim},) or (H, {action_dim})"
        )
    if not np.all(np.isfinite(array)):
        raise ActionError("action contains NaN or infinite values")
    return array


def convert_gripper(
    chunk: np.ndarray,
    source: PolicySpec,
    target_convention: GripperConvention,
    target_range: tuple[float, float],
) -> np.ndarray:
    """Map the last action dimension from the policy's gripper convention to the suite's."""
    out = chunk.copy()
    lo, hi = source.gripper_range
    closed = (out[:, -1] - lo) / (hi - lo)  # 0 = low end, 1 = high end of the policy's range
    if source.gripper != "close_positive":
        closed = 1.0 - closed
    if target_convention != "close_positive":
        closed = 1.0 - closed
    t_lo, t_hi = target_range
    out[:, -1] = t_lo + closed * (t_hi - t_lo)
    return out


class Policy(ABC):
    """Anything that acts: adapters implement this."""

    name: str = "policy"

    def spec(self) -> PolicySpec:
        return PolicySpec(name=self.name)

    def fingerprint(self) -> str:
        """Identifies the weights/config; part of every episode key. Override for models."""
        return self.name

    def start_episode(self, instruction: str, info: dict[str, Any]) -> Any:
        """Return per-episode state (``None`` for stateless policies)."""
        return None

    @abstractmethod
    def act(self, state: Any, obs: Observation) -> np.ndarray:
        """One action ``(D,)`` or a chunk ``(H, D)`` for the current observation."""

    def act_batch(self, states: list[Any], observations: list[Observation]) -> list[np.ndarray]:
        """Actions for several episodes at once; batching adapters override this."""
        return [self.act(s, o) for s, o in zip(states, observations)]

    @property
    def supports_batching(self) -> bool:
        return type(self).act_batch is not Policy.act_batch

    def end_episode(self, state: Any, result: dict[str, Any]) -> None:
        """Called once the episode is over (success, failure or error)."""

    def close(self) -> None:
        """Release resources (connections, GPU memory)."""


class PolicyHandle(ABC):
    """One episode's view of a policy, as the episode loop in a sim worker sees it."""

    @abstractmethod
    def spec(self) -> PolicySpec: ...

    @abstractmethod
    def start_episode(self, instruction: str, info: dict[str, Any]) -> None: ...

    @abstractmethod
    def act(self, obs: Observation) -> np.ndarray: ...

    @abstractmethod
    def end_episode(self, result: dict[str, Any]) -> None: ...

    def close(self) -> None:
        pass


class LocalPolicyHandle(PolicyHandle):
    """Drive a :class:`Policy` living in the same process (in-process executor, tests)."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._state: Any = None

    def spec(self) -> PolicySpec:
        return self.policy.spec()

    def start_episode(self, instruction: str, info: dict[str, Any]) -> None:
        self._state = self.policy.start_episode(instruction, info)

    def act(self, obs: Observation) -> np.ndarray:
        return np.asarray(self.policy.act(self._state, obs))

    def end_episode(self, result: dict[str, Any]) -> None:
        self.policy.end_episode(self._state, result)
        self._state = None

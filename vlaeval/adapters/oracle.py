"""``oracle``: privileged scripted policies, one per suite family.

The policy asks the harness for privileged simulator state (``observation_keys``
contains ``"privileged"``) and, at the start of each episode, picks the oracle of
the episode's suite. Only LIBERO has one for now.
"""

from __future__ import annotations

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

"""SimplerEnv backend (runs in the ``simpler`` venv, inside a sim worker).

Each ``reset`` builds the episode's scene from scratch, as the SimplerEnv evaluator builds a
new env per episode: the task config in ``episode.protocol["task_config"]`` (or the catalog
entry of ``episode.task_id``) and ``episode.episode_index`` give the upstream reset options
(:func:`vlaeval.suites.simpler.catalog.episode_at`); with ``env_seed: upstream`` the env's
construction-time initialisation is replayed first, so the physics sees the same sequence of
operations as upstream. The same EpisodeSpec always gives the same first frame and poses.

Actions are the upstream 7-D vector ``[dx, dy, dz, rx, ry, rz, gripper]`` (metres, axis-angle
radians; see :mod:`.agents` for the frames). The gripper convention is per robot: Google
robot relative, +1 = close (``close_positive``); WidowX absolute, +1 = open
(``open_positive``). Observations: ``image`` (policy camera, HxWx3 uint8, real-image overlay
in visual matching), ``state`` (tcp xyz + quat wxyz in the robot base frame + gripper
openness, float32[8]), ``qpos``, ``instruction``.

Outcome: with ``outcome: last_step`` (upstream truncation semantics) ``StepOutcome.success``
is the env's success at the final step only; every step's ``info`` carries ``success_now``,
the task's flags and ``metrics`` (episode statistics, the Bridge grasp partial, whether the
scene is approximate because the pack lacks a stage mesh).
"""

from __future__ import annotations

import contextlib
import os
import time
from importlib import metadata
from typing import Any

import numpy as np

from vlaeval.harness.backend import SimBackend, StepOutcome
from vlaeval.harness.policy import GripperConvention, Observation
from vlaeval.harness.specs import EpisodeSpec
from vlaeval.suites.simpler import catalog, env_setup

PACKAGES = ("sapien", "mani-skill2", "numpy", "ruckig", "gymnasium", "opencv-python")
GRIPPER = {"google": ("close_positive", "relative"), "widowx": ("open_positive", "absolute")}


class SimplerBackend(SimBackend):
    """SimplerEnv tasks on SAPIEN 2.2.2; one scene per episode."""

    action_dim: int = 7
    gripper: GripperConvention = "close_positive"
    gripper_range: tuple[float, float] = (-1.0, 1.0)

    def __init__(self, options: dict[str, Any] | None = None):
        super().__init__(options)
        # Vulkan loader variables must be in place before SAPIEN is imported.
        self._render = env_setup.configure(self.options.get("render"))
        self.env: Any = None
        self.episode: dict[str, Any] | None = None
        self._pack: Any = None
        self._steps = 0
        self._max_steps = 0
        self._outcome = "last_step"
        self._last_info: dict[str, Any] = {}
        self._timing: dict[str, float] = {}

    # -- helpers --------------------------------------------------------------------------
    def pack(self) -> Any:
        if self._pack is None:
            from vlaeval.suites.simpler import assets

            self._pack = assets.open_pack(self.options.get("assets") or None)
        return self._pack

    @staticmethod
    def resolve(episode: EpisodeSpec) -> dict[str, Any]:
        """The upstream reset settings of an EpisodeSpec (task config from the protocol or catalog)."""
        cfg = episode.protocol.get("task_config") or catalog.find_task(episode.task_id)
        return catalog.episode_at(cfg, int(episode.episode_index))

    # -- SimBackend -----------------------------------------------------------------------
    def reset(self, episode: EpisodeSpec) -> Observation:
        from vlaeval.suites.simpler.tasks import make_task_env
        from vlaeval.suites.simpler.tasks.base import upstream_episode_seed

        t0 = time.monotonic()
        protocol = episode.protocol
        ep = self.resolve(episode)
        self._close_env()
        rt = protocol.get("shader", "raster") == "catalog" and ep["env_kwargs"].get("shader_dir") == "rt"
        env = make_task_env(ep, self.pack(), shader="rt" if rt else "ibl", overlay=bool(protocol.get("overlay", True)))
        env_seed = protocol.get("env_seed", "upstream")
        if env_seed == "upstream":
            env.reset(upstream_episode_seed(), replay_construction=True)
        else:
            env.reset(int(env_seed), replay_construction=False)
        self.env, self.episode = env, ep
        family = env.robot_spec.family
        self.gripper = GRIPPER[family][0]  # type: ignore[assignment]
        self._steps = 0
        self._max_steps = int(episode.max_steps or ep["max_steps"])
        self._outcome = str(protocol.get("outcome", "last_step"))
        self._last_info = {}
        obs = self._observation()
        self._timing = {"reset_s": round(time.monotonic() - t0, 3)}
        return obs

    def step(self, action: np.ndarray) -> StepOutcome:
        if self.env is None:
            raise RuntimeError("step() before reset()")
        act = np.asarray(action, dtype=np.float64).reshape(self.action_dim)
        info = self.env.step(act)
        self._steps += 1
        obs = self._observation()
        now = bool(info["success"])
        final = self._steps >= self._max_steps
        if self._outcome == "any_step":
            success = now
        else:
            success = now and final
        out = {k: _jsonable(v) for k, v in info.items() if k != "success"}
        out["success_now"] = now
        out["final"] = final
        out["metrics"] = self.metrics(info)
        self._last_info = out
        if obs["instruction"] != self._instruction_at_reset:
            out["instruction_changed"] = True
        return StepOutcome(obs, success=success, done=False, info=out)

    def metrics(self, info: dict[str, Any]) -> dict[str, Any]:
        assert self.env is not None and self.episode is not None
        stats = _jsonable(info.get("episode_stats", {}))
        out: dict[str, Any] = {
            "episode_stats": stats,
            "assets": "approximate" if self.env.approximations else "complete",
        }
        if self.env.approximations:
            out["approximations"] = list(self.env.approximations)
        if self.episode.get("partial") == "grasp":
            out["grasp"] = bool(stats.get("is_src_obj_grasped", False))
        return out

    def _observation(self) -> Observation:
        assert self.env is not None and self.env.robot is not None
        image = self.env.render()
        instruction = self.env.instruction()
        if self._steps == 0:
            self._instruction_at_reset = instruction
        return {
            "image": image,
            "state": self.env.robot.eef_state().astype(np.float32),
            "qpos": np.asarray(self.env.robot.articulation.get_qpos(), dtype=np.float32),
            "instruction": instruction,
        }

    def privileged(self) -> dict[str, Any]:
        if self.env is None:
            return {}
        out = self.env.privileged()
        out["info"] = dict(self._last_info)
        out["episode"] = {k: self.episode[k] for k in ("task_id", "env_id", "robot_init", "obj_init", "labels")} \
            if self.episode else {}
        return out

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": "simpler", "render": env_setup.render_info() or self._render}
        for pkg in PACKAGES:
            with contextlib.suppress(metadata.PackageNotFoundError):
                info[pkg] = metadata.version(pkg)
        with contextlib.suppress(Exception):
            info["assets_pack"] = self.pack().describe()
        if self.env is not None and self.episode is not None:
            spec = self.env.robot_spec
            info["episode"] = {
                "env_id": self.episode["env_id"],
                "robot": spec.name,
                "control_mode": spec.control_mode,
                "control_freq": spec.control_freq,
                "sim_freq": spec.sim_freq,
                "shader": self.env.shader,
                "overlay": self.env.overlay_name,
                "assets": "approximate" if self.env.approximations else "complete",
                "approximations": list(self.env.approximations),
                "replayed_construction": bool(getattr(self.env, "replayed_construction", False)),
                "gripper": GRIPPER[spec.family],
            }
        info["notes"] = ("the 128x128 base_camera upstream renders every step is not rendered "
                         "(it never reaches the policy)")
        info["defaults"] = dict(self.options)
        info["pid"] = os.getpid()
        return info

    def close(self) -> None:
        self._close_env()

    def _close_env(self) -> None:
        env, self.env = self.env, None
        if env is not None:
            env.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value

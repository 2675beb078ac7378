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

    def advance_subtask(self) -> str | None:
        assert self.env is not None
        if self.env.is_final_subtask():
            return None
        self.env.advance_to_next_subtask()
        return self.env.instruction()

    def success_if_ended(self, outcome: StepOutcome) -> bool:
        return bool(outcome.info["success_now"])  # upstream: the `terminated` flag of the last executed step

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
        """Read-only simulator state for scripted oracles (JSON-safe; world frame, wxyz quaternions).

        Besides the task env's own poses: ``task`` (what the episode asks for: its kind, the
        object / source / target actor names, the drawer, the current subtask), ``geometry``
        (per task actor: world AABB of its collision shapes, the box in its own frame, its
        centre of mass), the drawer links' collision boxes, the arm controller's target pose
        and the finger joints. Reading them changes nothing in the simulation.
        """
        if self.env is None:
            return {}
        out = self.env.privileged()
        out["info"] = dict(self._last_info)
        out["episode"] = {k: self.episode[k] for k in ("task_id", "env_id", "robot_init", "obj_init", "labels")} \
            if self.episode else {}
        try:
            out.update(self._oracle_state())
        except Exception as exc:  # never let an oracle helper break an episode; say why instead
            out["oracle_state_error"] = f"{type(exc).__name__}: {exc}"
        return out

    def _oracle_state(self) -> dict[str, Any]:
        env = self.env
        assert env is not None and env.robot is not None
        robot = env.robot
        if getattr(self, "_geometry_env", None) is not env:
            self._geometry_env, self._geometry_local = env, {}
        out: dict[str, Any] = {"task": _task_description(env), "geometry": {}}
        for actor in env.task_actors():
            local = self._geometry_local.get(actor.name)
            if local is None:
                local = self._geometry_local[actor.name] = _actor_points(actor)
            out["geometry"][actor.name] = _actor_geometry(actor, local)
        cabinet = getattr(env, "cabinet", None)
        if cabinet is not None:
            links = {}
            for link in cabinet.get_links():
                boxes = []
                for shape in link.get_collision_shapes():
                    half = getattr(shape.geometry, "half_lengths", None)
                    if half is None:
                        continue
                    pose = link.pose * shape.get_local_pose()
                    rot = np.abs(pose.to_transformation_matrix()[:3, :3])
                    h = rot @ np.asarray(half, dtype=np.float64)
                    boxes.append({"center": [float(v) for v in pose.p], "half": [float(v) for v in h]})
                links[link.name] = {"pos": [float(v) for v in link.pose.p], "boxes": boxes}
            out["cabinet_links"] = links
        arm = robot.arm
        target = getattr(arm, "_target_pose", None)
        if target is not None:
            world = robot.articulation.pose * target
            out["arm_target"] = {"pos": [float(v) for v in world.p], "quat_wxyz": [float(v) for v in world.q]}
        qpos = robot.articulation.get_qpos()
        out["gripper_qpos"] = [float(qpos[i]) for i in robot.gripper.joint_indices]
        out["robot_family"] = env.robot_spec.family
        out["table_height"] = float(env.table_height)
        out["max_steps"] = int(self._max_steps)
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


def _task_description(env: Any) -> dict[str, Any]:
    """What the episode asks for, from the task env (names of actors, drawer, subtask)."""
    from vlaeval.suites.simpler.tasks import drawer as D
    from vlaeval.suites.simpler.tasks.grasp_single import GraspSingleEnv
    from vlaeval.suites.simpler.tasks.move_near import MultiObjectEnv
    from vlaeval.suites.simpler.tasks.put_on import PutOnBridgeEnv

    out: dict[str, Any] = {"env_class": type(env).__name__, "family": env.robot_spec.family,
                           "robot": env.robot_spec.name}
    if isinstance(env, GraspSingleEnv):
        out.update(kind="grasp", object=env.obj.name, distractors=[d.name for d in env.distractors],
                   settled_height=env.obj_height_after_settle)
    elif isinstance(env, MultiObjectEnv):
        out.update(kind="put_on" if isinstance(env, PutOnBridgeEnv) else "move_near", source=env.source.name,
                   target=env.target.name, objects=[o.name for o in env.objs],
                   settled={o.name: [float(v) for v in p] for o, p in zip(env.objs, env.xyz_after_settle)},
                   source_bbox=[float(v) for v in env.source_bbox_world],
                   target_bbox=[float(v) for v in env.target_bbox_world])
        if isinstance(env, PutOnBridgeEnv):
            out.update(strict=bool(env.cfg["strict"]), z_offset=float(env.cfg["z_offset"]))
    elif isinstance(env, D.DrawerEnv):
        kind = {D.AltCloseAfterGrabEnv: "close_drawer", D.AltPutIntoOpenDrawerEnv: "put_into_drawer",
                D.PlaceInDrawerEnv: "place_into_drawer"}.get(type(env))
        if kind is None:
            kind = "close_drawer" if env.closing else "open_drawer"
        out.update(kind=kind, drawer=env.drawer_id, joint=env.joint_idx, sticky_open=bool(env.sticky_open))
        if isinstance(env, D.PlaceInDrawerEnv):
            out.update(object=env.obj.name, subtask=int(env.cur_subtask),
                       force_advance_step=int(env.force_advance_step))
    return out


def _actor_points(actor: Any) -> list[np.ndarray]:
    """Vertices of each collision shape of an actor, in the actor frame (boxes: their corners)."""
    corners = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], dtype=np.float64)
    parts = []
    for shape in actor.get_collision_shapes():
        geom = shape.geometry
        if hasattr(geom, "vertices"):
            v = np.asarray(geom.vertices, dtype=np.float64) * np.asarray(geom.scale, dtype=np.float64)
        elif hasattr(geom, "half_lengths"):
            v = corners * np.asarray(geom.half_lengths, dtype=np.float64)
        elif hasattr(geom, "radius"):
            r = float(geom.radius)
            v = corners * np.array([float(getattr(geom, "half_length", 0.0)) + r, r, r])
        else:
            continue
        T = shape.get_local_pose().to_transformation_matrix()
        parts.append(v @ T[:3, :3].T + T[:3, 3])
    return parts or [np.zeros((1, 3))]


def _hull_contains(points: np.ndarray, p: np.ndarray) -> bool:
    """Whether ``p`` (2-D) lies inside the convex hull of ``points`` (monotone chain)."""
    pts = sorted({(float(x), float(y)) for x, y in np.round(points, 6)})
    if len(pts) < 3:
        return False

    def cross(o: tuple, a: tuple, b: tuple) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    upper: list = []
    for q in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    for q in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    hull = lower[:-1] + upper[:-1]
    x = (float(p[0]), float(p[1]))
    return all(cross(hull[i], hull[(i + 1) % len(hull)], x) >= 0 for i in range(len(hull)))


def _actor_geometry(actor: Any, parts: list[np.ndarray]) -> dict[str, Any]:
    """World AABB, own-frame box, centre of mass, and a top-down grasp site: the box centre when
    it lies on the body seen from above, else the centre of the collision part nearest to it (a
    curved banana's box centre lies off the fruit), with that part's narrow horizontal direction."""
    T = actor.pose.to_transformation_matrix()
    world = [part @ T[:3, :3].T + T[:3, 3] for part in parts]
    every = np.concatenate(world)
    local = np.concatenate(parts)
    com = actor.pose.transform(actor.cmass_local_pose).p
    lo, hi = every.min(0), every.max(0)
    centre = (lo[:2] + hi[:2]) / 2
    grasp: dict[str, Any] = {"xy": [float(v) for v in centre], "on_body": True, "elongation": 1.0}
    if not any(_hull_contains(part[:, :2], centre) for part in world):
        part = min(world, key=lambda w: float(np.min(np.linalg.norm(w[:, :2] - centre, axis=1))))
        site = part[:, :2].mean(0)
        eigval, eigvec = np.linalg.eigh(np.cov((part[:, :2] - site).T) if len(part) > 2 else np.eye(2))
        grasp = {"xy": [float(v) for v in site], "on_body": False, "narrow": [float(v) for v in eigvec[:, 0]],
                 "elongation": float(eigval[1] / max(eigval[0], 1e-12))}
    return {"min": [float(v) for v in lo], "max": [float(v) for v in hi],
            "local_min": [float(v) for v in local.min(0)], "local_max": [float(v) for v in local.max(0)],
            "com": [float(v) for v in com], "grasp": grasp}


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

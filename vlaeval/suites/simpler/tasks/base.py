"""The episode environment shared by every SimplerEnv task class.

One :class:`TaskEnv` is one upstream environment instance, built for one episode:

1. ``build()``: a fresh PhysX scene; robot, stage ("arena"), objects, articulations, camera
   and lights, in upstream's load order (robot first, so actor ids match).
2. ``reset(episode_seed)``: with ``replay_construction`` (protocol ``env_seed: upstream``)
   and when upstream would keep the same scene for the evaluated reset (same models; no
   per-reset rebuild such as the distractor envs'), first the initialisation an upstream env
   performs while it is constructed (episode seed 2022, its own random draws), then the
   zeroing of velocities, then the evaluated episode with the catalog's reset options and the
   episode seed a freshly built upstream env draws next. The SE evaluator builds a new env per
   episode, so this replays its exact sequence of simulator operations (the robot's joint
   trajectories then match upstream bit for bit; see tests/test_simpler_backend.py).
3. ``step(action)``: controller targets, ``sim_freq // control_freq`` PhysX substeps, render,
   ``evaluate()`` once (it updates the latched episode statistics).

Subclasses implement the task: ``load_objects``, ``initialize_objects``, ``evaluate`` and the
instruction. Backend side (imports SAPIEN lazily through the helpers).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlaeval.suites.simpler import agents as AG
from vlaeval.suites.simpler import assets as A
from vlaeval.suites.simpler import scenes as S

CONSTRUCTION_SEED = 2022


def upstream_episode_seed() -> int:
    """The episode seed an upstream env draws on its first reset without a seed."""
    return int(np.random.RandomState(CONSTRUCTION_SEED).randint(2**32))


@dataclass
class ResetOptions:
    """Upstream ``reset(options=...)``: robot and object init options."""

    robot_xy: list[float] | None = None
    robot_quat: list[float] | None = None  # wxyz
    robot_qpos: list[float] | None = None
    obj: dict[str, Any] = field(default_factory=dict)  # {"init_xy": ...} | {"episode_id": ...} | {}


class TaskEnv:
    """Base class; see the module docstring."""

    contact_offset = 0.02
    lighting_default = "default"
    always_overlay: tuple[str, ...] = ()  # actors always replaced by the overlay (sink, target plane)

    def __init__(self, episode: dict[str, Any], pack: A.AssetPack, *, shader: str = "ibl",
                 overlay: bool = True, env_kwargs: dict[str, Any] | None = None,
                 robot_qpos: list[float] | None = None):
        self.episode = episode
        self.pack = pack
        self.robot_spec = AG.robot_spec(episode["robot"])
        self.family = self.robot_spec.family
        self.kwargs = dict(env_kwargs if env_kwargs is not None else episode.get("env_kwargs") or {})
        self.scene_name = episode["scene"]
        self.table_height = S.TABLE_HEIGHT
        self.shader = shader
        self.overlay_name = episode.get("overlay") if overlay else None
        self.urdf_version = episode.get("urdf_version") or ""
        self.disable_bad_material = bool(self.kwargs.get("disable_bad_material", False))
        self.approximations: list[str] = []
        self.elapsed_steps = 0
        self.scene: Any = None
        self.robot: AG.Robot | None = None
        self.episode_stats: OrderedDict[str, Any] = OrderedDict()
        self._episode_rng = np.random.RandomState(CONSTRUCTION_SEED)
        self._robot_init = ResetOptions()
        # an env-wide initial joint configuration (the VA camera variants tilt the head)
        self.robot_qpos = list(robot_qpos) if robot_qpos is not None else None

    # -- build ----------------------------------------------------------------------------
    @property
    def sim_freq(self) -> int:
        return self.robot_spec.sim_freq

    @property
    def control_freq(self) -> int:
        return self.robot_spec.control_freq

    def build(self) -> None:
        S.set_shader(self.shader)
        _, renderer = S.engine_and_renderer()
        self.renderer = renderer
        self.scene = S.create_scene(self.sim_freq, self.contact_offset)
        # robot first (upstream _load_agent precedes _load_actors)
        urdf_rel = self.robot_spec.urdf_for(self.urdf_version)
        desc_dir = self.pack.view("descriptions/" + urdf_rel.split("/", 1)[0])
        urdf_path = desc_dir / urdf_rel.split("/", 1)[1]
        if not urdf_path.exists():
            raise A.AssetMissing(f"robot URDF {urdf_rel!r} not in the pack at {self.pack.root}")
        self.robot = AG.Robot(self.scene, self.robot_spec, str(urdf_path))
        if not self.disable_bad_material:
            S.set_robot_render_material(self.robot.articulation)
        self.arena, stage = S.load_stage(self.scene, renderer, self.pack, self.scene_name, self.family,
                                         self.table_height, add_collision=self.stage_collision)
        self.stage = stage
        if stage.approximate:
            self.approximations.append(stage.note)
        self.load_objects()
        self.load_articulations()
        spec = self.robot_spec
        cam = spec.camera
        self.camera = S.PolicyCamera.mount(self.scene, self.robot.links[cam.mount], cam.name, cam.p,
                                           AG.camera_pose_q(spec), cam.width, cam.height, cam.fx, cam.fy,
                                           cam.cx, cam.cy, cam.near, cam.far, cam.fovy)
        self.setup_lighting()
        self.overlay = (S.Overlay.load(self.pack, self.overlay_name, cam.width, cam.height)
                        if self.overlay_name else None)

    stage_collision = True
    # True where upstream rebuilds the scene on every reset (then nothing precedes the episode)
    reconfigures_every_reset = False

    def setup_lighting(self) -> None:
        S.setup_lighting(self.scene, self.lighting_preset())

    def lighting_preset(self) -> str:
        return S.lighting_preset(self.kwargs, self.lighting_default)

    def load_objects(self) -> None:
        """Create the task's actors (subclasses)."""

    def load_articulations(self) -> None:
        """Create other articulations, e.g. a cabinet (subclasses)."""

    def _note_object(self, info: S.ObjectInfo) -> None:
        if info.approximate_visual:
            self.approximations.append(f"{info.model_id}: visual mesh absent, collision mesh shown")

    # -- reset ----------------------------------------------------------------------------
    def reset(self, episode_seed: int, replay_construction: bool = True) -> None:
        """Build the scene and initialise the episode (see the module docstring)."""
        evaluated = self.episode_options(episode_seed)
        construction = self.construction_options()
        self.replayed_construction = bool(
            replay_construction
            and not self.reconfigures_every_reset
            and self.scene_key(construction) == self.scene_key(evaluated)
        )
        self.prepare(evaluated)
        if self.scene is None:
            self.build()
        if self.replayed_construction:
            self._episode_rng = np.random.RandomState(CONSTRUCTION_SEED)
            self.initialize_episode(construction, construction=True)
            self.clear_sim_state()
        self._episode_rng = np.random.RandomState(episode_seed)
        self.initialize_episode(evaluated, construction=False)

    def scene_key(self, options: ResetOptions) -> Any:
        """What upstream loads for these options; a change means it rebuilds the scene."""
        return None

    def prepare(self, options: ResetOptions) -> None:
        """Decide what to load for the evaluated episode (before ``build``; subclasses)."""

    def episode_options(self, episode_seed: int) -> ResetOptions:
        """The evaluator's reset options for this episode (robot pose; object xy or episode id)."""
        ep = self.episode
        obj: dict[str, Any] = {}
        if "xy" in ep["obj_init"]:
            obj["init_xy"] = list(ep["obj_init"]["xy"])
        if "episode_id" in ep["obj_init"]:
            obj["episode_id"] = int(ep["obj_init"]["episode_id"])
        return ResetOptions(robot_xy=list(ep["robot_init"]["xy"]),
                            robot_quat=list(AG.pose_wxyz_from_yaw(ep["robot_init"]["yaw"])), obj=obj)

    def construction_options(self) -> ResetOptions:
        """What the upstream constructor's ``reset(seed=2022, reconfigure=True)`` passes (nothing)."""
        return ResetOptions()

    def initialize_episode(self, options: ResetOptions, construction: bool) -> None:
        self.elapsed_steps = 0
        self._robot_init = options
        self.reset_task_state()
        self.initialize_objects(options)
        self.initialize_articulations(options)
        self.initialize_robot(options)

    def reset_task_state(self) -> None:
        """Clear per-episode counters and statistics (subclasses)."""

    def initialize_objects(self, options: ResetOptions) -> None:
        """Place and settle the task's objects (subclasses)."""

    def initialize_articulations(self, options: ResetOptions) -> None:
        pass

    def initialize_robot(self, options: ResetOptions) -> None:
        import sapien.core as sapien

        spec = self.robot_spec
        qpos = options.robot_qpos if options.robot_qpos is not None else (self.robot_qpos or spec.init_qpos)
        assert self.robot is not None
        self.robot.reset(qpos)
        quat = options.robot_quat if options.robot_quat is not None else [0.0, 0.0, 0.0, 1.0]
        if options.robot_xy is not None:
            xy = list(options.robot_xy)
        elif spec.family == "google":
            xy = [self._episode_rng.uniform(0.30, 0.40), self._episode_rng.uniform(0.0, 0.2)]
        elif spec.name == "widowx_sink_camera_setup":
            xy = [0.147, 0.070]
        else:
            xy = [0.147, 0.028]
        self.robot.articulation.set_pose(sapien.Pose([xy[0], xy[1], spec.init_height], list(quat)))

    def clear_sim_state(self) -> None:
        for actor in self.scene.get_all_actors():
            if actor.type != "static":
                actor.set_velocity([0, 0, 0])
                actor.set_angular_velocity([0, 0, 0])
        for art in self.scene.get_all_articulations():
            art.set_qvel(np.zeros(art.dof))
            art.set_root_velocity([0, 0, 0])
            art.set_root_angular_velocity([0, 0, 0])

    def settle(self, seconds: float) -> None:
        for _ in range(int(self.sim_freq * seconds)):
            self.scene.step()

    def park_robot(self) -> None:
        """Move the robot out of the way while objects fall onto the table (upstream)."""
        import sapien.core as sapien

        assert self.robot is not None
        self.robot.articulation.set_pose(sapien.Pose([-10, 0, 0]))

    # -- step -----------------------------------------------------------------------------
    def step(self, action: np.ndarray) -> dict[str, Any]:
        assert self.robot is not None
        self.robot.set_action(action)
        self.before_control_step()
        for _ in range(self.sim_freq // self.control_freq):
            self.robot.before_simulation_step()
            self.scene.step()
        self.elapsed_steps += 1
        return self.evaluate()

    def before_control_step(self) -> None:
        pass

    def evaluate(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- observation ----------------------------------------------------------------------
    def overlay_keep_ids(self) -> np.ndarray:
        """Actor ids rendered from simulation under the overlay: robot, task objects, other articulations."""
        assert self.robot is not None
        skip = {"ground", "goal_site", "", "arena", *self.always_overlay}
        ids = [a.id for a in self.scene.get_all_actors() if a.name not in skip]
        ids += [link.id for link in self.robot.articulation.get_links()]
        for art in self.scene.get_all_articulations():
            if art is self.robot.articulation or art.name in self.always_overlay:
                continue
            ids += [link.id for link in art.get_links()]
        return np.asarray(ids, dtype=np.int32)

    def render(self) -> np.ndarray:
        """The policy camera's HxWx3 uint8 image (overlaid in visual matching)."""
        self.scene.update_render()
        color, seg = self.camera.capture(segmentation=self.overlay is not None)
        if self.overlay is not None:
            assert seg is not None
            self.overlay.apply(color, seg, self.overlay_keep_ids())
        return S.to_uint8(color)

    def instruction(self) -> str:
        return str(self.episode["instruction"])

    def is_final_subtask(self) -> bool:
        return True

    def advance_to_next_subtask(self) -> None:
        raise NotImplementedError("this task has a single subtask")

    def privileged(self) -> dict[str, Any]:
        """JSON-safe object and robot poses (wxyz quaternions)."""
        assert self.robot is not None
        out: dict[str, Any] = {"objects": {}, "elapsed_steps": self.elapsed_steps}
        for actor in self.task_actors():
            pose = actor.pose
            out["objects"][actor.name] = {"pos": [float(v) for v in pose.p], "quat_wxyz": [float(v) for v in pose.q]}
        tcp = self.robot.tcp.pose
        out["tcp"] = {"pos": [float(v) for v in tcp.p], "quat_wxyz": [float(v) for v in tcp.q]}
        out["qpos"] = [float(v) for v in self.robot.articulation.get_qpos()]
        out["gripper_closedness"] = self.robot.gripper_closedness()
        base = self.robot.articulation.pose
        out["robot_base"] = {"pos": [float(v) for v in base.p], "quat_wxyz": [float(v) for v in base.q]}
        return out

    def task_actors(self) -> list[Any]:
        return []

    def close(self) -> None:
        self.robot = None
        self.camera = None
        self.scene = None


def contacts_other_than(contacts: list[Any], actor_name: str, allowed: set[str], min_impulse: float = 1e-6) -> bool:
    """True when ``actor_name`` touches an actor outside ``allowed`` with impulse > ``min_impulse``."""
    for contact in contacts:
        a0, a1 = contact.actor0, contact.actor1
        if a0.name == actor_name:
            other = a1.name
        elif a1.name == actor_name:
            other = a0.name
        else:
            continue
        impulse = np.sum([point.impulse for point in contact.points], axis=0)
        if other not in allowed and np.linalg.norm(impulse) > min_impulse:
            return True
    return False


def instruction_object_name(model_id: str) -> str:
    """Upstream's cleaning of a model id for instructions (drops opened, baked, v2, *cm, ...)."""
    drop = {"opened", "light", "generated", "modified", "objaverse", "bridge", "baked", "v2"}
    return " ".join(w for w in model_id.split("_") if w[-2:] != "cm" and w not in drop)

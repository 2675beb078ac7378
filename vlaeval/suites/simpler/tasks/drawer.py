"""Drawer tasks on the mk_station cabinet (Google robot): open/close drawer, apple in closed drawer.

Upstream facts (ManiSkill2_real2sim envs/custom_scenes/{open_drawer,place_in_closed_drawer}_in_scene.py;
simplerenv.md §1.3-1.5; the pack README for the cabinet):

* Cabinet ``data/custom/<station_name>.urdf`` (default ``mk_station``; visual matching uses
  ``mk_station_recolor``), fixed root at (-0.295, 0, 0.017); every drawer joint: friction 0.05,
  drive stiffness 0 / damping 1. Named "cabinet" (an articulation: kept in the overlay).
* The stage is visual only (no collision); ``dummy_drawer`` is a large white box.
* Lighting: ``light_mode: simple`` (VM): ambient 1, one light from 75 deg elevation. Otherwise
  ("legacy"): ambient 0.3, a shadow-casting light along (-0.2, 0, -1) (``vertical``: (-0.1, 0,
  -1)), colour 1 (``darker`` 0.5, ``brighter`` 2), plus two side lights of 0.5.
* The drawer joints are set after the robot is placed: closed, or the target drawer at 0.2 m
  for "close" tasks. No settling.
* Success: open = target joint >= 0.15 m at the final step; close = <= 0.05 m. Apple in
  drawer: two subtasks ("open top drawer", then "place apple into top drawer"; the second
  starts when the policy signals it or is forced at step 100); success = second subtask,
  joint >= 0.05 and the apple has touched the drawer link's collision shape #2 at least once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from vlaeval.suites.simpler import assets as A
from vlaeval.suites.simpler import scenes as S
from vlaeval.suites.simpler.tasks.base import ResetOptions, TaskEnv, instruction_object_name

CABINET_POSE = ((-0.295, 0.0, 0.017), (1.0, 0.0, 0.0, 0.0))
STONE_TOP_STATIONS = ("mk_station3", "mk_station4")  # take their top's visual from models/stone_tabletop.glb


class DrawerEnv(TaskEnv):
    """``closing``: the target drawer starts open 0.2 m and must be closed. ``sticky_open``
    (Instruct AltOpen...Env-v0): success latches once the drawer was open at any step (upstream
    latches it on the env instance; here it is per episode). ``instruction_text``: an env's
    fixed instruction, or the two phases of a place-into-drawer task."""

    stage_collision = False
    default_cabinet_qpos: tuple[float, ...] | None = None  # None: all drawers closed

    def __init__(self, episode: dict[str, Any], pack: Any, *, drawer: str, closing: bool = False,
                 sticky_open: bool = False, instruction_text: str | list[str] | None = None, **kw: Any):
        super().__init__(episode, pack, **kw)
        self.drawer_id = drawer
        self.closing = closing
        self.sticky_open = sticky_open
        self.instruction_text = instruction_text
        self.station_name = self.kwargs.get("station_name", "mk_station")
        self.light_mode = self.kwargs.get("light_mode")
        self.camera_mode = self.kwargs.get("camera_mode")
        self.cabinet_joint_friction = float(self.kwargs.get("cabinet_joint_friction", 0.05))
        self.cabinet: Any = None

    # -- build ----------------------------------------------------------------------------
    def setup_lighting(self) -> None:
        scene = self.scene
        if self.light_mode == "simple":
            scene.set_ambient_light([1.0, 1.0, 1.0])
            angle = np.deg2rad(75)
            scene.add_directional_light([-np.cos(angle), 0, -np.sin(angle)], [1.0, 1.0, 1.0])
            return
        direction = [-0.1, 0, -1] if self.light_mode == "vertical" else [-0.2, 0, -1]
        color = {"darker": [0.5] * 3, "brighter": [2.0] * 3}.get(self.light_mode or "", [1.0] * 3)
        scene.set_ambient_light([0.3, 0.3, 0.3])
        scene.add_directional_light(direction, color, shadow=True, scale=5, shadow_map_size=2048)
        scene.add_directional_light([-1, 1, -0.05], [0.5] * 3)
        scene.add_directional_light([-1, -1, -0.05], [0.5] * 3)

    def build(self) -> None:
        super().build()
        if self.stage.approximate:
            # a missing drawer background is visual only: nothing stands in for it
            self.approximations[-1] = f"background stage {A.stage_path(self.scene_name)} absent (visual only)"

    def load_articulations(self) -> None:
        import sapien.core as sapien

        urdf = self.pack.require(A.cabinet_urdf(self.station_name), "cabinet URDF")
        if self.station_name in STONE_TOP_STATIONS:
            self.pack.require("data/custom/models/stone_tabletop.glb", "cabinet top visual")
        loader = self.scene.create_urdf_loader()
        loader.fix_root_link = True
        cabinet = loader.load(str(urdf))
        cabinet.name = "cabinet"
        cabinet.set_pose(sapien.Pose(list(CABINET_POSE[0]), list(CABINET_POSE[1])))
        for joint in cabinet.get_active_joints():
            joint.set_friction(self.cabinet_joint_friction)
            joint.set_drive_property(stiffness=0, damping=1)
        self.cabinet = cabinet
        self.joint_names = [j.name for j in cabinet.get_active_joints()]
        self.joint_idx = self.joint_names.index(f"{self.drawer_id}_drawer_joint")
        links = {link.name: link for link in cabinet.get_links()}
        self.drawer_link = links[f"{self.drawer_id}_drawer"]

    # -- episode --------------------------------------------------------------------------
    def reset_task_state(self) -> None:
        self.episode_stats = OrderedDict(qpos=0.0)
        self.opened_once = False

    def initialize_robot(self, options: ResetOptions) -> None:
        if options.robot_qpos is None:
            qpos = np.asarray(self.robot_spec.init_qpos, dtype=np.float64)
            if self.camera_mode == "variant":
                qpos[-2] += -0.025
                qpos[-1] += 0.008
            options = ResetOptions(robot_xy=options.robot_xy, robot_quat=options.robot_quat,
                                   robot_qpos=list(qpos), obj=options.obj)
        super().initialize_robot(options)

    def initialize_episode(self, options: ResetOptions, construction: bool) -> None:
        super().initialize_episode(options, construction)
        qpos = np.zeros(self.cabinet.dof)
        init = options.obj.get("cabinet_init_qpos", 0.2 if self.closing else self.default_cabinet_qpos)
        if init is not None:
            if np.isscalar(init):
                qpos[self.joint_idx] = float(init)
            else:
                qpos = np.asarray(init, dtype=np.float64)
        self.cabinet.set_qpos(qpos)

    def drawer_qpos(self) -> float:
        return float(self.cabinet.get_qpos()[self.joint_idx])

    def evaluate(self) -> dict[str, Any]:
        q = self.drawer_qpos()
        self.episode_stats["qpos"] = f"{q:.3f}"
        if self.closing:
            success = q <= 0.05
        else:
            self.opened_once = self.opened_once or q >= 0.15
            success = self.opened_once if self.sticky_open else q >= 0.15
        return {"success": bool(success), "qpos": q, "episode_stats": dict(self.episode_stats)}

    def instruction(self) -> str:
        if isinstance(self.instruction_text, str):
            return self.instruction_text
        return f"{'close' if self.closing else 'open'} {self.drawer_id} drawer"

    def task_actors(self) -> list[Any]:
        return []

    def privileged(self) -> dict[str, Any]:
        out = super().privileged()
        out["cabinet"] = {"qpos": [float(v) for v in self.cabinet.get_qpos()], "joints": self.joint_names,
                          "target_joint": self.joint_idx}
        return out


class PlaceInDrawerEnv(DrawerEnv):
    """Open the (closed) drawer, then put the object into it (two subtasks)."""

    contact_offset = 0.005
    model_json = "info_pick_custom_baked_tex_v1.json"
    force_advance_step = 100

    def __init__(self, episode: dict[str, Any], pack: Any, **kw: Any):
        super().__init__(episode, pack, **kw)
        self.model_json = (episode.get("objects") or {}).get("model_json", self.model_json)
        ids = self.kwargs.get("model_ids")
        if ids is None:
            raise NotImplementedError("PlaceIntoClosedDrawer without model_ids (random model) is not replicated")
        self.model_id = ids if isinstance(ids, str) else ids[0]
        self.obj: Any = None

    def load_objects(self) -> None:
        self.db = S.ModelDB(self.pack, self.model_json)
        scales = self.db.scales(self.model_id)
        if len(scales) > 1:
            raise NotImplementedError(f"{self.model_id}: several scales {scales}; the RNG draw is not replicated")
        self.obj, info = S.load_object(self.scene, self.pack, self.model_id, float(scales[0]),
                                       self.db[self.model_id].get("density", 1000))
        self._note_object(info)
        self.obj.set_damping(0.1, 0.1)

    def reset_task_state(self) -> None:
        self.cur_subtask = 0
        self.episode_stats = OrderedDict(qpos=0.0, is_drawer_open=False, has_contact=0)

    def initialize_objects(self, options: ResetOptions) -> None:
        import sapien.core as sapien

        xy = options.obj.get("init_xy")
        if xy is None:
            xy = self._episode_rng.uniform([-0.10, -0.00], [-0.05, 0.1], [2])
        z = options.obj.get("init_z", self.table_height) + 0.5
        self.obj.set_pose(sapien.Pose(np.hstack([xy, z]), options.obj.get("init_rot_quat", [1, 0, 0, 0])))
        self.park_robot()
        self.obj.lock_motion(0, 0, 0, 1, 1, 0)
        self.settle(0.5)
        self.obj.lock_motion(0, 0, 0, 0, 0, 0)
        self.obj.set_pose(self.obj.pose)
        self.obj.set_velocity(np.zeros(3))
        self.obj.set_angular_velocity(np.zeros(3))
        self.settle(0.5)
        if np.linalg.norm(self.obj.velocity) > 1e-3 or np.linalg.norm(self.obj.angular_velocity) > 1e-2:
            self.settle(1.5)
        self.obj_height_after_settle = float(self.obj.pose.p[2])

    def step(self, action: np.ndarray) -> dict[str, Any]:
        if self.elapsed_steps >= self.force_advance_step:
            self.advance_to_next_subtask()
        return super().step(action)

    def evaluate(self) -> dict[str, Any]:
        from mani_skill2.utils.sapien_utils import compute_total_impulse

        q = self.drawer_qpos()
        stats = self.episode_stats
        stats["qpos"] = q
        stats["is_drawer_open"] = bool(stats["is_drawer_open"] or q >= 0.15)
        bottom = self.drawer_link.get_collision_shapes()[2]
        contacts = contacts_with_shape(self.scene.get_contacts(), self.obj, self.drawer_link, bottom)
        touched = bool(np.linalg.norm(compute_total_impulse(contacts)) > 1e-6)
        stats["has_contact"] += int(touched)
        success = self.cur_subtask == 1 and q >= 0.05 and stats["has_contact"] >= 1
        return {"success": bool(success), "qpos": q, "subtask": self.cur_subtask, "episode_stats": dict(stats)}

    def advance_to_next_subtask(self) -> None:
        self.cur_subtask = 1

    def is_final_subtask(self) -> bool:
        return self.cur_subtask == 1

    def instruction(self) -> str:
        if isinstance(self.instruction_text, str):
            return self.instruction_text
        if isinstance(self.instruction_text, list):
            return str(self.instruction_text[min(self.cur_subtask, len(self.instruction_text) - 1)])
        if self.cur_subtask == 0:
            return f"open {self.drawer_id} drawer"
        return f"place {instruction_object_name(self.model_id)} into {self.drawer_id} drawer"

    def task_actors(self) -> list[Any]:
        return [self.obj]


def contacts_with_shape(contacts: list[Any], actor0: Any, actor1: Any, shape1: Any) -> list[tuple[Any, bool]]:
    """(contact, actor0-first) pairs between two actors whose second collision shape is ``shape1``
    (upstream filters on ``contact.collision_shape1`` before matching the actor order)."""
    out = []
    for c in contacts:
        if c.collision_shape1 != shape1:
            continue
        if c.actor0 == actor0 and c.actor1 == actor1:
            out.append((c, True))
        elif c.actor0 == actor1 and c.actor1 == actor0:
            out.append((c, False))
    return out


class AltCloseAfterGrabEnv(PlaceInDrawerEnv):
    """Instruct AltClose...DrawerInLongStep2: an object is dropped onto the cabinet, the target
    drawer starts open 0.2 m; success = that drawer closed (<= 0.05 m) at the final step."""

    def evaluate(self) -> dict[str, Any]:
        q = self.drawer_qpos()
        self.episode_stats["qpos"] = f"{q:.3f}"
        return {"success": bool(q <= 0.05), "qpos": q, "episode_stats": dict(self.episode_stats)}


class AltPutIntoOpenDrawerEnv(PlaceInDrawerEnv):
    """Instruct AltCloseDrawerInLongStep1: the top drawer starts open 0.15 m; success = the object
    has touched the drawer bottom (shape #2) at least once. Closing is not checked (upstream)."""

    default_cabinet_qpos = (0.15, 0.0, 0.0)

    def evaluate(self) -> dict[str, Any]:
        from mani_skill2.utils.sapien_utils import compute_total_impulse

        q = self.drawer_qpos()
        stats = self.episode_stats
        stats["qpos"] = f"{q:.3f}"
        bottom = self.drawer_link.get_collision_shapes()[2]
        contacts = contacts_with_shape(self.scene.get_contacts(), self.obj, self.drawer_link, bottom)
        stats["has_contact"] += int(np.linalg.norm(compute_total_impulse(contacts)) > 1e-6)
        return {"success": bool(stats["has_contact"] >= 1), "qpos": q, "episode_stats": dict(stats)}

"""Grasp-single family (pick coke can and its Instruct relatives), Google robot.

Upstream facts (ManiSkill2_real2sim envs/custom_scenes/grasp_single_in_scene.py; simplerenv.md §1.5):

* The object drops from table height + 0.5 m with x/y rotation locked, settles 0.5 s, is
  unlocked and settles 0.5 s more (+1.5 s if still moving); its settled height is recorded.
  Distractors then drop around it and settle the same way.
* Orientation kwargs: ``upright`` = euler(pi/2, 0, 0), ``laid_vertically`` = euler(0, 0, pi/2),
  ``lr_switch`` = euler(0, 0, pi); none given: drawn from the episode RNG at reset.
* Success = ``lifted_object`` (grasped with max angle 80 deg, more than 1 cm above the settled
  height and touching nothing but robot links; cleared when the grasp is lost) or, latched,
  at least 5 steps lifted more than 2 cm (``n_lift_significant``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from vlaeval.suites.simpler import scenes as S
from vlaeval.suites.simpler.tasks.base import (
    CONSTRUCTION_SEED,
    ResetOptions,
    TaskEnv,
    contacts_other_than,
    instruction_object_name,
)

ORIENTATIONS = ("upright", "laid_vertically", "lr_switch")  # upstream dict order (RNG draws index it)


def orientation_quat(name: str) -> np.ndarray:
    from transforms3d.euler import euler2quat

    table = {"upright": (np.pi / 2, 0, 0), "laid_vertically": (0, 0, np.pi / 2), "lr_switch": (0, 0, np.pi)}
    return np.asarray(euler2quat(*table[name]))


class GraspSingleEnv(TaskEnv):
    """One target object (+ optional distractors) to lift; see the module docstring.

    ``distractors``: fixed distractor ids (SimplerEnv-Instruct envs); ``distractor_configs``:
    the VA distractor env's ``distractor_config`` table. ``model_scale``: an env-forced scale
    (Instruct plum 1.3, pumpkin 0.6, ...). ``evaluated_orientation``: an orientation the env
    forces only when the evaluator passes object options (Instruct pear: upright).
    ``instruction_text``: the env's fixed instruction (Instruct envs); default ``pick <object>``.
    """

    def __init__(self, episode: dict[str, Any], pack: Any, *, model_id: str,
                 model_json: str = "info_pick_custom_v0.json", instruct_override: bool = False,
                 distractors: list[str] | None = None, distractor_configs: dict[str, list[str]] | None = None,
                 model_scale: float | None = None, evaluated_orientation: str | None = None,
                 instruction_text: str | None = None, **kw: Any):
        super().__init__(episode, pack, **kw)
        self.model_id = model_id
        self.model_json = model_json
        self.instruct_override = instruct_override
        self.model_scale = model_scale
        self.evaluated_orientation = evaluated_orientation
        self.instruction_text = instruction_text
        self.obj: Any = None
        self.distractors: list[Any] = []
        k = self.kwargs
        if k.get("upright"):
            self.orientation: str | None = "upright"
        elif k.get("laid_vertically"):
            self.orientation = "laid_vertically"
        elif k.get("lr_switch"):
            self.orientation = "lr_switch"
        else:
            self.orientation = None
        if distractors is not None:
            self.distractor_ids = list(distractors)
        elif distractor_configs:
            self.distractor_ids = list(distractor_configs[k.get("distractor_config", "less")])
        else:
            self.distractor_ids = []

    @property
    def reconfigures_every_reset(self) -> bool:
        # upstream passes distractor ids at every reset, which rebuilds the scene each time
        return bool(self.distractor_ids)

    # -- build ----------------------------------------------------------------------------
    def load_objects(self) -> None:
        self.db = S.ModelDB(self.pack, self.model_json, self.instruct_override)
        info = self.db[self.model_id]
        scale = self.model_scale if self.model_scale is not None else self._pick_scale(self.model_id)
        self.scale = scale
        self.obj, oinfo = S.load_object(self.scene, self.pack, self.model_id, scale, info.get("density", 1000))
        self._note_object(oinfo)
        self.distractors = []
        for did in self.distractor_ids:
            actor, dinfo = S.load_object(self.scene, self.pack, did, self._pick_scale(did),
                                         self.db[did].get("density", 1000))
            self._note_object(dinfo)
            self.distractors.append(actor)
        self.obj.set_damping(0.1, 0.1)

    def _pick_scale(self, model_id: str) -> float:
        scales = self.db.scales(model_id)
        if len(scales) > 1:
            raise NotImplementedError(f"{model_id}: several scales {scales}; the RNG draw is not replicated")
        return float(scales[0])

    def task_actors(self) -> list[Any]:
        return [self.obj, *self.distractors]

    # -- episode --------------------------------------------------------------------------
    def reset_task_state(self) -> None:
        self.consecutive_grasp = 0
        self.lifted_obj = False
        self.obj_height_after_settle: float | None = None
        self.episode_stats = OrderedDict(n_lift_significant=0, consec_grasp=False, grasped=False)

    def orientation_for_reset(self, reset_seed: int, evaluated: bool = True) -> str:
        if evaluated and self.evaluated_orientation:
            return self.evaluated_orientation
        if self.orientation is not None:
            return self.orientation
        return str(np.random.RandomState(reset_seed).choice(list(ORIENTATIONS)))

    def initialize_objects(self, options: ResetOptions) -> None:
        import sapien.core as sapien

        rng = self._episode_rng
        obj_opts = options.obj
        xy = obj_opts.get("init_xy")
        if xy is None:
            xy = rng.uniform([-0.35, -0.02], [-0.12, 0.42], [2])
        z = obj_opts.get("init_z", self.table_height) + 0.5
        q = obj_opts.get("init_rot_quat", [1, 0, 0, 0])
        self.obj.set_pose(sapien.Pose(np.hstack([xy, z]), q))
        self.park_robot()
        self.obj.lock_motion(0, 0, 0, 1, 1, 0)
        self.settle(0.5)
        self.obj.lock_motion(0, 0, 0, 0, 0, 0)
        self.obj.set_pose(self.obj.pose)  # wakes the actor
        self.obj.set_velocity(np.zeros(3))
        self.obj.set_angular_velocity(np.zeros(3))
        self.settle(0.5)
        if np.linalg.norm(self.obj.velocity) > 1e-3 or np.linalg.norm(self.obj.angular_velocity) > 1e-2:
            self.settle(1.5)
        self.obj_height_after_settle = float(self.obj.pose.p[2])
        if self.distractors:
            self._drop_distractors(np.asarray(xy, dtype=np.float64), z, q)

    def _drop_distractors(self, obj_xy: np.ndarray, z: float, q: Any) -> None:
        import sapien.core as sapien

        rng = self._episode_rng
        for d in self.distractors:
            while True:
                dxy = np.clip(obj_xy + rng.uniform(-0.3, 0.3, [2]), [-0.50, 0.05], [-0.1, 0.35])
                if np.linalg.norm(dxy - obj_xy) > 0.25:
                    break
            d.set_pose(sapien.Pose(np.hstack([dxy, z]), q))
            d.set_velocity(np.zeros(3))
            d.set_angular_velocity(np.zeros(3))
            d.lock_motion(1, 1, 0, 1, 1, 0)
            self.settle(0.5)
        for d in self.distractors:
            d.lock_motion(0, 0, 0, 0, 0, 0)
            d.set_pose(d.pose)
            d.set_velocity(np.zeros(3))
            d.set_angular_velocity(np.zeros(3))
            self.settle(0.5)
        lin = sum(np.linalg.norm(d.velocity) for d in self.distractors)
        ang = sum(np.linalg.norm(d.angular_velocity) for d in self.distractors)
        if lin > 1e-3 or ang > 1e-2:
            self.settle(1.5)

    # -- success --------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        assert self.robot is not None and self.obj_height_after_settle is not None
        contacts = self.scene.get_contacts()
        is_grasped = self.robot.check_grasp(self.obj, max_angle=80, contacts=contacts)
        free = not contacts_other_than(contacts, self.obj.name, self.robot.link_names)
        height = float(self.obj.pose.p[2]) - self.obj_height_after_settle
        return grasp_single_rule(self, is_grasped, free, height)

    # -- reset options ----------------------------------------------------------------------
    def construction_options(self) -> ResetOptions:
        quat = orientation_quat(self.orientation_for_reset(CONSTRUCTION_SEED, evaluated=False))
        return ResetOptions(obj={"init_rot_quat": list(quat)})

    def episode_options(self, episode_seed: int) -> ResetOptions:
        opts = super().episode_options(episode_seed)
        opts.obj = {**opts.obj, "init_rot_quat": list(orientation_quat(self.orientation_for_reset(episode_seed)))}
        return opts

    def instruction(self) -> str:
        if self.instruction_text is not None:
            return self.instruction_text
        return f"pick {instruction_object_name(self.obj.name if self.obj is not None else self.model_id)}"


def grasp_single_rule(state: Any, is_grasped: bool, contact_free: bool, height_gain: float,
                      require_lift: bool = True, from_episode_stats: bool = True) -> dict[str, Any]:
    """One step of upstream's grasp-single rule on ``state`` (``consecutive_grasp``,
    ``lifted_obj``, ``episode_stats``), which it updates; returns the step's info.

    ``contact_free``: the object touches nothing but robot links; ``height_gain``: its height
    above the settled height.
    """
    if is_grasped:
        state.consecutive_grasp += 1
    else:
        state.consecutive_grasp = 0
        state.lifted_obj = False
    consecutive = state.consecutive_grasp >= 5
    state.lifted_obj = bool(state.lifted_obj or (contact_free and height_gain > 0.01))
    significant = state.lifted_obj and height_gain > 0.02
    success = state.lifted_obj if require_lift else consecutive
    stats = state.episode_stats
    stats["n_lift_significant"] += int(significant)
    stats["consec_grasp"] = bool(stats["consec_grasp"] or consecutive)
    stats["grasped"] = bool(stats["grasped"] or is_grasped)
    if from_episode_stats:
        success = success or stats["n_lift_significant"] >= 5
    return {
        "is_grasped": bool(is_grasped),
        "consecutive_grasp": bool(consecutive),
        "lifted_object": bool(state.lifted_obj),
        "lifted_object_significantly": bool(significant),
        "success": bool(success),
        "episode_stats": dict(stats),
    }

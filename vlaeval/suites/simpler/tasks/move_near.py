"""Multi-object tasks: move near (Google robot) and the shared drop-and-settle of several objects.

Upstream facts (ManiSkill2_real2sim envs/custom_scenes/move_near_in_scene.py; simplerenv.md §1.3, §1.5):

* Contact offset 0.005 (avoids false-positive contacts between nearby objects).
* All objects drop together from table height + 0.5 m with x/y rotation locked, the robot
  parked away; 0.5 s settle, unlock, 0.5 s (+1.5 s if the summed speeds exceed 1e-3 / 1e-2).
  Settled positions are recorded; each object's bbox extent is rotated into the world frame
  by its settled orientation (``R @ size``, as upstream does).
* Move-near episodes: ``triplet = triplets[id // 12]``, ``(src, tgt) = pairs[id % 6]``,
  ``layout = layouts[(id % 12) // 6]``; objects keep fixed initial orientations; apple and
  orange use density 200. ``no_distractor`` spawns only source and target.
* Success (final state): others not knocked down (> -2 cm), source/target not more than 15 cm
  below their settled height, source moved > 3 cm and more than any other object, source
  within half-diagonal(target) + half-diagonal(source) + 10 cm of the target, and closer
  to it than to any other object (+1 cm).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from vlaeval.suites.simpler import scenes as S
from vlaeval.suites.simpler.tasks.base import CONSTRUCTION_SEED, ResetOptions, TaskEnv, instruction_object_name


class MultiObjectEnv(TaskEnv):
    """Several dropped objects, one source and one target (base of move-near and put-on)."""

    contact_offset = 0.005
    model_json = "info_pick_custom_v0.json"
    instruct_override = False
    special_density: dict[str, float] = {}

    def __init__(self, episode: dict[str, Any], pack: Any, **kw: Any):
        super().__init__(episode, pack, **kw)
        self.objs: list[Any] = []
        self.layout: dict[str, Any] = {}

    # subclasses: decode an episode id into {"model_ids", "xys", "quats", "source", "target"}
    def decode(self, episode_id: int) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def n_layouts(self) -> int:
        raise NotImplementedError

    def _layout(self, options: ResetOptions) -> dict[str, Any]:
        return self.decode(int(options.obj["episode_id"]))

    def construction_options(self) -> ResetOptions:
        # upstream draws the episode id from the construction-time episode RNG (seed 2022)
        return ResetOptions(obj={"episode_id": int(np.random.RandomState(CONSTRUCTION_SEED).randint(self.n_layouts))})

    def scene_key(self, options: ResetOptions) -> Any:
        return tuple(self._layout(options)["model_ids"])

    def prepare(self, options: ResetOptions) -> None:
        self.layout = self._layout(options)
        self.model_ids = list(self.layout["model_ids"])

    # -- build ----------------------------------------------------------------------------
    def load_objects(self) -> None:
        self.db = S.ModelDB(self.pack, self.model_json, self.instruct_override)
        self.objs = []
        self.scales = []
        for model_id in self.model_ids:
            scales = self.db.scales(model_id)
            if len(scales) > 1:
                raise NotImplementedError(f"{model_id}: several scales {scales}; the RNG draw is not replicated")
            density = self.special_density.get(model_id, self.db[model_id].get("density", 1000))
            actor, info = S.load_object(self.scene, self.pack, model_id, float(scales[0]), density)
            self._note_object(info)
            self.objs.append(actor)
            self.scales.append(float(scales[0]))
        self.load_static_objects()
        for obj in self.objs:
            obj.set_damping(0.1, 0.1)

    def load_static_objects(self) -> None:
        """Extra fixed props (the sink of the eggplant task)."""

    def task_actors(self) -> list[Any]:
        return list(self.objs)

    # -- episode --------------------------------------------------------------------------
    def reset_task_state(self) -> None:
        self.consecutive_grasp = 0
        self.episode_stats = self.new_episode_stats()

    def new_episode_stats(self) -> OrderedDict[str, Any]:
        return OrderedDict()

    def initialize_objects(self, options: ResetOptions) -> None:
        import sapien.core as sapien
        from transforms3d.quaternions import quat2mat

        layout = self._layout(options)
        assert [o.name for o in self.objs] == list(layout["model_ids"]), "scene built for another layout"
        self.source = self.objs[layout["source"]]
        self.target = self.objs[layout["target"]]
        sizes = [self.db.bbox_size(m, s) for m, s in zip(self.model_ids, self.scales)]
        z = options.obj.get("init_z", self.table_height) + 0.5
        for obj, xy, q in zip(self.objs, layout["xys"], layout["quats"]):
            obj.set_pose(sapien.Pose(np.hstack([xy, z]), list(q)))
            obj.lock_motion(0, 0, 0, 1, 1, 0)
        self.park_robot()
        self.settle(0.5)
        for obj in self.objs:
            obj.lock_motion(0, 0, 0, 0, 0, 0)
            obj.set_pose(obj.pose)
            obj.set_velocity(np.zeros(3))
            obj.set_angular_velocity(np.zeros(3))
        self.settle(0.5)
        lin = sum(np.linalg.norm(o.velocity) for o in self.objs)
        ang = sum(np.linalg.norm(o.angular_velocity) for o in self.objs)
        if lin > 1e-3 or ang > 1e-2:
            self.settle(1.5)
        self.xyz_after_settle = [np.array(o.pose.p, dtype=np.float64) for o in self.objs]
        self.source_xyz_after_settle = self.xyz_after_settle[layout["source"]]
        self.target_xyz_after_settle = self.xyz_after_settle[layout["target"]]
        self.source_bbox_world = quat2mat(self.source.pose.q) @ sizes[layout["source"]]
        self.target_bbox_world = quat2mat(self.target.pose.q) @ sizes[layout["target"]]

    def com_pose(self, actor: Any) -> Any:
        return actor.pose.transform(actor.cmass_local_pose)

    def object_state(self) -> dict[str, Any]:
        """Current positions for the success rules (source/target at their centre of mass)."""
        return {
            "names": [o.name for o in self.objs],
            "xyz": [np.array(o.pose.p, dtype=np.float64) for o in self.objs],
            "xyz_after_settle": self.xyz_after_settle,
            "source": self.objs.index(self.source),
            "target": self.objs.index(self.target),
            "source_com": np.array(self.com_pose(self.source).p, dtype=np.float64),
            "target_com": np.array(self.com_pose(self.target).p, dtype=np.float64),
            "source_bbox": self.source_bbox_world,
            "target_bbox": self.target_bbox_world,
        }


def move_near_rule(st: dict[str, Any]) -> dict[str, Any]:
    """Upstream's move-near rule on :meth:`MultiObjectEnv.object_state` (final-state flags)."""
    src, tgt = st["source"], st["target"]
    xyz, settled = st["xyz"], st["xyz_after_settle"]
    others = [i for i in range(len(xyz)) if i not in (src, tgt)]
    other_keep = all(xyz[i][2] - settled[i][2] > -0.02 for i in others)
    all_keep = bool(other_keep and st["source_com"][2] - settled[src][2] > -0.15
                    and st["target_com"][2] - settled[tgt][2] > -0.15)
    src_move = float(np.linalg.norm(settled[src][:2] - xyz[src][:2]))
    other_moves = [float(np.linalg.norm(settled[i][:2] - xyz[i][:2])) for i in range(len(xyz)) if i != src]
    moved_correct = bool(src_move > 0.03 and all(m < src_move for m in other_moves))
    moved_wrong = bool(any(m > 0.03 for m in other_moves) and any(m > src_move for m in other_moves))
    dist_tgt = float(np.linalg.norm(st["source_com"][:2] - st["target_com"][:2]))
    near = bool(dist_tgt < np.linalg.norm(st["target_bbox"][:2]) / 2 + np.linalg.norm(st["source_bbox"][:2]) / 2 + 0.10)
    dist_others = [float(np.linalg.norm(st["source_com"][:2] - xyz[i][:2])) for i in range(len(xyz)) if i != src]
    closest = bool(all(dist_tgt < d + 0.01 for d in dist_others))
    return {
        "all_obj_keep_height": all_keep,
        "moved_correct_obj": moved_correct,
        "moved_wrong_obj": moved_wrong,
        "near_tgt_obj": near,
        "is_closest_to_tgt": closest,
        "success": bool(all_keep and moved_correct and near and closest),
    }


# -- move near (Google robot) -------------------------------------------------------------------

def _quats() -> dict[str, list[float]]:
    from transforms3d.euler import euler2quat

    can = list(euler2quat(np.pi / 2, 0, 0))
    return {
        "blue_plastic_bottle": list(euler2quat(np.pi / 2, 0, np.pi / 2)),
        "pepsi_can": can, "7up_can": can, "coke_can": can, "redbull_can": can,
        "orange": list(euler2quat(0, 0, np.pi / 2)),
        "apple": [1.0, 0.0, 0.0, 0.0],
        "sponge": list(euler2quat(0, 0, np.pi / 2)),
    }


def _kind(model_id: str) -> str:
    """The object kind behind a model id (baked_/opened_/_v2 variants share orientations)."""
    for kind in ("blue_plastic_bottle", "pepsi_can", "7up_can", "coke_can", "redbull_can", "orange", "apple",
                 "sponge"):
        if kind in model_id:
            return kind
    raise KeyError(model_id)


class MoveNearEnv(MultiObjectEnv):
    """MoveNearGoogleInScene-v0 / MoveNearGoogleBakedTexInScene-v0 (triplets from the catalog)."""

    def __init__(self, episode: dict[str, Any], pack: Any, *, model_json: str, special_density: dict[str, float],
                 **kw: Any):
        super().__init__(episode, pack, **kw)
        self.model_json = model_json
        self.special_density = special_density
        self.spec = episode["instruction_spec"]  # triplets, pairs, layouts (catalog, = upstream env)
        self.no_distractor = bool(self.kwargs.get("no_distractor", False))
        self.quats = _quats()

    @property
    def n_layouts(self) -> int:
        return len(self.spec["triplets"]) * len(self.spec["pairs"]) * len(self.spec["layouts"])

    def decode(self, episode_id: int) -> dict[str, Any]:
        spec = self.spec
        triplet = list(spec["triplets"][episode_id // 12])
        src, tgt = spec["pairs"][episode_id % 6]
        xys = [list(v) for v in spec["layouts"][(episode_id % 12) // 6]]
        quats = [self.quats[_kind(m)] for m in triplet]
        if self.no_distractor:
            triplet, xys, quats = [triplet[src], triplet[tgt]], [xys[src], xys[tgt]], [quats[src], quats[tgt]]
            src, tgt = 0, 1
        return {"model_ids": triplet, "xys": xys, "quats": quats, "source": src, "target": tgt}

    def new_episode_stats(self) -> OrderedDict[str, Any]:
        return OrderedDict(all_obj_keep_height=False, moved_correct_obj=False, moved_wrong_obj=False,
                           near_tgt_obj=False, is_closest_to_tgt=False)

    def evaluate(self) -> dict[str, Any]:
        info = move_near_rule(self.object_state())
        for key in self.episode_stats:
            self.episode_stats[key] = info[key]  # this family's statistics are the current step's flags
        info["episode_stats"] = dict(self.episode_stats)
        return info

    def instruction(self) -> str:
        return (f"move {instruction_object_name(self.source.name)} near "
                f"{instruction_object_name(self.target.name)}")


# -- SimplerEnv-Instruct place-near envs ----------------------------------------------------------
#
# One fixed triplet per env; the episode id (0-11) picks one of 12 hand-written layouts
# (MM envs/custom_scenes/{free_form,situated}_instruction.py). The envs differ in two rows:
# some repeat layout 4 as 5, some layout 10 as 11 (kept, as upstream runs them).

PLACE_NEAR_ROWS = [
    ([-0.33, 0.04], [-0.33, 0.34], [-0.13, 0.19]),
    ([-0.33, 0.34], [-0.33, 0.04], [-0.13, 0.19]),
    ([-0.33, 0.34], [-0.13, 0.19], [-0.33, 0.04]),
    ([-0.33, 0.04], [-0.13, 0.19], [-0.33, 0.34]),
    ([-0.13, 0.19], [-0.33, 0.34], [-0.33, 0.04]),
    ([-0.13, 0.19], [-0.33, 0.04], [-0.33, 0.34]),
    ([-0.13, 0.04], [-0.33, 0.19], [-0.13, 0.34]),
    ([-0.33, 0.19], [-0.13, 0.04], [-0.13, 0.34]),
    ([-0.33, 0.19], [-0.13, 0.34], [-0.13, 0.04]),
    ([-0.13, 0.04], [-0.13, 0.34], [-0.33, 0.19]),
    ([-0.13, 0.34], [-0.33, 0.19], [-0.13, 0.04]),
    ([-0.13, 0.34], [-0.13, 0.04], [-0.33, 0.19]),
]


def place_near_rows(dup_4_5: bool, dup_10_11: bool) -> list[tuple[list[float], ...]]:
    rows = list(PLACE_NEAR_ROWS)
    if dup_4_5:
        rows[5] = rows[4]
    if dup_10_11:
        rows[11] = rows[10]
    return rows


def place_near_configs() -> dict[str, dict[str, Any]]:
    from transforms3d.euler import euler2quat

    up = list(euler2quat(np.pi / 2, 0, 0))
    yaw90 = list(euler2quat(0, 0, np.pi / 2))
    bottle = list(euler2quat(np.pi / 2, 0, np.pi / 2))
    ident = [1.0, 0.0, 0.0, 0.0]
    flip = [0.0, 0.0, 0.0, 1.0]
    sponge_bottle_orange = dict(triplet=["baked_sponge", "blue_plastic_bottle", "orange"],
                                quats=[yaw90, bottle, yaw90], density={"orange": 200},
                                json="info_pick_custom_baked_tex_v0.json")
    return {
        "FreePlaceLemonNearPearEnv": dict(triplet=["custom_lemon", "custom_pear", "baked_sponge_v2"], source=0,
                                          target=1, quats=[up, up, yaw90], density={"custom_lemon": 200},
                                          json="info_pick_custom_v1.json", rows=place_near_rows(True, False)),
        "FreePlaceLNearVEnv": dict(triplet=["V", "L", "A"], source=1, target=0, quats=[yaw90] * 3,
                                   density={"A": 200}, json="info_pick_custom_v1.json",
                                   rows=place_near_rows(False, False)),
        "FreePlaceLNearAEnv": dict(triplet=["A", "L", "V"], source=1, target=0, quats=[yaw90] * 3,
                                   density={"A": 200}, json="info_pick_custom_v1.json",
                                   rows=place_near_rows(False, False)),
        "FreePlaceBottleNearOrangeEnv": dict(sponge_bottle_orange, source=1, target=2,
                                             rows=place_near_rows(False, True)),
        "FreePlaceMugNearPlaystationEnv": dict(triplet=["pot", "coffee_mug", "play_station"], source=1, target=2,
                                               quats=[flip, flip, list(euler2quat(np.pi / 2, -np.pi / 2, 0))],
                                               density={"play_station": 200}, json="info_pick_custom_v1.json",
                                               rows=place_near_rows(False, True)),
        "AltPlaceAppleNearOrangeCanEnv": dict(triplet=["baked_apple", "baked_opened_pepsi_can", "baked_sponge"],
                                              source=0, target=1, quats=[ident, up, yaw90],
                                              density={"baked_apple": 200}, json="info_pick_custom_baked_tex_v0.json",
                                              rows=place_near_rows(True, True)),
        "AltPlaceBottleNearSpongeEnv": dict(sponge_bottle_orange, source=1, target=0, rows=place_near_rows(True, True)),
        "AltPlaceBottleNearOrangeEnv": dict(sponge_bottle_orange, source=1, target=2, rows=place_near_rows(True, True)),
    }


class PlaceNearEnv(MultiObjectEnv):
    """An Instruct place-near env: fixed triplet and pair, 12 layouts, the env's own instruction."""

    def __init__(self, episode: dict[str, Any], pack: Any, *, config: dict[str, Any], **kw: Any):
        super().__init__(episode, pack, **kw)
        self.cfg = config
        self.model_json = config["json"]
        self.special_density = config["density"]

    @property
    def n_layouts(self) -> int:
        return len(self.cfg["rows"])

    def construction_options(self) -> ResetOptions:
        return ResetOptions(obj={"episode_id": 0})  # these envs default the id to 0

    def decode(self, episode_id: int) -> dict[str, Any]:
        cfg = self.cfg
        return {"model_ids": list(cfg["triplet"]), "xys": [list(v) for v in cfg["rows"][episode_id % 12]],
                "quats": [list(q) for q in cfg["quats"]], "source": cfg["source"], "target": cfg["target"]}

    new_episode_stats = MoveNearEnv.new_episode_stats
    evaluate = MoveNearEnv.evaluate

    def instruction(self) -> str:
        return str(self.episode["instruction"])

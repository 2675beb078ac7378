"""Bridge (WidowX) put-on tasks: spoon on towel, carrot on plate, stack cubes, eggplant in basket.

Upstream facts (ManiSkill2_real2sim envs/custom_scenes/put_on_in_scene.py; simplerenv.md §1.3, §1.5):

* Episode id ``k`` of ``len(xy_configs) * len(quat_configs)`` picks
  ``xy_configs[(k % n) // len(quat_configs)]`` and ``quat_configs[k % len(quat_configs)]``.
  Spoon/carrot: source/target at two different corners of a 2x2 grid (centre (-0.16, 0),
  half edge 0.075) = 12 ordered pairs x 2 source yaws. Cubes: grids of half edge 0.05 and
  0.1 = 24 pairs, one orientation. Eggplant: 8 positions (2 x 4 around (-0.105, 0.206)) x
  3 yaws (0, +-pi/4), target the invisible plane at (-0.125, 0.025); a fixed sink prop.
* Success (final state): source centre within the target's world-bbox half diagonal + 3 mm
  in xy, 0 < z gap <= 2 cm above the stacked half heights; "strict" also requires that the
  source touches nothing but the target and robot links. Spoon: not strict. Eggplant: not
  strict, z tolerance 6 cm. Partial metric: ``is_src_obj_grasped`` (sticky).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from vlaeval.suites.simpler import scenes as S
from vlaeval.suites.simpler.tasks.base import contacts_other_than
from vlaeval.suites.simpler.tasks.move_near import MultiObjectEnv


def _grid(center: tuple[float, float], half_x: float, half_y: float) -> np.ndarray:
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]) * 2 - 1
    return corners * np.array([half_x, half_y])[None] + np.asarray(center)[None]


def corner_pairs(center: tuple[float, float], halves: list[tuple[float, float]]) -> list[np.ndarray]:
    """Ordered pairs of distinct grid corners (source, target), grid by grid."""
    out = []
    for hx, hy in halves:
        grid = _grid(center, hx, hy)
        for i, a in enumerate(grid):
            for j, b in enumerate(grid):
                if i != j:
                    out.append(np.array([a, b]))
    return out


def corner_quads(center: tuple[float, float], halves: list[tuple[float, float]]) -> list[np.ndarray]:
    """Ordered (source, target) corner pairs, each followed by the two remaining corners."""
    out = []
    for hx, hy in halves:
        grid = _grid(center, hx, hy)
        for i in range(4):
            for j in range(4):
                if i != j:
                    rest = [grid[k] for k in range(4) if k not in (i, j)]
                    out.append(np.array([grid[i], grid[j], *rest]))
    return out


def bridge_layouts(env_id: str) -> dict[str, Any]:
    """Source/target ids, xy configs, quat configs, instruction and rule of a Bridge env."""
    from transforms3d.euler import euler2quat

    ident = [1.0, 0.0, 0.0, 0.0]
    if env_id == "PutSpoonOnTableClothInScene-v0":
        return dict(source="bridge_spoon_generated_modified", target="table_cloth_generated_shorter",
                    xy=corner_pairs((-0.16, 0.0), [(0.075, 0.075)]),
                    quat=[np.array([ident, ident]), np.array([euler2quat(0, 0, np.pi / 2), ident])],
                    instruction="put the spoon on the towel", strict=False, z_offset=0.02)
    if env_id == "PutCarrotOnPlateInScene-v0":
        return dict(source="bridge_carrot_generated_modified", target="bridge_plate_objaverse_larger",
                    xy=corner_pairs((-0.16, 0.0), [(0.075, 0.075)]),
                    quat=[np.array([euler2quat(0, 0, np.pi), ident]), np.array([euler2quat(0, 0, -np.pi / 2), ident])],
                    instruction="put carrot on plate", strict=True, z_offset=0.02)
    if env_id == "StackGreenCubeOnYellowCubeBakedTexInScene-v0":
        return dict(source="baked_green_cube_3cm", target="baked_yellow_cube_3cm",
                    xy=corner_pairs((-0.16, 0.0), [(0.05, 0.05), (0.1, 0.1)]),
                    quat=[np.array([ident, ident])], model_json="info_bridge_custom_baked_tex_v0.json",
                    instruction="stack the green block on the yellow block", strict=True, z_offset=0.02)
    if env_id == "PutEggplantInBasketScene-v0":
        target_xy = np.array([-0.125, 0.025])
        center, half_x, half_y = (-0.105, 0.206), 0.01, 0.015
        grid = [np.array([x + center[0], y + center[1]])
                for x in np.linspace(-half_x, half_x, 2) for y in np.linspace(-half_y, half_y, 4)]
        return dict(source="eggplant", target="dummy_sink_target_plane",
                    xy=[np.stack([pos, target_xy], axis=0) for pos in grid],
                    quat=[np.array([euler2quat(0, 0, a, "sxyz"), ident]) for a in (0.0, np.pi / 4, -np.pi / 4)],
                    instruction="put eggplant into yellow basket", strict=False, z_offset=0.06,
                    sink=True)
    if env_id in ("AltPutSponeOnPlateInScene-v0", "AltPutOrangeOnPlateInScene-v0"):
        # SimplerEnv-Instruct: four objects on the 2x2 grids around (-0.18, 0.08); the Instruct
        # info JSON (its override adds orange and opened_coke_can)
        spoon = env_id.startswith("AltPutSpone")
        others = ["orange", "table_cloth_generated_shorter"] if spoon else ["bridge_spoon_generated_modified",
                                                                            "opened_coke_can"]
        return dict(source="bridge_spoon_generated_modified" if spoon else "orange",
                    target="bridge_plate_objaverse_larger", others=others,
                    xy=corner_quads((-0.18, 0.08), [(0.075, 0.1), (0.1, 0.12)]),
                    quat=[np.array([euler2quat(0, 0, np.pi), ident, ident, ident])],
                    instruct_override=True, strict=True, z_offset=0.02,
                    instruction=("put the tool that can be used to feed a baby on the plate" if spoon else
                                 "I do not want the drink, please put the fruit on the plate"))
    raise KeyError(env_id)


class PutOnBridgeEnv(MultiObjectEnv):
    model_json = "info_bridge_custom_v0.json"

    def __init__(self, episode: dict[str, Any], pack: Any, **kw: Any):
        super().__init__(episode, pack, **kw)
        cfg = bridge_layouts(episode["env_id"])
        self.cfg = cfg
        self.model_json = cfg.get("model_json", self.model_json)
        self.instruct_override = bool(cfg.get("instruct_override", False))
        if cfg.get("sink"):
            self.lighting_default = "sink"
            self.always_overlay = ("sink", "dummy_sink_target_plane")
        self.sink: Any = None

    @property
    def n_layouts(self) -> int:
        return len(self.cfg["xy"]) * len(self.cfg["quat"])

    def decode(self, episode_id: int) -> dict[str, Any]:
        cfg, n_q = self.cfg, len(self.cfg["quat"])
        xy = cfg["xy"][(episode_id % self.n_layouts) // n_q]
        quat = cfg["quat"][episode_id % n_q]
        return {"model_ids": [cfg["source"], cfg["target"], *cfg.get("others", [])], "xys": [list(v) for v in xy],
                "quats": [list(v) for v in quat], "source": 0, "target": 1}

    def load_static_objects(self) -> None:
        if not self.cfg.get("sink"):
            return
        self.sink, info = S.load_object(self.scene, self.pack, "sink", 1.0, self.db["sink"].get("density", 1000))
        self._note_object(info)

    def initialize_objects(self, options: Any) -> None:
        if self.sink is not None:
            import sapien.core as sapien

            self.park_robot()
            self.sink.set_pose(sapien.Pose([-0.16, 0.13, 0.88], [1, 0, 0, 0]))
            self.sink.lock_motion()
        super().initialize_objects(options)

    def new_episode_stats(self) -> OrderedDict[str, Any]:
        return OrderedDict(moved_correct_obj=False, moved_wrong_obj=False, is_src_obj_grasped=False,
                           consecutive_grasp=False, src_on_target=False)

    def evaluate(self) -> dict[str, Any]:
        assert self.robot is not None
        st = self.object_state()
        contacts = self.scene.get_contacts()
        grasped = self.robot.check_grasp(self.source, contacts=contacts)
        self.consecutive_grasp = self.consecutive_grasp + 1 if grasped else 0
        only_target = not contacts_other_than(contacts, self.source.name, {self.target.name, *self.robot.link_names})
        info = put_on_rule(st, grasped, self.consecutive_grasp, only_target, strict=self.cfg["strict"],
                           z_offset=self.cfg["z_offset"])
        stats = self.episode_stats
        stats["moved_correct_obj"] = info["moved_correct_obj"]
        stats["moved_wrong_obj"] = info["moved_wrong_obj"]
        stats["src_on_target"] = info["src_on_target"]
        stats["is_src_obj_grasped"] = bool(stats["is_src_obj_grasped"] or grasped)
        stats["consecutive_grasp"] = bool(stats["consecutive_grasp"] or info["consecutive_grasp"])
        info["episode_stats"] = dict(stats)
        return info

    def instruction(self) -> str:
        return str(self.cfg["instruction"])

    def task_actors(self) -> list[Any]:
        return [*self.objs, *([self.sink] if self.sink is not None else [])]


def put_on_rule(st: dict[str, Any], grasped: bool, consecutive_grasp: int, only_target_contact: bool,
                strict: bool = True, z_offset: float = 0.02) -> dict[str, Any]:
    """Upstream's put-on rule on :meth:`MultiObjectEnv.object_state` (one step's flags)."""
    src = st["source"]
    xyz, settled = st["xyz"], st["xyz_after_settle"]
    # Upstream quirk, reproduced: the source's xy travel is measured from its settled *actor
    # origin* to its current *centre of mass* (``source_obj_pose`` is the COM pose), so an object
    # whose COM is off its origin "moves" by that offset while at rest; the other objects use
    # origin to origin. Only the moved_correct/moved_wrong statistics depend on it (replay
    # parity benchmark, PutCarrotOnPlateInScene-v0).
    src_move = float(np.linalg.norm(settled[src][:2] - np.asarray(st["source_com"])[:2]))
    other_moves = [float(np.linalg.norm(settled[i][:2] - xyz[i][:2])) for i in range(len(xyz)) if i != src]
    moved_correct = bool(src_move > 0.03 and all(m < src_move for m in other_moves))
    moved_wrong = bool(any(m > 0.03 for m in other_moves) and any(m > src_move for m in other_moves))
    tgt_half = np.asarray(st["target_bbox"]) / 2
    src_half = np.asarray(st["source_bbox"]) / 2
    offset = st["source_com"] - st["target_com"]
    xy_flag = bool(np.linalg.norm(offset[:2]) <= np.linalg.norm(tgt_half[:2]) + 0.003)
    z_flag = bool(offset[2] > 0 and offset[2] - tgt_half[2] - src_half[2] <= z_offset)
    on_target = xy_flag and z_flag
    if strict:
        on_target = on_target and only_target_contact
    return {
        "moved_correct_obj": moved_correct,
        "moved_wrong_obj": moved_wrong,
        "is_src_obj_grasped": bool(grasped),
        "consecutive_grasp": bool(consecutive_grasp >= 5),
        "src_on_target": bool(on_target),
        "success": bool(on_target),
    }

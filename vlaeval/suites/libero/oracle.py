"""A privileged scripted oracle for the LIBERO suites.

It reads the simulator state that :meth:`LiberoBackend.privileged` exposes (object and
fixture poses, drawer/knob joints, the BDDL ``goal_state``), turns the goal predicates
into a plan of motion primitives and executes them with a proportional Cartesian
controller that emits LIBERO's 7-D OSC_POSE deltas (``±1`` = 5 cm / 0.5 rad per step,
gripper ``-1`` open, ``+1`` close).

Primitives: ``move``/``transit`` (up, over and down, clear of what lies on the way,
hand included), ``pick`` (center grasps across the narrow side, rim grasps on bowls,
plates and mugs, handle grasps on moka pots and pans; the side is chosen for room, reach
and wrist turn; missed grasps are retried), ``place`` (on an object, on or in a region,
in a basket, drawer or caddy, several objects spread over one target), ``push``,
``open``/``close`` a drawer (gripper turned level with the handle), ``turn on``/``turn off``
the stove (grip the knob's ridge and twist). Not covered: putting things into the
microwave (a top-down grasp cannot reach under its ceiling) and its door. Everything is
deterministic: the same privileged state gives the same action.

Region sites (``basket_1_contain_region``, ``flat_stove_1_cook_region``...) come from
``privileged["sites"]`` when the backend provides them; otherwise from the object
geometry below (measured once on the LIBERO assets) and, for regions of the table,
from the task's BDDL file in the ``libero`` environment.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Generator, Iterable

import numpy as np

from vlaeval.suites import oracle_geometry as shared_geometry

VERSION = "2"
POS_SCALE = 0.05  # metres per unit action
ROT_SCALE = 0.5  # radians per unit action
OPEN, CLOSE = -1.0, 1.0

Action = np.ndarray
Skill = Generator[Action, None, Any]


# -- geometry helpers ------------------------------------------------------------
def quat_to_mat(q_xyzw: Iterable[float]) -> np.ndarray:
    return shared_geometry.quat_to_mat(q_xyzw, "xyzw")


def rotvec(R: np.ndarray) -> np.ndarray:
    """Axis * angle of a rotation matrix."""
    return shared_geometry.rotvec(R)


def rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def wrap_half(angle: float) -> float:
    """The gripper is symmetric under a half turn: map to (-pi/2, pi/2]."""
    angle = wrap(angle)
    if angle > math.pi / 2:
        angle -= math.pi
    elif angle <= -math.pi / 2:
        angle += math.pi
    return angle


def closing_yaw(direction_xy: np.ndarray) -> float:
    """Gripper yaw whose finger-closing axis lies along ``direction_xy``.

    At yaw 0 (the start pose, gripper pointing down) the fingers close along world y;
    yaw ``t`` turns that axis to ``(-sin t, cos t)``.
    """
    dx, dy = float(direction_xy[0]), float(direction_xy[1])
    return wrap_half(math.atan2(-dx, dy))


def category(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


# -- object and fixture knowledge ----------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """Collision-geometry box of an object in its own frame, and how to grasp it."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    grasp: str = "center"  # "center" | "rim" | "handle"
    depth: float = 0.03  # center grasps: how far below the top the fingers close
    rim: float = 0.0  # rim grasps: radius of the wall, and height of the grasp above the bottom
    rim_height: float = 0.03
    axis: int | None = None  # rim grasps: local axis (0 x, 1 y) along which to take the wall
    handle: tuple[float, float, float] | None = None  # handle grasps: point in the object frame


SHAPES: dict[str, Shape] = {
    # bowls, ramekins, mugs: fingers straddle the wall
    "akita_black_bowl": Shape((-0.054, -0.054, 0.002), (0.053, 0.053, 0.052), "rim", rim=0.045, rim_height=0.03),
    "glazed_rim_porcelain_ramekin": Shape((-0.045, -0.044, 0.001), (0.045, 0.045, 0.043), "rim", rim=0.04, rim_height=0.03),
    "porcelain_mug": Shape((-0.065, -0.049, 0.002), (0.06, 0.047, 0.108), "rim", rim=0.043, rim_height=0.085, axis=1),
    "white_yellow_mug": Shape((-0.071, -0.053, 0.0), (0.068, 0.053, 0.103), "rim", rim=0.047, rim_height=0.08, axis=1),
    "red_coffee_mug": Shape((-0.061, -0.047, -0.002), (0.062, 0.046, 0.131), "rim", rim=0.042, rim_height=0.105, axis=1),
    # boxes, cans, bottles: fingers close across the narrow side
    "plate": Shape((-0.068, -0.068, -0.003), (0.07, 0.069, 0.016), "rim", rim=0.062, rim_height=0.012),
    "cookies": Shape((-0.031, -0.041, -0.009), (0.031, 0.041, 0.009)),
    "cream_cheese": Shape((-0.041, -0.021, -0.009), (0.041, 0.021, 0.009)),
    "butter": Shape((-0.038, -0.02, -0.009), (0.038, 0.02, 0.009)),
    "chocolate_pudding": Shape((-0.041, -0.023, -0.013), (0.04, 0.023, 0.014)),
    "alphabet_soup": Shape((-0.031, -0.039, -0.035), (0.031, 0.038, 0.028)),
    "tomato_sauce": Shape((-0.031, -0.039, -0.034), (0.031, 0.038, 0.028)),
    "salad_dressing": Shape((-0.027, -0.073, -0.018), (0.025, 0.073, 0.018)),
    "ketchup": Shape((-0.028, -0.072, -0.018), (0.029, 0.073, 0.019)),
    "bbq_sauce": Shape((-0.023, -0.015, -0.055), (0.023, 0.015, 0.052)),
    "milk": Shape((-0.026, -0.07, -0.026), (0.027, 0.061, 0.026)),
    "orange_juice": Shape((-0.027, -0.07, -0.026), (0.026, 0.061, 0.026)),
    "wine_bottle": Shape((-0.021, -0.022, 0.001), (0.022, 0.022, 0.158), depth=0.035),
    "black_book": Shape((-0.015, -0.067, 0.002), (0.014, 0.043, 0.137), depth=0.03),
    "moka_pot": Shape((-0.041, -0.056, -0.066), (0.041, 0.091, 0.086), "handle", handle=(0.0, 0.075, 0.06)),
    "chefmate_8_frypan": Shape((-0.097, -0.103, 0.001), (0.259, 0.101, 0.059), "handle", handle=(0.2, 0.0, 0.04)),
    "basket": Shape((-0.084, -0.079, 0.004), (0.085, 0.079, 0.146)),
}
PUSHED: set[str] = set()  # objects moved by pushing rather than carried
DEFAULT_SHAPE = Shape((-0.03, -0.03, -0.03), (0.03, 0.03, 0.03))

# Regions attached to a fixture or object: offset in its frame, half-size, drawer joint.
_CABINET = {
    "top_side": ((0.004, 0.016, 0.222), (0.125, 0.094, 0.0015), None),
    "top_region": ((0.003, 0.011, 0.186), (0.030, 0.076, 0.102), "top_level"),
    "middle_region": ((0.003, 0.011, 0.117), (0.030, 0.076, 0.102), "middle_level"),
    "bottom_region": ((0.003, 0.011, 0.047), (0.030, 0.076, 0.102), "bottom_level"),
}
ATTACHED_SITES: dict[str, dict[str, tuple[tuple[float, ...], tuple[float, ...], str | None]]] = {
    "wooden_cabinet": _CABINET,
    "white_cabinet": _CABINET,
    "flat_stove": {"cook_region": ((0.15, 0.0, 0.0), (0.075, 0.075, 0.0025), None)},
    "wine_rack": {"top_region": ((0.0, -0.08, 0.217), (0.101, 0.022, 0.0025), None)},
    "microwave": {
        "heating_region": ((0.0, 0.01, 0.096), (0.12, 0.0835, 0.08), None),
        "top_side": ((0.0, 0.01, 0.2), (0.12, 0.0835, 0.005), None),
    },
    "desk_caddy": {
        "back_contain_region": ((0.034, -0.001, 0.086), (0.028, 0.062, 0.060), None),
        "front_contain_region": ((-0.031, -0.001, 0.041), (0.028, 0.036, 0.062), None),
        "left_contain_region": ((0.006, 0.146, 0.066), (0.062, 0.062, 0.060), None),
        "right_contain_region": ((0.006, -0.143, 0.066), (0.062, 0.062, 0.060), None),
    },
    "basket": {"contain_region": ((0.0, 0.0, 0.072), (0.061, 0.061, 0.069), None)},
}
# Fixture collision boxes in their own frame (drawers and doors closed), and drawer geometry.
FIXTURE_BOXES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "wooden_cabinet": ((-0.123, -0.109, 0.0), (0.131, 0.112, 0.223)),
    "white_cabinet": ((-0.123, -0.109, 0.0), (0.131, 0.112, 0.223)),
    "flat_stove": ((-0.052, -0.095, -0.02), (0.245, 0.095, 0.05)),
    "wine_rack": ((-0.134, -0.124, 0.0), (0.134, 0.129, 0.328)),
    "desk_caddy": ((-0.075, -0.217, 0.0), (0.075, 0.217, 0.168)),
    "microwave": ((-0.175, -0.09, 0.0), (0.173, 0.111, 0.19)),
}
DRAWER_INTERIOR = ((-0.095, -0.064), (0.102, 0.087))  # drawer frame (x, y) at joint 0, inside the walls
WORKSPACE_CENTER = np.array([-0.1, 0.0])
MAX_GRASP_WIDTH = 0.075  # what fits between the open fingers
FINGER_OPEN, FINGER_STEP = 0.04, 0.0047  # finger travel when open, and per closing step
HAND_BOTTOM, HAND_TOP = 0.03, 0.123  # the hand's collision box above the grip point
HAND_HALF_LENGTH, HAND_HALF_WIDTH = 0.10, 0.033  # where the arm (base near x = -0.66) moves best  # drawer interior across the cabinet (cabinet frame x)
DRAWER_LEVELS = {"top_level": 0.184, "middle_level": 0.110, "bottom_level": 0.041}
DRAWER_HANDLE_Y = -0.1016  # handle bar, drawer-frame y (the drawer slides along its frame's y)
DRAWER_OPEN = -0.15  # joint value when pulled out (open below -0.14, closed above 0)
RETRY_ROUNDS = 2  # re-plan the goals that do not hold after a pass, while time is left
STOVE_KNOB_ON = 0.5  # the stove is on for knob angles >= 0.5 rad
STOVE_KNOB = (0.0, 0.0, 0.035)  # where to grip the knob's ridge, stove frame
MICROWAVE_HINGE = (-0.1725, -0.088, 0.096)  # door hinge, microwave frame; door lies along +x when closed
MICROWAVE_DOOR_WIDTH = 0.24


@lru_cache(maxsize=64)
def bddl_table_regions(bddl_path: str) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
    """``{<table>_<region>: ((cx, cy), (hx, hy))}`` for regions defined by ranges on a table."""
    try:
        text = Path(bddl_path).read_text()
    except OSError:
        return {}
    out = {}
    pattern = re.compile(
        r"\(\s*(\w+)\s*\(:target\s+(\w+)\)\s*\(:ranges\s*\(\s*\(\s*([-\d.e]+)\s+([-\d.e]+)\s+([-\d.e]+)\s+([-\d.e]+)\s*\)"
    )
    for name, target, x0, y0, x1, y1 in pattern.findall(text):
        x0, y0, x1, y1 = map(float, (x0, y0, x1, y1))
        out[f"{target}_{name}"] = (((x0 + x1) / 2, (y0 + y1) / 2), (abs(x1 - x0) / 2, abs(y1 - y0) / 2))
    return out


def find_bddl(info: dict[str, Any]) -> str | None:
    """The task's BDDL file inside the ``libero`` backend environment, if it is there."""
    try:
        from vlaeval.harness.envs import envs_dir
        from vlaeval.suites.libero import catalog
    except Exception:
        return None
    bench = (info.get("protocol") or {}).get("benchmark") or str(info.get("suite", "")).replace("-", "_")
    index = info.get("task_index")
    tasks = catalog()["benchmarks"].get(bench, [])
    task = next((t for t in tasks if t["index"] == index), None)
    if task is None:
        return None
    for site in sorted((envs_dir() / "libero" / "lib").glob("python*/site-packages/libero/libero/bddl_files")):
        path = site / task["problem_folder"] / task["bddl_file"]
        if path.exists():
            return str(path)
    return None


# -- the scene as the oracle sees it ---------------------------------------------------
@dataclass
class Box:
    """An object's collision box in the world: center, extents, axes."""

    center: np.ndarray  # world center of the box
    top: float
    bottom: float
    axes: np.ndarray  # (3, 2): horizontal directions (unit xy) of the object's two horizontal axes
    extents: np.ndarray  # (2,): full widths along those axes
    up: int  # index of the local axis that points (most) up
    horizontal: tuple[int, int]


@dataclass
class Obstacle:
    """An upright box in the world: what the fingers and hand must keep clear of."""

    name: str
    center: np.ndarray  # (2,)
    axes: np.ndarray  # (2, 2): columns are the box's horizontal axes
    half: np.ndarray  # (2,)
    bottom: float
    top: float
    container: bool = False  # an open box (drawer): points inside are fine, its walls are not

    def contains(self, point: np.ndarray) -> bool:
        local = self.axes.T @ (np.asarray(point[:2], dtype=float) - self.center)
        return bool(np.all(np.abs(local) <= self.half))

    def distance(self, point: np.ndarray, z: float | None = None) -> float:
        """Horizontal clearance from ``point`` to the box.

        Inside a container reached from above (``z`` not below its floor), the distance to
        its walls; anywhere else inside, minus the depth.
        """
        local = self.axes.T @ (np.asarray(point[:2], dtype=float) - self.center)
        outside = np.maximum(np.abs(local) - self.half, 0.0)
        if np.any(outside > 0):
            return float(np.linalg.norm(outside))
        inner = float(np.min(self.half - np.abs(local)))
        from_above = z is None or z >= self.bottom - 0.01
        return inner if self.container and from_above else -inner


class Scene:
    def __init__(self, priv: dict[str, Any], table_regions: dict[str, Any] | None = None):
        self.priv = priv
        self.objects: dict[str, Any] = priv.get("objects", {})
        self.fixtures: dict[str, Any] = priv.get("fixtures", {})
        self.sites: dict[str, Any] = priv.get("sites", {}) or priv.get("regions", {}) or {}
        self.table_regions = table_regions or {}
        self.eef = np.asarray(priv["eef_pos"], dtype=float)
        self.eef_R = quat_to_mat(priv["eef_quat"])
        self.gripper = np.asarray(priv.get("gripper_qpos", [0.04, -0.04]), dtype=float)

    # poses
    def has(self, name: str) -> bool:
        return name in self.objects or name in self.fixtures

    def pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        entry = self.objects.get(name) or self.fixtures.get(name)
        if entry is None or "pos" not in entry:
            raise KeyError(name)
        return np.asarray(entry["pos"], dtype=float), quat_to_mat(entry.get("quat", (0, 0, 0, 1)))

    def pos(self, name: str) -> np.ndarray:
        return self.pose(name)[0]

    def joint(self, fixture: str, suffix: str) -> float | None:
        joints = self.fixtures.get(fixture, {}).get("joints", {})
        for name, value in joints.items():
            if name.endswith(suffix):
                return float(value)
        return None

    def box(self, name: str) -> Box:
        pos, R = self.pose(name)
        shape = SHAPES.get(category(name), DEFAULT_SHAPE)
        lo, hi = np.asarray(shape.lo), np.asarray(shape.hi)
        corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
        world = corners @ R.T + pos
        up = int(np.argmax(np.abs(R[2, :])))
        horizontal = tuple(i for i in range(3) if i != up)
        axes = np.zeros((3, 2))
        for k, i in enumerate(horizontal):
            d = R[:, i].copy()
            d[2] = 0.0
            axes[:, k] = d / (np.linalg.norm(d) or 1.0)
        extents = np.array([hi[i] - lo[i] for i in horizontal])
        center = R @ ((lo + hi) / 2) + pos
        return Box(center, float(world[:, 2].max()), float(world[:, 2].min()), axes, extents, up, horizontal)

    def obstacles(self, exclude: Iterable[str] = ()) -> list[Obstacle]:
        excluded = set(exclude)
        out: list[Obstacle] = []
        for name in self.objects:
            if name in excluded or category(name) not in SHAPES:
                continue
            box = self.box(name)
            out.append(Obstacle(name, box.center[:2].copy(), box.axes[:2, :].copy(), box.extents / 2,
                                box.bottom, box.top))
        for name in self.fixtures:
            if name in excluded or category(name) not in FIXTURE_BOXES:
                continue
            try:
                pos, R = self.pose(name)
            except KeyError:
                continue
            lo, hi = (np.asarray(v, dtype=float) for v in FIXTURE_BOXES[category(name)])
            yaw = math.atan2(R[1, 0], R[0, 0])
            axes = rot_z(yaw)[:2, :2]
            center = pos[:2] + axes @ ((lo[:2] + hi[:2]) / 2)
            out.append(Obstacle(name, center, axes, (hi[:2] - lo[:2]) / 2, pos[2] + lo[2], pos[2] + hi[2]))
            if category(name) in ("wooden_cabinet", "white_cabinet"):
                for joint, level in DRAWER_LEVELS.items():
                    q = self.joint(name, joint) or 0.0
                    if q < -0.01:  # a drawer pulled out: an open box (its part under the top is solid)
                        dlo = np.array(DRAWER_INTERIOR[0]) + np.array([0.0, q])
                        dhi = np.array(DRAWER_INTERIOR[1]) + np.array([0.0, q])
                        out.append(Obstacle(f"{name}:{joint}", pos[:2] + axes @ ((dlo + dhi) / 2), axes,
                                            (dhi - dlo) / 2, pos[2] + level - 0.031, pos[2] + level + 0.03,
                                            container=True))
            if category(name) == "microwave":
                q = self.joint(name, "microjoint") or 0.0
                hinge = np.asarray(MICROWAVE_HINGE[:2])
                door = rot_z(q)[:2, :2] @ np.array([MICROWAVE_DOOR_WIDTH, 0.0])
                mid = pos[:2] + axes @ (hinge + door / 2)
                d_axes = axes @ rot_z(q)[:2, :2]
                out.append(Obstacle(f"{name}:door", mid, d_axes, np.array([MICROWAVE_DOOR_WIDTH / 2, 0.015]),
                                    pos[2], pos[2] + 0.19))
        return out

    def top(self, name: str) -> float:
        tops = [o.top for o in self.obstacles() if o.name == name or o.name.startswith(name + ":")]
        return max(tops) if tops else float(self.pose(name)[0][2])

    # regions
    def site(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World position, rotation and half-size of a region site."""
        if name in self.sites:
            entry = self.sites[name]
            size = np.asarray(entry.get("size", (0.05, 0.05, 0.01)), dtype=float)
            return np.asarray(entry["pos"], dtype=float), quat_to_mat(entry.get("quat", (0, 0, 0, 1))), size
        for parent in sorted(list(self.objects) + list(self.fixtures), key=len, reverse=True):
            if name.startswith(parent + "_"):
                suffix = name[len(parent) + 1:]
                table = ATTACHED_SITES.get(category(parent), {})
                if suffix in table:
                    offset, size, joint = table[suffix]
                    pos, R = self.pose(parent)
                    local = np.asarray(offset, dtype=float).copy()
                    if joint is not None:
                        local[1] += self.joint(parent, joint) or 0.0
                    return R @ local + pos, R, np.asarray(size, dtype=float)
        if name in self.table_regions:
            (cx, cy), (hx, hy) = self.table_regions[name]
            return np.array([cx, cy, self.table_height()]), np.eye(3), np.array([hx, hy, 0.007])
        raise KeyError(f"no position known for region {name!r}")

    def table_height(self) -> float:
        """The support surface: the lowest object bottom in the scene."""
        bottoms = [self.box(n).bottom for n in self.objects if category(n) in SHAPES]
        return min(bottoms) if bottoms else float(self.eef[2] - 0.3)


# -- the controller and skills ------------------------------------------------------
class Failed(Exception):
    """A step of the plan could not be completed; the episode will not succeed."""


class LiberoOracle:
    """One episode of the scripted oracle. Feed it privileged states with :meth:`act`."""

    def __init__(self, instruction: str = "", info: dict[str, Any] | None = None, gain: float = 1.5):
        self.instruction = instruction
        self.info = dict(info or {})
        self.gain = gain
        self.log: list[str] = []
        self.phase = "start"
        self.scene: Scene | None = None
        self.R0: np.ndarray | None = None
        self.pose_R: np.ndarray | None = None  # a full orientation target (front grasps), else yaw
        self.shoulder: np.ndarray | None = None
        self.yaw = 0.0
        self.grip = OPEN
        self.target: np.ndarray | None = None
        self.steps = 0
        self._skill: Skill | None = None
        self._table_regions: dict[str, Any] | None = None
        self.slots: dict[tuple[str, str], float] = {}
        self.debug = bool(os.environ.get("VLAEVAL_ORACLE_DEBUG"))
        self.done = False
        self.failure: str | None = None

    # -- entry point -----------------------------------------------------------
    def act(self, priv: dict[str, Any]) -> np.ndarray:
        if not priv:
            raise ValueError("the LIBERO oracle needs privileged observations (obs['privileged'])")
        if self._table_regions is None:
            bddl = find_bddl(self.info)
            self._table_regions = bddl_table_regions(bddl) if bddl else {}
        self.scene = Scene(priv, self._table_regions)
        self.steps += 1
        if self.R0 is None:
            # Yaw 0 is the start orientation with its yaw removed (gripper pointing down).
            R = self.scene.eef_R
            heading = wrap_half(math.atan2(R[1, 1], R[0, 1]) - math.pi / 2)  # finger axis (eef y) vs world y
            self.R0 = rot_z(-heading) @ R
            self.target = self.scene.eef.copy()
            # The Panda's shoulder, from where every LIBERO scene starts the gripper.
            self.shoulder = self.scene.eef + np.array([-0.455, 0.0, 0.07])
            self._skill = self._run()
        assert self._skill is not None
        try:
            return next(self._skill)
        except StopIteration:
            return self._command(self.target if self.target is not None else self.scene.eef, self.yaw, self.grip, 0.5)

    # -- low level -------------------------------------------------------------
    @property
    def eef(self) -> np.ndarray:
        assert self.scene is not None
        return self.scene.eef

    def _command(self, target: np.ndarray, yaw: float, grip: float, speed: float = 1.0) -> np.ndarray:
        assert self.scene is not None and self.R0 is not None
        action = np.zeros(7)
        delta = (np.asarray(target, dtype=float) - self.eef) / POS_SCALE * self.gain
        norm = float(np.linalg.norm(delta))
        if norm > speed:
            delta *= speed / norm
        action[:3] = delta
        action[3:6] = np.clip(rotvec(self._orientation(yaw) @ self.scene.eef_R.T) / ROT_SCALE * 1.5, -1.0, 1.0)
        action[6] = grip
        return action

    def _orientation(self, yaw: float) -> np.ndarray:
        """The target gripper orientation: pointing down turned by ``yaw``, or ``self.pose_R``."""
        assert self.R0 is not None
        return self.pose_R if self.pose_R is not None else rot_z(yaw) @ self.R0

    def _yaw_error(self, yaw: float) -> float:
        assert self.scene is not None and self.R0 is not None
        return float(np.linalg.norm(rotvec(self._orientation(yaw) @ self.scene.eef_R.T)))

    def move(self, target: Iterable[float], yaw: float | None = None, grip: float | None = None,
             tol: float = 0.01, speed: float = 1.0, max_steps: int = 60, yaw_tol: float = 0.08,
             stall: int = 0) -> Skill:
        """Servo the gripper to ``target`` (and ``yaw``); returns whether it got there.

        ``stall``: give up after that many steps without 2 mm of progress (blocked by contact).
        """
        self.target = np.asarray(target, dtype=float)
        if yaw is not None:
            self.yaw = yaw
        if grip is not None:
            self.grip = grip
        history: list[float] = []
        for _ in range(max_steps):
            error = float(np.linalg.norm(self.target - self.eef))
            if error < tol and self._yaw_error(self.yaw) < yaw_tol:
                return True
            history.append(error)
            if stall and len(history) > stall and history[-stall - 1] - error < 0.002:
                return False
            yield self._command(self.target, self.yaw, self.grip, speed)
        return False

    def hold(self, steps: int, grip: float | None = None) -> Skill:
        if grip is not None:
            self.grip = grip
        target = self.target if self.target is not None else self.eef.copy()
        for _ in range(steps):
            yield self._command(target, self.yaw, self.grip, 0.5)

    def gripper(self, grip: float, steps: int = 10) -> Skill:
        yield from self.hold(steps, grip)

    def preshape(self, steps: int) -> Skill:
        """Close the open fingers part way: each closing step moves them about 5 mm, 0 holds them."""
        yield from self.hold(steps, CLOSE)
        self.grip = 0.0

    def clearance(self, a: np.ndarray, b: np.ndarray, exclude: Iterable[str] = (), margin: float = 0.06,
                  width: float = 0.06, hand: float = 0.12) -> float:
        """Gripper height that clears everything near the segment a -> b (xy).

        The fingers need ``margin`` above what lies within ``width`` of the path; the hand
        (3 cm above the grip point, 10 cm either side along the finger axis) must pass above
        what lies within ``hand``.
        """
        assert self.scene is not None
        height = self.scene.table_height() + margin
        a2, b2 = np.asarray(a[:2], float), np.asarray(b[:2], float)
        obstacles = self.scene.obstacles(exclude)
        for k in range(11):
            p = a2 + (b2 - a2) * k / 10
            for obstacle in obstacles:
                d = 0.0 if obstacle.contains(p) else obstacle.distance(p)
                if d < width:
                    height = max(height, obstacle.top + margin)
                elif d < hand:
                    height = max(height, obstacle.top + 0.01)
        return height

    def transit(self, target: Iterable[float], yaw: float | None = None, grip: float | None = None,
                hang: float = 0.0, exclude: Iterable[str] = (), tol: float = 0.008, final_speed: float = 0.6,
                min_height: float | None = None, approach: float = 0.04) -> Skill:
        """Up, over and down to ``target`` without sweeping through what is in between.

        ``hang``: how far a carried object reaches below the gripper. The last
        ``approach`` metres are covered at ``final_speed``.
        """
        target = np.asarray(target, dtype=float)
        start = self.eef.copy()
        safe = self.clearance(start, target, exclude) + hang
        if min_height is not None:
            safe = max(safe, min_height)
        safe = max(safe, target[2])
        far = np.linalg.norm(target[:2] - start[:2]) > 0.03
        if far and start[2] < safe - 0.02:
            # climb, starting to move over once half way up
            mid = start + np.array([0.0, 0.0, safe - start[2]]) * 0.6
            yield from self.move(mid, yaw, grip, tol=0.03, max_steps=40)
            lift = np.array([self.eef[0] + (target[0] - self.eef[0]) * 0.15,
                             self.eef[1] + (target[1] - self.eef[1]) * 0.15, safe])
            yield from self.move(lift, yaw, grip, tol=0.03, max_steps=40)
        above = np.array([target[0], target[1], max(safe, target[2] + approach)])
        if np.linalg.norm(above - self.eef) > 0.02:
            yield from self.move(above, yaw, grip, tol=0.015, max_steps=80)
        near = np.array([target[0], target[1], target[2] + approach])
        if self.eef[2] > near[2] + 0.02:
            yield from self.move(near, yaw, grip, tol=0.015, max_steps=60)
        return (yield from self.move(target, yaw, grip, tol=tol, speed=final_speed, max_steps=50, stall=8))

    # -- grasping -------------------------------------------------------------------
    def reach_cost(self, point: np.ndarray) -> float:
        """How far ``point`` (for the gripper) is beyond the arm's comfortable reach (0 if inside)."""
        if self.shoulder is None:
            return 0.0
        wrist = np.asarray(point, dtype=float) + np.array([0.0, 0.0, 0.1])
        reach = float(np.linalg.norm(wrist - self.shoulder))
        flat = float(np.linalg.norm(wrist[:2] - self.shoulder[:2]))
        return max(0.0, reach - 0.72) + max(0.0, 0.35 - flat)

    def grasp_pose(self, name: str, place: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Where to put the gripper (eef site) and with which yaw to grasp ``name``.

        ``place``: where the gripper will be when the object is put down (x, y, z of the
        object's center); rim grasps then pick a side the arm can reach at both ends.
        """
        assert self.scene is not None
        scene = self.scene
        box = scene.box(name)
        shape = SHAPES.get(category(name), DEFAULT_SHAPE)
        pos, R = scene.pose(name)
        if shape.grasp == "rim":
            axis_index = shape.axis if shape.axis is not None else 1
            k = box.horizontal.index(axis_index) if axis_index in box.horizontal else 1
            candidates = [box.axes[:, k], -box.axes[:, k]]
            if shape.axis is None:  # round: any side (16 of them), the clearest and easiest
                base = math.atan2(box.axes[1, k], box.axes[0, k])
                candidates = [np.array([math.cos(base + a), math.sin(base + a), 0.0])
                              for a in np.arange(16) * (math.pi / 8)]
            center = np.array([box.center[0], box.center[1]])
            z = box.bottom + shape.rim_height

            def room(u: np.ndarray) -> float:
                u = u[:2] / (np.linalg.norm(u[:2]) or 1.0)
                v = np.array([-u[1], u[0]])
                finger = center + u * (shape.rim + 0.026)  # the outer finger, fingers pre-shaped
                fingers = min(self.side_clearance(name, finger + side * 0.01 * v, z - 0.012)
                              for side in (-1.0, 1.0)) - 0.008
                hand = self.hand_clearance(name, center + u * shape.rim, z, u)
                if place is not None:  # the hand must also fit where the object is put down
                    hand = min(hand, self.hand_clearance(name, np.asarray(place[:2]) + u * shape.rim, place[2], u))
                return min(fingers, hand)

            # enough room for the outer finger and the hand first (capped: beyond 4 cm it does
            # not matter), then no wrist turn (take the wall along y), then the side nearest the
            # middle of the workspace (far reaches and a folded arm track poorly)
            def strain(u: np.ndarray) -> float:
                u = u[:2] / (np.linalg.norm(u[:2]) or 1.0)
                cost = self.reach_cost(np.array([*(center + u * shape.rim), z]))
                if place is not None:
                    cost = max(cost, self.reach_cost(np.array([*(np.asarray(place[:2]) + u * shape.rim), place[2]])))
                return cost

            def nearness(u: np.ndarray) -> float:
                return -float(np.linalg.norm(center + u[:2] * shape.rim - WORKSPACE_CENTER))

            def score(u: np.ndarray) -> tuple[float, ...]:
                r = room(u)
                if r < 0.012:  # the finger or the hand would hit something
                    return (0.0, r, 0.0, 0.0, 0.0)
                return (1.0, -round(strain(u) / 0.02), round(min(r, 0.04), 2), round(abs(u[1]), 1), nearness(u))

            best = max(candidates, key=score)
            if self.debug:
                self.log.append("rim sides " + ", ".join(
                    f"{np.round(c[:2], 2).tolist()}: room {room(c):.3f} strain {strain(c):.3f}" for c in candidates))
            u = best[:2] / (np.linalg.norm(best[:2]) or 1.0)
            point = np.array([center[0] + u[0] * shape.rim, center[1] + u[1] * shape.rim, z])
            return point, closing_yaw(u)
        if shape.grasp == "handle" and shape.handle is not None:
            point = R @ np.asarray(shape.handle) + pos
            # close across the handle: the handle sticks out along the object's y (moka pot) / x (pan)
            d = R[:, 1] if category(name) == "moka_pot" else R[:, 0]
            across = np.array([-d[1], d[0]])
            return point, closing_yaw(across)
        # close across the narrow side; when both sides are alike (cans, bottles), across the
        # one that needs the least wrist turn; slide along the long side away from neighbours
        height = box.top - box.bottom
        z = box.top - min(shape.depth, height / 2) if height > 0.04 else box.bottom + max(height / 2, 0.012)
        z = max(z, box.bottom + 0.012)
        center = box.center[:2]
        options = []
        for k in range(2):
            if box.extents[k] > MAX_GRASP_WIDTH and box.extents[1 - k] <= MAX_GRASP_WIDTH:
                continue
            u = box.axes[:2, k]
            yaw = closing_yaw(u)
            preference = 0.0 if (k == int(np.argmin(box.extents)) or abs(box.extents[0] - box.extents[1]) < 0.012) else 1.0
            turn = abs(wrap_half(yaw - self.yaw))
            slide_room = max(0.0, (box.extents[1 - k] - 0.02) / 2)
            for t in (0.0, -0.5, 0.5, -1.0, 1.0):
                c = center + box.axes[:2, 1 - k] * t * slide_room
                fingers = min(self.side_clearance(name, c + side * (box.extents[k] / 2 + 0.016) * u, z - 0.012)
                              for side in (-1.0, 1.0)) - 0.008
                room = min(fingers, self.hand_clearance(name, c, z, u))
                options.append(((room >= 0.004, preference == 0.0, -abs(t), -round(turn, 1), round(min(room, 0.04), 2)),
                                c, yaw))
        if not options:
            k = int(np.argmin(box.extents))
            options.append(((False,), center, closing_yaw(box.axes[:2, k])))
        _, c, yaw = max(options, key=lambda o: o[0])
        return np.array([c[0], c[1], z]), self.yaw + wrap_half(yaw - self.yaw)

    def side_clearance(self, name: str, point: np.ndarray, z: float) -> float:
        """Room around ``point`` for a finger coming down from above to a tip height ``z``."""
        assert self.scene is not None
        best = 1.0
        for obstacle in self.scene.obstacles([name]):
            if obstacle.top > z - 0.005 and obstacle.bottom < z + 0.25:
                best = min(best, obstacle.distance(point, z))
        return best

    def hand_clearance(self, name: str, grip: np.ndarray, z: float, axis: np.ndarray) -> float:
        """Room around the hand when the grip point is at ``grip`` (xy), height ``z``.

        The Panda hand is a box 3 to 12 cm above the grip point, 20 cm long along the
        finger axis ``axis`` and 6.5 cm thick across it.
        """
        assert self.scene is not None
        u = np.asarray(axis[:2], dtype=float)
        u /= np.linalg.norm(u) or 1.0
        v = np.array([-u[1], u[0]])
        points = [np.asarray(grip[:2]) + a * HAND_HALF_LENGTH * u + b * HAND_HALF_WIDTH * v
                  for a in (-1.0, -0.5, 0.0, 0.5, 1.0) for b in (-1.0, 0.0, 1.0)]
        best = 1.0
        for obstacle in self.scene.obstacles([name]):
            if obstacle.top > z + HAND_BOTTOM and obstacle.bottom < z + HAND_TOP + 0.2:
                best = min(best, min(obstacle.distance(p, z + HAND_BOTTOM) for p in points))
        return best

    def holding(self, name: str, z_before: float, min_rise: float = 0.02) -> bool:
        assert self.scene is not None
        box = self.scene.box(name)
        rose = box.center[2] - z_before > min_rise
        near = np.linalg.norm(box.center[:2] - self.eef[:2]) < 0.12
        return bool(rose and near)

    def pick(self, name: str, lift: float = 0.12, attempts: int = 3, place: np.ndarray | None = None) -> Skill:
        assert self.scene is not None
        for attempt in range(attempts):
            self.phase = f"pick {name}"
            point, yaw = self.grasp_pose(name, place)
            yaw = self.yaw + wrap_half(yaw - self.yaw)  # the gripper is symmetric: turn the short way
            if abs(yaw) > 2.6:
                yaw -= math.copysign(math.pi, yaw)
            z_before = self.scene.box(name).center[2]
            top = self.scene.box(name).top
            hover = np.array([point[0], point[1], max(point[2] + 0.08, top + 0.04)])
            yield from self.transit(hover, yaw, OPEN, exclude=[name], tol=0.015, final_speed=1.0)
            shape = SHAPES.get(category(name), DEFAULT_SHAPE)
            grip = OPEN
            if shape.grasp == "rim":  # narrow the fingers so the outer one stays close to the wall
                yield from self.preshape(3)
                grip = 0.0
            elif shape.grasp == "center":  # open no wider than the object needs (neighbours)
                box = self.scene.box(name)
                u = np.array([-math.sin(yaw), math.cos(yaw)])
                width = float(np.abs(box.axes[:2, :].T @ u) @ box.extents)
                steps = int((FINGER_OPEN - (width / 2 + 0.012)) / FINGER_STEP)
                if steps > 0:
                    yield from self.preshape(min(steps, 5))
                    grip = 0.0
            yield from self.move(point, yaw, grip, tol=0.008, speed=0.5, max_steps=50, yaw_tol=0.1, stall=6)
            yield from self.gripper(CLOSE, 10)
            yield from self.move(self.eef + np.array([0, 0, lift]), grip=CLOSE, tol=0.02, speed=0.8, max_steps=40)
            if self.holding(name, z_before):
                return True
            self.log.append(f"grasp of {name} missed (attempt {attempt + 1})")
            yield from self.gripper(OPEN, 9)
        raise Failed(f"could not grasp {name}")

    def place_at(self, name: str, xy: np.ndarray, surface: float, drop: float = 0.015,
                 exclude: Iterable[str] = (), min_height: float | None = None, speed: float = 0.5) -> Skill:
        """Bring the held ``name`` so that its center is over ``xy`` and its bottom ``drop`` above ``surface``."""
        assert self.scene is not None
        self.phase = f"place {name}"
        box = self.scene.box(name)
        offset = self.eef - box.center  # gripper relative to the object's center, as held
        hang = self.eef[2] - box.bottom
        target = np.array([xy[0] + offset[0], xy[1] + offset[1], surface + drop + hang])
        yield from self.transit(target, None, CLOSE, hang=hang, exclude=[name, *exclude], tol=0.01,
                                final_speed=speed, min_height=min_height)
        # re-center using the object's actual position (it may swing in the grasp)
        box = self.scene.box(name)
        err = np.array([xy[0] - box.center[0], xy[1] - box.center[1], 0.0])
        if np.linalg.norm(err) > 0.01:
            yield from self.move(self.eef + err, tol=0.006, speed=0.3, max_steps=20)
        yield from self.gripper(OPEN, 8)
        yield from self.move(self.eef + np.array([0, 0, 0.08]), grip=OPEN, tol=0.02, max_steps=25)

    # -- the plan ------------------------------------------------------------------------
    def _run(self) -> Skill:
        goal = [list(p) for p in (self.scene.priv.get("goal_state") or [])] if self.scene else []
        ordered = self._order(goal)
        self.plan(goal)  # assigns slots
        budget = int(self.info.get("max_steps") or 0)
        for attempt in range(RETRY_ROUNDS + 1):
            todo = ordered if attempt == 0 else [p for p in ordered if not self.satisfied(p)]
            if attempt and (not todo or (budget and budget - self.steps < 60)):
                break
            if attempt:
                self.log.append(f"retrying {len(todo)} unmet goal(s): {[' '.join(p) for p in todo]}")
            try:
                for predicate in todo:
                    yield from self.achieve(predicate)
                self.phase, self.done, self.failure = "done", True, None
            except Failed as exc:
                self.failure = str(exc)
                self.log.append(f"failed: {exc}")
                self.phase = "failed"
                if "cannot" in str(exc):  # a limitation, not bad luck: do not retry
                    break
            if self.scene is not None and self.scene.priv.get("success"):
                break
        while True:
            yield from self.hold(1)

    def satisfied(self, predicate: list[str]) -> bool:
        """An approximation of the BDDL predicate on the current state (True when unsure)."""
        assert self.scene is not None
        scene = self.scene
        op, *args = predicate
        try:
            if op in ("on", "in"):
                obj, target = args
                pos = scene.pos(obj)
                if target in scene.objects and category(target) != "basket":
                    tpos = scene.pos(target)
                    return bool(np.linalg.norm(pos[:2] - tpos[:2]) < 0.03 and pos[2] >= tpos[2])
                site = target if not scene.has(target) else f"{target}_contain_region"
                spos, R, size = scene.site(site)
                half = np.abs(R @ size)
                inside_xy = bool(np.all(np.abs(pos[:2] - spos[:2]) < half[:2]))
                if op == "in":
                    return inside_xy and spos[2] - half[2] - 0.01 < pos[2] < spos[2] + half[2]
                return inside_xy and spos[2] + half[2] - 0.005 < pos[2] < spos[2] + half[2] + 0.1
            if op in ("open", "close"):
                fixture, joint = self.articulation(args[0])
                q = scene.joint(fixture, joint) or 0.0
                if category(fixture) == "microwave":
                    return q < -1.3 if op == "open" else q > -0.005
                return q < -0.14 if op == "open" else q > 0.0
            if op in ("turnon", "turnoff"):
                q = scene.joint(args[0], "button") or 0.0
                return q >= STOVE_KNOB_ON if op == "turnon" else q < 0.0
        except (KeyError, Failed, ValueError):
            return True
        return True

    def plan(self, goal: list[list[str]]) -> list[Skill]:
        ordered = self._order(goal)
        # several objects for one place: spread them out (far slot first, so later ones need
        # not reach over earlier ones)
        shared: dict[str, list[str]] = {}
        for p in ordered:
            if p[0] in ("on", "in") and len(p) == 3:
                shared.setdefault(p[2], []).append(p[1])
        self.slots = {}
        for target, objs in shared.items():
            if len(objs) > 1:
                n = len(objs)
                for i, obj in enumerate(objs):
                    self.slots[(obj, target)] = (n - 1 - 2 * i) / max(n - 1, 1)
        return [self.achieve(p) for p in ordered]

    def _order(self, goal: list[list[str]]) -> list[list[str]]:
        turn = [p for p in goal if p[0] in ("turnon", "turnoff")]
        opens = [p for p in goal if p[0] == "open"]
        closes = [p for p in goal if p[0] == "close"]
        rest = [p for p in goal if p not in turn + opens + closes]
        return turn + opens + rest + closes

    def achieve(self, predicate: list[str]) -> Skill:
        op, *args = predicate
        self.log.append(f"goal {op} {' '.join(args)}")
        if op in ("on", "in"):
            yield from self.put(args[0], args[1], inside=(op == "in"))
        elif op == "open":
            yield from self.open_close(args[0], open_=True)
        elif op == "close":
            yield from self.open_close(args[0], open_=False)
        elif op == "turnon":
            yield from self.turn_stove(args[0], on=True)
        elif op == "turnoff":
            yield from self.turn_stove(args[0], on=False)
        else:
            raise Failed(f"no primitive for predicate {op!r}")

    # -- composite primitives -----------------------------------------------------------
    def put(self, obj: str, target: str, inside: bool) -> Skill:
        """Pick ``obj`` and put it on/in ``target`` (an object, a region site, a basket)."""
        if inside and self.scene is not None:
            try:
                fixture, joint = self.articulation(target)
            except Failed:
                fixture, joint = "", ""
            if joint.endswith("_level") and (self.scene.joint(fixture, joint) or 0.0) > -0.12:
                yield from self.drawer(fixture, joint, True)
        xy, surface, drop = self.put_target(obj, target, inside)
        if category(obj) in PUSHED:  # too wide to grasp: slide it over the table
            yield from self.push(obj, xy)
            return
        box = self.scene.box(obj) if self.scene else None
        grip_height = SHAPES.get(category(obj), DEFAULT_SHAPE).rim_height if box else 0.03
        yield from self.pick(obj, place=np.array([xy[0], xy[1], surface + drop + grip_height]))
        xy, surface, drop = self.put_target(obj, target, inside)  # the target may have moved
        yield from self.place_at(obj, xy, surface, drop=drop)

    def put_target(self, obj: str, target: str, inside: bool) -> tuple[np.ndarray, float, float]:
        """Where ``obj``'s center goes (xy), the surface it lands on, and the release gap."""
        assert self.scene is not None
        scene = self.scene
        slot = self.slots.get((obj, target), 0.0)
        if target in scene.objects and category(target) in SHAPES and category(target) != "basket":
            tbox = scene.box(target)
            return tbox.center[:2] + np.array([slot * 0.02, 0.0]), tbox.top, 0.02
        site_name = target if not scene.has(target) else f"{target}_contain_region"
        if category(site_name).startswith("microwave"):
            raise Failed(f"cannot put {obj} in the microwave: held from above, the hand would hit its ceiling "
                         "(16 cm inside) before the object is far enough in")
        pos, R, size = scene.site(site_name)
        if slot:
            half = float(np.min(np.abs(R @ size)[:2]))
            pos = pos + np.array([slot * min(0.6 * half, 0.045), 0.0, 0.0])
        if inside:
            parent = category(site_name.split("_contain")[0])
            if parent == "basket":
                surface = pos[2]
            elif site_name.endswith(("top_region", "middle_region", "bottom_region")):
                surface = pos[2] - 0.027  # a drawer's bottom, below its region site
            else:
                surface = pos[2] - abs((R @ size)[2])
            return pos[:2].copy(), max(surface, scene.table_height()), 0.02
        return pos[:2].copy(), pos[2], 0.015

    def articulation(self, target: str) -> tuple[str, str]:
        """The fixture and joint behind an ``open``/``close`` argument (a drawer region or a door)."""
        assert self.scene is not None
        if target in self.scene.fixtures:
            joints = list(self.scene.fixtures[target].get("joints", {}))
            return target, (joints[0][len(target) + 1:] if joints else "")
        for parent in sorted(self.scene.fixtures, key=len, reverse=True):
            if target.startswith(parent + "_"):
                entry = ATTACHED_SITES.get(category(parent), {}).get(target[len(parent) + 1:])
                if entry and entry[2]:
                    return parent, entry[2]
        raise Failed(f"do not know what to open or close for {target!r}")

    def open_close(self, target: str, open_: bool) -> Skill:
        fixture, joint = self.articulation(target)
        if category(fixture) in ("wooden_cabinet", "white_cabinet"):
            yield from self.drawer(fixture, joint, open_)
        elif category(fixture) == "microwave":
            yield from self.microwave_door(fixture, open_)
        else:
            raise Failed(f"no primitive to {'open' if open_ else 'close'} {fixture}")

    def front_pose(self, approach: np.ndarray) -> np.ndarray:
        """Gripper pointing horizontally along ``approach``, fingers closing vertically."""
        assert self.scene is not None
        z = np.asarray(approach, dtype=float)
        z[2] = 0.0
        z /= np.linalg.norm(z)
        options = []
        for up in (1.0, -1.0):
            y = np.array([0.0, 0.0, up])
            x = np.cross(y, z)
            R = np.column_stack([x, y, z])
            options.append((float(np.linalg.norm(rotvec(R @ self.scene.eef_R.T))), R))
        return min(options, key=lambda o: o[0])[1]

    def drawer_handle(self, cabinet: str, joint: str) -> tuple[np.ndarray, np.ndarray]:
        """World position of a drawer's handle bar and the direction that pushes the drawer in."""
        assert self.scene is not None
        pos, R = self.scene.pose(cabinet)
        q = self.scene.joint(cabinet, joint) or 0.0
        handle = pos + R @ np.array([-0.003, DRAWER_HANDLE_Y + q, DRAWER_LEVELS[joint]])
        inward = R[:, 1].copy()
        inward[2] = 0.0
        return handle, inward / np.linalg.norm(inward)

    def drawer(self, cabinet: str, joint: str, open_: bool) -> Skill:
        """Open (grip the handle from the front and pull) or close (push the handle) a drawer."""
        assert self.scene is not None
        verb = "open" if open_ else "close"

        def done() -> bool:
            assert self.scene is not None
            q = self.scene.joint(cabinet, joint) or 0.0
            return q < DRAWER_OPEN + 0.005 if open_ else q > 0.002

        for attempt in range(2):
            self.phase = f"{verb} {cabinet} {joint}"
            if done():
                break
            q = self.scene.joint(cabinet, joint) or 0.0
            handle, inward = self.drawer_handle(cabinet, joint)
            front = self.front_pose(inward)
            start = handle - inward * 0.10
            # above the start point pointing down, then turn level with the handle on the way down
            self.pose_R = None
            yield from self.transit(start + np.array([0, 0, 0.03]), None, OPEN if open_ else CLOSE,
                                    tol=0.02, final_speed=1.0)
            self.pose_R = front
            yield from self.move(start, None, None, tol=0.012, max_steps=40, yaw_tol=0.1)
            if open_:
                yield from self.preshape(4)
                yield from self.move(handle - inward * 0.03, None, 0.0, tol=0.01, speed=0.8, max_steps=30)
                yield from self.move(handle, None, 0.0, tol=0.006, speed=0.4, max_steps=30, stall=6)
                yield from self.gripper(CLOSE, 8)
                goal = self.eef - inward * (q - DRAWER_OPEN + 0.01)
            else:
                # fingertips (about 1 cm ahead of the grip site) just past the shut handle position
                goal = handle + inward * (-q + 0.004) - inward * 0.018
            self.target = goal
            for _ in range(90):
                if done() or np.linalg.norm(goal - self.eef) < 0.004:
                    break
                yield self._command(goal, self.yaw, self.grip, 0.7)
            yield from self.hold(3, OPEN)
            yield from self.gripper(OPEN, 5) if open_ else self.hold(1)
            # back off, rise and turn back to pointing down before going anywhere else
            yield from self.move(self.eef - inward * 0.07, None, None, tol=0.02, max_steps=25)
            self.pose_R = None  # the hand's long side across the pull, so it stays clear of the drawer
            level = closing_yaw(np.array([-inward[1], inward[0]]))
            yield from self.move(self.eef + np.array([0, 0, 0.08]) - inward * 0.02, level, OPEN, tol=0.03,
                                 max_steps=40, yaw_tol=0.15)
            self.log.append(f"drawer {joint} at {self.scene.joint(cabinet, joint) or 0.0:.3f} after {verb}")
        q = self.scene.joint(cabinet, joint) or 0.0
        if (open_ and q < -0.14) or (not open_ and q > 0.0):
            return True
        raise Failed(f"could not {verb} the {joint.replace('_level', '')} drawer of {cabinet} (joint {q:.3f})")

    def microwave_door(self, microwave: str, open_: bool) -> Skill:
        raise Failed(f"no primitive to {'open' if open_ else 'close'} the door of {microwave}")
        yield

    def turn_stove(self, stove: str, on: bool) -> Skill:
        """Grip the knob's ridge and twist it (counter-clockwise turns the stove on)."""
        assert self.scene is not None
        for attempt in range(3):
            self.phase = f"turn {'on' if on else 'off'} {stove}"
            q = self.scene.joint(stove, "button") or 0.0
            if (on and q >= STOVE_KNOB_ON + 0.1) or (not on and q < -0.001):
                return True
            pos, R = self.scene.pose(stove)
            heading = math.atan2(R[1, 0], R[0, 0])
            across = rot_z(heading + q)[:2, 1]  # the ridge lies along the knob's x axis
            yaw = closing_yaw(across)
            knob = pos + R @ np.asarray(STOVE_KNOB)
            yield from self.transit(knob + np.array([0, 0, 0.06]), yaw, OPEN, exclude=[stove], tol=0.01,
                                    final_speed=0.8)
            yield from self.move(knob, yaw, OPEN, tol=0.006, speed=0.4, max_steps=40, stall=6)
            yield from self.gripper(CLOSE, 8)
            turn = (STOVE_KNOB_ON + 0.35 - q) if on else -(q + 0.3)
            for k in range(1, 9):
                yield from self.move(self.target, yaw + turn * k / 8, CLOSE, tol=0.02, max_steps=6, yaw_tol=0.05)
            yield from self.hold(3)
            yield from self.gripper(OPEN, 7)
            yield from self.move(self.eef + np.array([0, 0, 0.06]), None, OPEN, tol=0.02, max_steps=20)
            self.log.append(f"knob at {self.scene.joint(stove, 'button') or 0.0:.2f} rad after attempt {attempt + 1}")
        q = self.scene.joint(stove, "button") or 0.0
        if (on and q >= STOVE_KNOB_ON) or (not on and q < 0.0):
            return True
        raise Failed(f"could not turn {'on' if on else 'off'} {stove} (knob at {q:.2f} rad)")

    def push(self, obj: str, xy: np.ndarray, tol: float = 0.02, max_steps: int = 200) -> Skill:
        """Push ``obj`` over the table until its center is within ``tol`` of ``xy``."""
        assert self.scene is not None
        self.phase = f"push {obj}"
        goal = np.asarray(xy, dtype=float)
        box = self.scene.box(obj)
        radius = float(np.max(box.extents)) / 2
        z = box.bottom + min(0.012, (box.top - box.bottom) / 2) + 0.004
        d = goal - box.center[:2]
        d /= np.linalg.norm(d) or 1.0
        yaw = closing_yaw(np.array([-d[1], d[0]]))  # fingers side by side across the push
        behind = box.center[:2] - d * (radius + 0.03)
        yield from self.transit(np.array([behind[0], behind[1], z]), yaw, CLOSE, exclude=[obj], tol=0.01)
        for _ in range(max_steps):
            box = self.scene.box(obj)
            error = goal - box.center[:2]
            if np.linalg.norm(error) < tol:
                break
            d = error / np.linalg.norm(error)
            # keep the finger on the line through the object's center, and push forward along it
            contact = box.center[:2] - d * (radius + 0.008)
            aim = contact + d * min(0.03, float(np.linalg.norm(error)))
            self.target = np.array([aim[0], aim[1], z])
            yield self._command(self.target, yaw, CLOSE, 0.5)
        yield from self.move(self.eef - np.array([*(d * 0.03), 0.0]) + np.array([0, 0, 0.05]), None, CLOSE,
                             tol=0.02, max_steps=15)

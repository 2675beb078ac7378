"""What the LIBERO oracle knows and sees: rotation helpers, object and fixture geometry
(measured once on the LIBERO assets), table regions from the task's BDDL file, and the
:class:`Scene` built from ``privileged`` state each step. The planner and its skills live in
:mod:`vlaeval.suites.libero.oracle`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from vlaeval.suites import oracle_geometry as shared_geometry


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
HAND_HALF_LENGTH, HAND_HALF_WIDTH = 0.10, 0.033  # the hand's collision box around the grip point (half sizes)
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

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
from typing import Any, Generator, Iterable

import numpy as np

from vlaeval.suites.libero.oracle_scene import (  # noqa: F401  (also this module's public helpers)
    quat_to_mat, rotvec, rot_z, wrap, wrap_half, closing_yaw, category, Shape, SHAPES, PUSHED, DEFAULT_SHAPE,
    ATTACHED_SITES, FIXTURE_BOXES, DRAWER_INTERIOR, WORKSPACE_CENTER, MAX_GRASP_WIDTH, DRAWER_LEVELS,
    DRAWER_HANDLE_Y, DRAWER_OPEN, RETRY_ROUNDS, STOVE_KNOB_ON, STOVE_KNOB, MICROWAVE_HINGE,
    MICROWAVE_DOOR_WIDTH, HAND_TOP, HAND_BOTTOM, HAND_HALF_LENGTH, HAND_HALF_WIDTH, FINGER_OPEN, FINGER_STEP,
    bddl_table_regions, find_bddl, Box, Obstacle, Scene,
)

VERSION = "2"
POS_SCALE = 0.05  # metres per unit action
ROT_SCALE = 0.5  # radians per unit action
OPEN, CLOSE = -1.0, 1.0

Action = np.ndarray
Skill = Generator[Action, None, Any]


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

"""A privileged scripted oracle for the SimplerEnv suites (Google robot and WidowX).

It reads what :meth:`SimplerBackend.privileged` exposes (actor poses and collision boxes, the
task's kind and object / source / target names, the drawer links' boxes and joints, the TCP
pose, the arm controller's target, the fingers) and drives the real controllers. What to do
comes from that task description (built from the task env, i.e. the catalog entry), never
from the instruction text, so every paraphrase of a SimplerEnv-Instruct task gets the same plan.

* Google robot (``arm_pd_ee_delta_pose_align``, 3 Hz): an action is a delta of the *measured*
  TCP pose, translation and axis-angle rotation in robot-base axes; the arm covers about a
  third of a step within its control period, so free moves ask for more. The gripper is
  relative (+1 = close the finger target by 1.31 rad); holding +1 (or -1) saturates it, so the
  oracle sends +1 while it wants the gripper closed and -1 while open.
* WidowX (``arm_pd_ee_target_delta_pose_align2``, 5 Hz): deltas apply to the controller's
  previous *target* pose (``privileged["arm_target"]``); the gripper is absolute.

The oracle speaks the harness convention ``close_positive`` (+1 = close, -1 = open); the harness
converts it to the WidowX's ``open_positive``.

Primitives: ``pick`` (top-down across the object's narrow side, only the turn about the
vertical enforced; tall objects approached level from the robot's side), ``place`` (carry over a
spot, lower onto the surface, release, retreat), ``drawer_open`` (the drawers have no handle to
grip -- upstream's handle is a visual mesh only -- so the nearly closed fingers press on the top
edge of the front panel, just behind it, and drag it out), ``drawer_close`` (push the panel).
Tasks: grasp-single (lift and hold), move near / place near (next to the target, on the side
away from the other objects), Bridge put-on (onto the target), open / close drawer, place into
a closed or open drawer (open it wide, pick, put on its floor). Deterministic: the same states
give the same actions. A task it cannot do ends with ``failure`` set; the oracle then holds still.

Upstream's two-phase drawer tasks advance to the second instruction when the policy predicts
"terminate". The oracle never does (its plan already spans both instructions), so the backend
forces the advance at step 100 as upstream does when a policy never terminates; the oracle
keeps its plan across the change, finishes it and holds the scene still (success is evaluated
at the final step).
"""

from __future__ import annotations

import math
from typing import Any, Generator, Iterable

import numpy as np

from vlaeval.suites import oracle_geometry as shared_geometry

VERSION = "1"
OPEN, CLOSE = -1.0, 1.0

Action = np.ndarray
Skill = Generator[Action, None, Any]


# -- geometry helpers (pure numpy) --------------------------------------------------------

def quat_to_mat(q_wxyz: Iterable[float]) -> np.ndarray:
    return shared_geometry.quat_to_mat(q_wxyz, "wxyz")


def rotvec(R: np.ndarray) -> np.ndarray:
    """Axis * angle of a rotation matrix."""
    return shared_geometry.rotvec(R, zero_below=1e-7)


def clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(v))
    return v * (limit / n) if n > limit > 0 else v


def frame(approach: Iterable[float], closing: Iterable[float]) -> np.ndarray:
    """A gripper orientation: columns x, y (finger closing axis), z (approach), right-handed."""
    z = np.asarray(approach, dtype=float)
    z = z / np.linalg.norm(z)
    y = np.asarray(closing, dtype=float)
    y = y - z * float(y @ z)
    y = y / np.linalg.norm(y)
    return np.column_stack([np.cross(y, z), y, z])


def closest_flip(closing: np.ndarray, current: np.ndarray) -> np.ndarray:
    """The gripper is symmetric: of ``closing`` and ``-closing``, the one nearer ``current``."""
    return closing if float(closing @ current) >= 0 else -closing


def footprint(local_min: Iterable[float], local_max: Iterable[float], R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The horizontal extents of an object's box: two unit xy directions and the widths along them.

    The box's local axis that points most nearly up is dropped; the other two are projected
    on the table plane. Returned in order narrow side first.
    """
    lo, hi = np.asarray(local_min, float), np.asarray(local_max, float)
    size = hi - lo
    up = int(np.argmax(np.abs(R[2, :])))
    dirs, widths = [], []
    for i in range(3):
        if i == up:
            continue
        d = R[:, i].copy()
        d[2] = 0.0
        n = float(np.linalg.norm(d)) or 1.0
        dirs.append(d / n)
        widths.append(float(size[i]) * n)
    order = np.argsort(widths)
    return np.array([dirs[i] for i in order]), np.array([widths[i] for i in order])


def spot_near(target_xy: np.ndarray, reach: float, others: list[np.ndarray], prefer: np.ndarray,
              n: int = 24, target_origin: np.ndarray | None = None) -> np.ndarray:
    """A point ``reach`` from ``target_xy``, closer to it than to any of ``others`` by a margin
    (8 cm is as good as more), then nearest ``prefer`` (the shortest carry).

    ``target_origin``: where the move-near rule's "closest" check places the target (its actor
    origin, while "near" uses its centre of mass): the point must not be further from the centre
    than from that origin + 1 cm.
    """
    best, best_score = None, None
    for k in range(n):
        a = 2 * math.pi * k / n
        p = np.asarray(target_xy, float) + reach * np.array([math.cos(a), math.sin(a)])
        clear = min((float(np.linalg.norm(p - o)) for o in others), default=1.0)
        margin = round(min(clear - reach, 0.08), 2)
        if target_origin is not None:
            slack = float(np.linalg.norm(p - np.asarray(target_origin, float))) + 0.01 - reach
            if slack < 0.005:
                margin = -1.0 + slack
        score = (margin, -float(np.linalg.norm(p - prefer)))
        if best_score is None or score > best_score:
            best, best_score = p, score
    assert best is not None
    return best


class Yaw:
    """An orientation goal that fixes only the finger-closing direction about the vertical and
    keeps the approach axis within ``max_tilt`` of straight down."""

    def __init__(self, closing: Iterable[float], max_tilt: float | None = None):
        c = np.array([*np.asarray(closing, float)[:2], 0.0])
        self.closing = c / (np.linalg.norm(c) or 1.0)
        self.max_tilt = MAX_TILT if max_tilt is None else float(max_tilt)


class Failed(Exception):
    """A step of the plan could not be completed; the episode will not succeed."""


# -- the scene as the oracle sees it ---------------------------------------------------------

class View:
    """Accessors over one privileged observation."""

    def __init__(self, priv: dict[str, Any]):
        self.priv = priv
        self.task: dict[str, Any] = priv.get("task") or {}
        self.geometry: dict[str, Any] = priv.get("geometry") or {}
        tcp = priv["tcp"]
        self.tcp = np.asarray(tcp["pos"], dtype=float)
        self.tcp_R = quat_to_mat(tcp["quat_wxyz"])
        base = priv["robot_base"]
        self.base = np.asarray(base["pos"], dtype=float)
        self.base_R = quat_to_mat(base["quat_wxyz"])
        target = priv.get("arm_target")
        self.target = np.asarray(target["pos"], dtype=float) if target else self.tcp
        self.target_R = quat_to_mat(target["quat_wxyz"]) if target else self.tcp_R
        self.family = str(priv.get("robot_family") or self.task.get("family") or "google")
        self.table = float(priv.get("table_height", 0.87))
        self.closedness = float(priv.get("gripper_closedness", 0.0))

    def pos(self, name: str) -> np.ndarray:
        return np.asarray(self.priv["objects"][name]["pos"], dtype=float)

    def R(self, name: str) -> np.ndarray:
        return quat_to_mat(self.priv["objects"][name]["quat_wxyz"])

    def bounds(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        g = self.geometry[name]
        return np.asarray(g["min"], dtype=float), np.asarray(g["max"], dtype=float)

    def center(self, name: str) -> np.ndarray:
        lo, hi = self.bounds(name)
        return (lo + hi) / 2

    def com(self, name: str) -> np.ndarray:
        return np.asarray(self.geometry[name]["com"], dtype=float)

    def footprint(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        g = self.geometry[name]
        return footprint(g["local_min"], g["local_max"], self.R(name))

    def drawer_qpos(self) -> float:
        cab = self.priv.get("cabinet") or {}
        return float(cab["qpos"][int(cab["target_joint"])])

    def drawer_panel(self, drawer: str) -> tuple[np.ndarray, np.ndarray]:
        """The front panel of a drawer (the collision box reaching furthest out): center, half sizes."""
        link = (self.priv.get("cabinet_links") or {}).get(f"{drawer}_drawer")
        if not link or not link.get("boxes"):
            raise Failed(f"no collision boxes for the {drawer} drawer in the privileged state")
        box = max(link["boxes"], key=lambda b: b["center"][0] + b["half"][0])
        return np.asarray(box["center"], dtype=float), np.asarray(box["half"], dtype=float)

    def drawer_floor(self, drawer: str) -> float:
        """Top of a drawer's bottom board (its widest, lowest box)."""
        link = (self.priv.get("cabinet_links") or {}).get(f"{drawer}_drawer") or {}
        boards = [b for b in link.get("boxes", []) if b["half"][0] > 0.1 and b["half"][1] > 0.1]
        if not boards:
            raise Failed(f"no bottom board for the {drawer} drawer in the privileged state")
        board = min(boards, key=lambda b: b["center"][2])
        return float(board["center"][2] + board["half"][2])

    def cabinet_front(self) -> float:
        body = (self.priv.get("cabinet_links") or {}).get("body") or {}
        fronts = [b["center"][0] + b["half"][0] for b in body.get("boxes", [])]
        return max(fronts) if fronts else 0.02

    def cabinet_top(self) -> float:
        body = (self.priv.get("cabinet_links") or {}).get("body") or {}
        tops = [b["center"][2] + b["half"][2] for b in body.get("boxes", [])]
        return max(tops) if tops else self.table


# -- robots -----------------------------------------------------------------------------------

# Google robot gripper (measured in the TCP frame on the real backend): the finger ends sit
# 3.5 cm behind the TCP point along the approach axis when open and reach it when closed; the
# inner faces of the open finger tips are 14.5 cm apart; a finger tip is 3.7 cm thick along the
# closing axis and 4.3 cm wide across it.
GOOGLE_OPEN_GAP = 0.145
GOOGLE_PAD_CENTRE = 0.025  # closed on an object, the finger pads' middle is this far behind the TCP
GOOGLE_PALM_CLEAR = 0.075  # grasp at most this far below an object's top (the palm stays above it)
GOOGLE_SIDE_GRASP = 0.05  # objects reaching this far above the grasp point are approached level
CLOSING_AXIS = {"google": 1, "widowx": 1}
APPROACH_AXIS = {"google": 2, "widowx": 0}  # the TCP-frame axis pointing out of the hand
LOCALLY_ELONGATED = 2.5  # grasp site: close across the body where it is this much longer than wide
MAX_TILT = math.radians(30)  # orientation goals: how far the approach axis may lean from straight down
GRASP_TILT = MAX_TILT  # ... while grasping (tighter makes far reaches slow; looser pinches slip)
# WidowX (measured likewise): the fingertips reach 1.6 cm past the TCP along the approach axis
# (the TCP frame's x); the open fingers' inner faces are 5.2 cm apart.
WIDOWX_TIP = 0.016
WIDOWX_OPEN_GAP = 0.052
DRAWER_FINGER_Q = 0.95  # drawer work: finger joints just short of the tips touching (about 1.07)
DRAWER_FINGER_BACK = 0.008  # ... where the finger ends sit this far behind the TCP
GOOGLE_GRIP_SCALE = 1.31  # a Google gripper action of 1 moves the finger target by this much (rad)
DROP_MARGIN = 0.012  # dropping into a drawer: clearance on either side of the object
DRAWER_WALL = 0.02  # a drawer's inner front wall, behind its panel
DRAWER_TILT = math.radians(40)  # drawer work: fingers pointing at the cabinet, this far from vertical


class SimplerOracle:
    """One episode of the scripted oracle. Feed it privileged states with :meth:`act`."""

    def __init__(self, instruction: str = "", info: dict[str, Any] | None = None):
        self.instruction = instruction
        self.info = dict(info or {})
        protocol = self.info.get("protocol") or {}
        self.max_steps = int(self.info.get("max_steps") or protocol.get("max_steps") or 0)
        self.log: list[str] = []
        self.phase = "start"
        self.failure: str | None = None
        self.done = False
        self.steps = 0
        self.view: View | None = None
        self.goal_R: Any = None  # a rotation matrix, a Yaw, or None (keep the current orientation)
        self.grip = OPEN
        self._skill: Skill | None = None
        self._scale = 1.0  # step-size scale: halved while the arm does not follow (IK refused the step)
        self._last: tuple[np.ndarray, np.ndarray, float, float] | None = None
        self.adaptive = True  # off while pushing or dragging (contact slows the arm on purpose)

    # -- entry point ---------------------------------------------------------------------
    def act(self, priv: dict[str, Any]) -> np.ndarray:
        if not priv or "tcp" not in priv:
            raise ValueError("the SimplerEnv oracle needs privileged observations (obs['privileged'])")
        self.view = View(priv)
        self.steps += 1
        self._track_progress()
        if self._skill is None:
            self.goal_R = None
            self._skill = self._run()
        try:
            return next(self._skill)
        except StopIteration:  # pragma: no cover - _run never ends
            return self._hold()

    @property
    def v(self) -> View:
        assert self.view is not None
        return self.view

    # -- low level -------------------------------------------------------------------------
    def _track_progress(self) -> None:
        """Halve the step size while commanded steps do not move the arm (the controller's IK
        refuses targets too far from the current joints); grow it back once it follows."""
        v = self.v
        last, self._last = self._last, None
        if last is None or v.family != "google" or not self.adaptive:
            self._scale = 1.0
            return
        tcp, R, asked_p, asked_r = last
        moved = float(np.linalg.norm(v.tcp - tcp))
        turned = float(np.linalg.norm(rotvec(v.tcp_R @ R.T)))
        asked = asked_p > 0.005 or asked_r > 0.03
        if asked and moved < 0.15 * asked_p + 0.001 and turned < 0.15 * asked_r + 0.005:
            self._scale = max(0.125, self._scale * 0.5)
        else:
            self._scale = min(1.0, self._scale * 2.0)

    def _command(self, goal: np.ndarray, R: np.ndarray | None, grip: float, speed: float,
                 rot_speed: float = 0.35, gain: float = 1.0) -> np.ndarray:
        """One action towards ``goal``/``R``; ``gain`` scales error and limits (the Google arm covers
        only about a third of a commanded step within its control period, so free moves ask more)."""
        v = self.v
        if v.family == "widowx":
            ref, ref_R = v.target, v.target_R  # deltas apply to the previous target pose
        else:
            ref, ref_R = v.tcp, v.tcp_R  # deltas apply to the measured pose
        dp = clip_norm(gain * (np.asarray(goal, dtype=float) - ref), gain * speed * self._scale)
        dr = clip_norm(self._rot_delta(R if R is not None else self.goal_R, ref_R), rot_speed * self._scale)
        self._last = (v.tcp.copy(), v.tcp_R.copy(), float(np.linalg.norm(dp)), float(np.linalg.norm(dr)))
        out = np.zeros(7)
        out[:3] = v.base_R.T @ dp
        out[3:6] = v.base_R.T @ dr
        out[6] = grip
        return out

    def _hold(self) -> np.ndarray:
        v = self.v
        goal = v.target if v.family == "widowx" else v.tcp
        return self._command(goal, None, self.grip, 0.0, 0.0)

    def _rot_delta(self, goal: Any, ref_R: np.ndarray) -> np.ndarray:
        """World-axes rotation vector from ``ref_R`` to the orientation goal: a full rotation
        matrix, a :class:`Yaw` (turn about the vertical only; the approach axis is brought back
        only when it leans more than ``MAX_TILT``) or ``None`` (keep the current orientation)."""
        if goal is None:
            return np.zeros(3)
        if not isinstance(goal, Yaw):
            return rotvec(goal @ ref_R.T)
        family = self.v.family
        cur = ref_R[:, CLOSING_AXIS[family]].copy()
        cur[2] = 0.0
        cur /= np.linalg.norm(cur) or 1.0
        c = closest_flip(goal.closing, cur)
        out = np.array([0.0, 0.0, math.atan2(cur[0] * c[1] - cur[1] * c[0], float(cur @ c))])
        approach = ref_R[:, APPROACH_AXIS[family]]
        tilt = math.acos(max(-1.0, min(1.0, -float(approach[2]))))
        if tilt > goal.max_tilt:
            axis = np.cross(approach, [0.0, 0.0, -1.0])
            out += axis / (np.linalg.norm(axis) or 1.0) * (tilt - goal.max_tilt)
        return out

    def rot_error(self, R: Any = None) -> float:
        goal = self.goal_R if R is None else R
        return float(np.linalg.norm(self._rot_delta(goal, self.v.tcp_R)))

    def move(self, goal: Iterable[float], R: Any = None, grip: float | None = None,
             tol: float = 0.01, rot_tol: float = 0.06, speed: float = 0.05, max_steps: int = 30,
             stall: int = 0, gain: float | None = None) -> Skill:
        """Servo the TCP to ``goal`` (world) and orientation ``R``; returns whether it got there.

        ``stall``: give up after that many steps without 3 mm of progress (blocked by contact).
        """
        goal = np.asarray(goal, dtype=float)
        if R is not None:
            self.goal_R = R
        if grip is not None:
            self.grip = grip
        if gain is None:
            gain = 1.0 if self.v.family != "google" else (2.5 if tol >= 0.015 else 1.5)
        history: list[float] = []
        for _ in range(max_steps):
            error = float(np.linalg.norm(goal - self.v.tcp))
            if error < tol and self.rot_error() < rot_tol:
                return True
            history.append(error)
            if stall and len(history) > stall + 1 and min(history[-stall:]) > min(history[:-stall]) - 0.003:
                return False  # no new best for ``stall`` steps
            yield self._command(goal, None, self.grip, speed, gain=gain)
        return False

    def hold(self, steps: int, grip: float | None = None) -> Skill:
        if grip is not None:
            self.grip = grip
        for _ in range(steps):
            yield self._hold()

    def gripper(self, grip: float) -> Skill:
        """Open or close and wait until the fingers stop moving."""
        self.grip = grip
        last = None
        steps = 6 if self.v.family == "google" else 3
        for i in range(steps):
            yield self._hold()
            c = self.v.closedness
            if i >= 1 and last is not None and abs(c - last) < 0.01:
                break
            last = c

    # -- grasping -------------------------------------------------------------------------
    def top_down(self, closing: np.ndarray) -> "Yaw":
        """Pointing down (within ``MAX_TILT``, as the arm finds it), fingers closing along the
        horizontal ``closing``. Only the turn about the vertical is enforced: at the far end of the
        workspace the arm cannot keep an arbitrary tilt, and its IK refuses such targets."""
        return Yaw(np.array([closing[0], closing[1], 0.0]), GRASP_TILT)

    def grasp_plan(self, name: str) -> tuple[np.ndarray, np.ndarray, float]:
        """TCP point, finger-closing direction and object height for a top-down grasp of ``name``."""
        v = self.v
        lo, hi = v.bounds(name)
        center = (lo + hi) / 2
        dirs, widths = v.footprint(name)
        closing = dirs[0]
        gap = GOOGLE_OPEN_GAP if v.family == "google" else WIDOWX_OPEN_GAP
        if widths[0] > gap + 0.002:
            raise Failed(f"cannot grasp {name}: its narrow side ({widths[0]:.3f} m) is wider than the open "
                         f"gripper ({gap} m)")
        if widths[1] - widths[0] < 0.01:  # round: whatever needs the least turn
            closing = v.tcp_R[:, CLOSING_AXIS[v.family]]
        site = (v.geometry.get(name) or {}).get("grasp")
        if site and not site.get("on_body", True):  # the box centre lies off the body (a banana)
            center = np.array([site["xy"][0], site["xy"][1], center[2]])
            if site.get("elongation", 1.0) > LOCALLY_ELONGATED and "narrow" in site:
                closing = np.array([site["narrow"][0], site["narrow"][1], 0.0])
        height = float(hi[2] - lo[2])
        if v.family == "google":  # the finger pads lie behind the TCP: centre them on the object; the
            # palm starts 8.7 cm behind the TCP: keep it above the top
            z = max(center[2] - GOOGLE_PAD_CENTRE, hi[2] - GOOGLE_PALM_CLEAR, lo[2] + 0.01, v.table + 0.01)
        else:  # the fingertips reach WIDOWX_TIP below the TCP: just above the object's bottom
            z = lo[2] + float(np.clip(0.25 * height, 0.004, 0.012)) + WIDOWX_TIP
        return np.array([center[0], center[1], z]), closing, height

    def holding(self, name: str, z_before: float) -> bool:
        lo, hi = self.v.bounds(name)
        center = (lo + hi) / 2
        return bool(center[2] - z_before > 0.02 and np.linalg.norm(center[:2] - self.v.tcp[:2]) < 0.12)

    def pick(self, name: str, lift: float = 0.12, attempts: int = 2) -> Skill:
        """Grasp ``name`` from above (tall objects: from the robot's side at grasp height) and lift it."""
        for attempt in range(attempts):
            self.phase = f"pick {name}"
            v = self.v
            point, closing, height = self.grasp_plan(name)
            lo, hi = v.bounds(name)
            side = v.family == "google" and hi[2] - point[2] > GOOGLE_SIDE_GRASP
            if side:  # the hand would not fit above the object within reach: come in level
                u = point[:2] - v.base[:2]
                u /= np.linalg.norm(u) or 1.0
                closing = np.array([-u[1], u[0]])
                pre = np.array([point[0] - 0.10 * u[0], point[1] - 0.10 * u[1], point[2] + 0.01])
            else:
                pre = np.array([point[0], point[1], max(hi[2] + 0.04, point[2] + 0.06)])
            R = self.top_down(closing)
            z_before = float(v.center(name)[2])
            fast, slow = (0.06, 0.035) if v.family == "google" else (0.04, 0.02)
            if side and v.tcp[2] < pre[2] + 0.03:
                yield from self.move(v.tcp + np.array([0, 0, pre[2] + 0.03 - v.tcp[2]]), R, OPEN, tol=0.03,
                                     rot_tol=0.3, speed=fast, max_steps=6)
            yield from self.move(pre, R, OPEN, tol=0.02, rot_tol=0.1, speed=fast, max_steps=25)
            point, _, _ = self.grasp_plan(name)  # it may have been nudged
            yield from self.move(point, R, OPEN, tol=0.008, speed=slow, max_steps=15, stall=4)
            yield from self.gripper(CLOSE)
            start = self.v.tcp.copy()  # lift gently first: a jerk shakes a marginal grasp loose
            yield from self.move(start + np.array([0, 0, 0.03]), None, CLOSE, tol=0.01, speed=0.02, max_steps=3,
                                 gain=1.5)
            yield from self.move(start + np.array([0, 0, lift]), None, CLOSE, tol=0.03, speed=0.04, max_steps=8)
            if self.holding(name, z_before):
                return True
            self.log.append(f"grasp of {name} missed (attempt {attempt + 1})")
            yield from self.gripper(OPEN)
            yield from self.move(self.v.tcp + np.array([0, 0, 0.05]), None, OPEN, tol=0.02, max_steps=4)
        raise Failed(f"could not grasp {name}")

    def place(self, name: str, xy: np.ndarray, bottom: float, clear: float, speed: float = 0.05,
              retreat: float = 0.08) -> Skill:
        """Carry the held ``name`` over ``xy`` at least ``clear`` high, lower its bottom to ``bottom``, release."""
        self.phase = f"place {name}"
        v = self.v

        def aim(z_bottom: float) -> np.ndarray:
            """The TCP goal that puts the object's box centre over ``xy`` and its bottom at ``z_bottom``."""
            lo, hi = self.v.bounds(name)
            centre = (lo + hi) / 2
            return np.array([self.v.tcp[0] + xy[0] - centre[0], self.v.tcp[1] + xy[1] - centre[1],
                             self.v.tcp[2] + z_bottom - lo[2]])

        carry = aim(max(clear, bottom))
        if v.tcp[2] < carry[2] - 0.02:
            yield from self.move([v.tcp[0], v.tcp[1], carry[2]], None, CLOSE, tol=0.03, speed=speed, max_steps=6)
        yield from self.move(aim(max(clear, bottom)), None, CLOSE, tol=0.02, speed=speed, max_steps=25)
        yield from self.move(aim(bottom + 0.03), None, CLOSE, tol=0.01, speed=speed, max_steps=10)
        yield from self.move(aim(bottom), None, CLOSE, tol=0.006, speed=0.02, max_steps=8, stall=3, gain=1.5)
        yield from self.gripper(OPEN)
        yield from self.hold(1)
        yield from self.move(self.v.tcp + np.array([0, 0, retreat]), None, OPEN, tol=0.02, speed=0.03,
                             max_steps=6, gain=1.5)

    # -- drawers --------------------------------------------------------------------------
    def drawer_frame(self) -> np.ndarray:
        """Open fingers pointing at the cabinet and down (``DRAWER_TILT`` from vertical), the
        finger-closing axis horizontal along the cabinet front: the two finger ends work as feet."""
        t = DRAWER_TILT
        approach = np.array([-math.sin(t), 0.0, -math.cos(t)])  # the cabinet faces +x (identity pose)
        return frame(approach, closest_flip(np.array([0.0, 1.0, 0.0]), self.v.tcp_R[:, 1]))

    @staticmethod
    def ends_at(point: Iterable[float], R: np.ndarray) -> np.ndarray:
        """The TCP goal that puts the (nearly closed) fingers' ends at ``point``."""
        return np.asarray(point, dtype=float) + R[:, 2] * DRAWER_FINGER_BACK

    def preshape(self) -> Skill:
        """Close the fingers to ``DRAWER_FINGER_Q`` without their tips touching, then hold them.

        Fully closed on nothing, the Google fingertips press on each other, the measured finger
        velocity jitters and the gripper controller (ruckig, planned from that velocity) can stay
        stuck closed for the rest of the episode; a relative step to just short of contact, then
        zero actions (which repeat the last target), avoids it."""
        q = float(np.mean(self.v.priv.get("gripper_qpos") or [0.0]))
        self.grip = float(np.clip((DRAWER_FINGER_Q - q) / GOOGLE_GRIP_SCALE, -1.0, 1.0))
        yield self._hold()
        self.grip = 0.0
        yield self._hold()

    def to_front(self, front: float, top: float, goal: np.ndarray, R: np.ndarray) -> Skill:
        """Bring the finger ends to ``goal`` in front of a drawer panel (face at x = ``front``, top
        edge at ``top``): over the panel's height first, then down in front of it (an open drawer
        sticks out below the hand's start); back out first only if the hand is already low and behind."""
        ends = self.v.tcp - R[:, 2] * DRAWER_FINGER_BACK
        if ends[2] < top + 0.03 and ends[0] < front + 0.04:
            yield from self.move(self.ends_at([front + 0.08, goal[1], ends[2]], R), R, None, tol=0.03,
                                 rot_tol=0.3, speed=0.06, max_steps=10)
        above = np.array([front + 0.08, goal[1], max(goal[2], top + 0.05)])
        yield from self.move(self.ends_at(above, R), R, None, tol=0.03, rot_tol=0.15, speed=0.08, max_steps=30)
        yield from self.move(self.ends_at(goal, R), R, None, tol=0.02, rot_tol=0.1, speed=0.06, max_steps=15)

    def drawer_open(self, drawer: str, goal_q: float = 0.22, attempts: int = 2) -> Skill:
        """Press the finger ends onto the top edge of the drawer's front panel, just behind it, and
        drag it out (the panel has no handle to grip: upstream's handle is a visual mesh only)."""
        if self.v.family != "google":
            raise Failed("drawer primitives exist for the Google robot only")
        R = self.drawer_frame()
        self.phase = f"open {drawer} drawer"
        yield from self.preshape()
        for attempt in range(attempts):
            self.phase = f"open {drawer} drawer"
            if self.v.drawer_qpos() >= goal_q - 0.01:
                return True
            center, half = self.v.drawer_panel(drawer)
            y = float(np.clip(self.v.base[1], center[1] - half[1] + 0.1, center[1] + half[1] - 0.1))
            top = center[2] + half[2]
            front = center[0] + half[0]
            yield from self.to_front(front, top, np.array([front + 0.08, y, top + 0.04]), R)
            back = center[0] - half[0] - 0.004 - 0.006 * attempt
            yield from self.move(self.ends_at([back, y, top + 0.015], R), R, None, tol=0.008, rot_tol=0.05,
                                 speed=0.04, max_steps=12)
            yield from self.move(self.ends_at([back, y, top - 0.015], R), R, None, tol=0.004, speed=0.02,
                                 max_steps=3)
            stuck = 0
            self.adaptive = False
            for _ in range(40):
                q = self.v.drawer_qpos()
                if q >= goal_q:
                    break
                center, half = self.v.drawer_panel(drawer)
                lead = min(0.05, goal_q - q + 0.01)
                goal = self.ends_at([center[0] - half[0] + lead, y, center[2] + half[2] - 0.015], R)
                before, tcp = q, self.v.tcp
                yield self._command(goal, R, self.grip, 0.06)
                still = np.linalg.norm(self.v.tcp - tcp) < 0.004
                stuck = stuck + 1 if self.v.drawer_qpos() - before < 0.002 and still else 0
                ends = self.v.tcp - R[:, 2] * DRAWER_FINGER_BACK
                slipped = ends[0] > center[0] + half[0] + 0.025  # the fingers came off the panel
                if stuck >= 4 or slipped:
                    break
            self.adaptive = True
            q = self.v.drawer_qpos()
            self.log.append(f"{drawer} drawer at {q:.3f} after pull {attempt + 1}")
            yield from self.move(self.v.tcp + np.array([0.03, 0.0, 0.05]), R, None, tol=0.02, speed=0.05,
                                 max_steps=4)
            if q >= goal_q - 0.03:
                return True
        q = self.v.drawer_qpos()
        if q >= 0.16:
            return True
        raise Failed(f"could not open the {drawer} drawer (joint {q:.3f} m)")

    def drawer_close(self, drawer: str, goal_q: float = 0.02) -> Skill:
        """Push the drawer's front panel in with the finger ends."""
        if self.v.family != "google":
            raise Failed("drawer primitives exist for the Google robot only")
        self.phase = f"close {drawer} drawer"
        R = self.drawer_frame()
        yield from self.preshape()
        center, half = self.v.drawer_panel(drawer)
        y = float(np.clip(self.v.base[1], center[1] - half[1] + 0.1, center[1] + half[1] - 0.1))
        front = center[0] + half[0]
        yield from self.to_front(front, center[2] + half[2], np.array([front + 0.05, y, center[2] + 0.02]), R)
        stuck = 0
        self.adaptive = False
        for _ in range(40):
            q = self.v.drawer_qpos()
            if q <= goal_q:
                break
            center, half = self.v.drawer_panel(drawer)
            end = [center[0] + half[0] - min(0.05, q - goal_q + 0.01), y, center[2] + 0.02]
            before, tcp = q, self.v.tcp
            yield self._command(self.ends_at(end, R), R, self.grip, 0.06)
            still = np.linalg.norm(self.v.tcp - tcp) < 0.004
            stuck = stuck + 1 if before - self.v.drawer_qpos() < 0.002 and still else 0
            if stuck >= 4:
                break
        self.adaptive = True
        yield from self.move(self.v.tcp + np.array([0.08, 0.0, 0.02]), R, None, tol=0.02, speed=0.05, max_steps=4)
        q = self.v.drawer_qpos()
        self.log.append(f"{drawer} drawer at {q:.3f} after push")
        if q > 0.05:
            raise Failed(f"could not close the {drawer} drawer (joint {q:.3f} m)")
        return True

    # -- tasks ----------------------------------------------------------------------------
    def _run(self) -> Skill:
        task = self.v.task
        kind = task.get("kind")
        try:
            if kind == "grasp":
                yield from self.task_grasp(task["object"])
            elif kind == "move_near":
                yield from self.task_move_near(task["source"], task["target"])
            elif kind == "put_on":
                yield from self.task_put_on(task["source"], task["target"])
            elif kind == "open_drawer":
                yield from self.drawer_open(task["drawer"])
            elif kind == "close_drawer":
                yield from self.drawer_close(task["drawer"])
            elif kind in ("place_into_drawer", "put_into_drawer"):
                yield from self.task_into_drawer(task["object"], task["drawer"])
            elif self.v.priv.get("oracle_state_error"):
                raise Failed(f"the backend could not describe the task: {self.v.priv['oracle_state_error']}")
            else:
                raise Failed(f"no plan for task kind {kind!r} (env {task.get('env_class')!r}); "
                             "the backend's privileged state names no known task")
            self.phase, self.done = "done", True
        except Failed as exc:
            self.failure = str(exc)
            self.log.append(f"failed: {exc}")
            self.phase = "failed"
        while True:
            yield self._hold()

    def task_grasp(self, name: str) -> Skill:
        yield from self.pick(name, lift=0.12)
        self.phase = f"hold {name}"

    def clearance(self, held: str, goal_xy: np.ndarray, include: Iterable[str] = ()) -> float:
        """Height the held object's bottom must keep on its way to ``goal_xy``: 3 cm above what lies
        near the straight path (and above everything in ``include``)."""
        v = self.v
        a = v.center(held)[:2]
        b = np.asarray(goal_xy, float)[:2]
        lo_h, hi_h = v.bounds(held)
        reach = float(np.linalg.norm(hi_h[:2] - lo_h[:2])) / 2 + 0.04
        tops = [v.table]
        for n in self.others([held]):
            lo, hi = v.bounds(n)
            c = (lo[:2] + hi[:2]) / 2
            t = float(np.clip((c - a) @ (b - a) / max(float((b - a) @ (b - a)), 1e-9), 0.0, 1.0))
            near = float(np.linalg.norm(a + t * (b - a) - c)) < reach + float(np.linalg.norm(hi[:2] - lo[:2])) / 2
            if near or n in include:
                tops.append(float(hi[2]))
        return max(tops) + 0.03

    def others(self, exclude: Iterable[str]) -> list[str]:
        skip = set(exclude)
        return [n for n in self.v.geometry if n not in skip]

    def task_move_near(self, source: str, target: str) -> Skill:
        v = self.v
        task = v.task
        sb = np.asarray(task.get("source_bbox") or (v.bounds(source)[1] - v.bounds(source)[0]), float)
        tb = np.asarray(task.get("target_bbox") or (v.bounds(target)[1] - v.bounds(target)[0]), float)
        # the rule: distance < half diagonal(target) + half diagonal(source) + 10 cm
        reach = float(np.linalg.norm(tb[:2]) / 2 + np.linalg.norm(sb[:2]) / 2 + 0.01)
        # the rule's "closest" check also measures the target by its origin (not its centre of
        # mass, as for "near"): keep the origin at least as far as the COM, too
        others = [v.pos(n)[:2] for n in self.others([source, target]) if n in v.priv.get("objects", {})]
        t_xy = v.com(target)[:2]
        spot = spot_near(t_xy, reach, others, v.com(source)[:2], target_origin=v.pos(target)[:2])
        lo, hi = v.bounds(source)
        spot = spot + ((lo + hi) / 2 - v.com(source))[:2]  # the rule measures the COM; place() the box centre
        yield from self.pick(source, lift=0.10)
        yield from self.place(source, spot, v.table + 0.004, self.clearance(source, spot))
        self.phase = "placed"

    def task_put_on(self, source: str, target: str) -> Skill:
        yield from self.pick(source, lift=0.08)
        v = self.v  # the view of this step (``self.view`` is replaced at every step)
        lo, hi = v.bounds(target)
        t_xy = v.com(target)[:2]
        clear = self.clearance(source, t_xy, include=[target])
        bottom = hi[2] + 0.01 if v.task.get("strict", True) else hi[2] + 0.02
        yield from self.place(source, t_xy, bottom, clear, speed=0.04, retreat=0.06)
        self.phase = "placed"

    def task_into_drawer(self, name: str, drawer: str) -> Skill:
        """Open the drawer far enough, pick ``name`` (it lies on the cabinet top) and drop it into the
        drawer from just below the cabinet top (the rules only ask that it touches the drawer's floor;
        the hand never has to fit into the opening)."""
        v = self.v
        lo, hi = v.bounds(name)
        size = float(max(hi[0] - lo[0], hi[1] - lo[1]))
        center, half = v.drawer_panel(drawer)
        opening = center[0] - half[0] - DRAWER_WALL - v.cabinet_front()  # between cabinet top and panel
        if opening < size + 2 * DROP_MARGIN:
            q = v.drawer_qpos()
            yield from self.drawer_open(drawer, goal_q=max(0.22, q + size + 2 * DROP_MARGIN - opening + 0.02))
        yield from self.pick(name, lift=0.10, attempts=3)  # 200 steps leave time for a third try
        v = self.v
        center, half = v.drawer_panel(drawer)
        x = (v.cabinet_front() + center[0] - half[0] - DRAWER_WALL) / 2
        y = float(np.clip(v.center(name)[1], center[1] - half[1] + 0.12, center[1] + half[1] - 0.12))
        top = v.cabinet_top()
        yield from self.place(name, np.array([x, y]), top - 0.01, top + 0.03, speed=0.05, retreat=0.08)
        self.phase = "placed"

"""Robots of the SimplerEnv tasks and their controllers, on SAPIEN 2.2.2.

Two robots, configured as the upstream evaluation configures them (facts from
``ManiSkill2_real2sim`` @ ef7a4d4: agents/configs/{google_robot,widowx}/defaults.py and
agents/controllers, restated here; see shared/docs/simplerenv.md §1.2):

* ``google_robot_static`` (fixed base): 3 Hz control / 513 Hz sim, control mode
  ``arm_pd_ee_delta_pose_align_interpolate_by_planner_gripper_pd_joint_target_delta_pos_interpolate_by_planner``.
  The arm controller drives 9 joints (7 arm + head pan/tilt) towards an IK target; a delta pose
  is applied in base axes about the *measured* EE pose ("ee_align"); each control step the
  joint path is time-parameterised by ruckig (v 1.5, a 2.0, j 50). The gripper action is a
  relative finger-joint change: [-1, 1] -> [-1.31, 1.31] rad, +1 = close.
* ``widowx`` / ``widowx_sink_camera_setup``: 5 Hz / 500 Hz, control mode
  ``arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos``: the delta rotation is about the
  current EE position in base axes and applied to the previous *target* pose ("ee_align2");
  the gripper is absolute, [-1, 1] -> finger qpos [0.014, 0.038] m, +1 = open.

The controller state machine (targets, interpolation paths, small-action repeat, target
clipping) follows the upstream semantics step for step, so a replay of an upstream action
sequence can be compared joint by joint. Imports SAPIEN; backend side only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------
# configuration (facts)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planner:
    """Ruckig limits of the joint-path interpolation (per joint, symmetric)."""

    vlim: float
    alim: float
    jerklim: float
    set_velocity_targets: bool = False  # also drive joint velocities along the path
    init_no_vel: bool = False


@dataclass(frozen=True)
class JointDrive:
    joints: tuple[str, ...]
    stiffness: tuple[float, ...] | float
    damping: tuple[float, ...] | float
    force_limit: tuple[float, ...] | float
    friction: float = 0.0
    drive_mode: str = "force"


@dataclass(frozen=True)
class ArmControl:
    """End-effector delta-pose control through IK (the arm part of a control mode)."""

    drive: JointDrive
    ee_link: str
    frame: str  # "ee_align" | "ee_align2"
    use_target: bool = False
    delta_target_from_last_drive_target: bool = False
    planner: Planner | None = None  # None: targets applied at once


@dataclass(frozen=True)
class GripperControl:
    """Finger joints driven as one (mimic) joint; the action is normalised to [low, high]."""

    drive: JointDrive
    low: float
    high: float
    use_delta: bool = False
    use_target: bool = False
    clip_target: bool = False
    clip_target_thres: float = 0.01
    delta_target_from_last_drive_target: bool = False
    small_action_repeat_last_target: bool = False
    planner: Planner | None = None


@dataclass(frozen=True)
class CameraSpec:
    name: str
    mount: str  # link name
    p: tuple[float, float, float]
    q: tuple[float, float, float, float]  # wxyz, SAPIEN camera convention (x forward, z up)
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    near: float = 0.1
    far: float = 10.0
    fovy: float = 1.5  # unused once the intrinsics are set


@dataclass(frozen=True)
class RobotSpec:
    name: str
    urdf: str  # relative to the pack's descriptions/
    family: str  # "google" | "widowx"
    control_mode: str
    control_freq: int
    sim_freq: int
    arm: ArmControl
    gripper: GripperControl
    materials: dict[str, dict[str, float]]
    link_materials: dict[str, dict[str, Any]]
    init_qpos: tuple[float, ...]
    init_height: float
    camera: CameraSpec
    base_link: str
    tcp_link: str
    grasp_max_angle: float  # default max_angle of check_grasp
    extra: dict[str, Any] = field(default_factory=dict)

    def urdf_for(self, urdf_version: str | None) -> str:
        if not urdf_version:
            return self.urdf
        return self.urdf[: -len(".urdf")] + f"_{urdf_version}.urdf"


def _google_robot() -> RobotSpec:
    finger_patch = 0.1
    nail_patch = 0.01
    link_materials = {
        "link_base": {"material": "base_mat", "patch_radius": 0.1, "min_patch_radius": 0.1},
        "link_wheel_left": {"material": "wheel_mat", "patch_radius": 0.1, "min_patch_radius": 0.1},
        "link_wheel_right": {"material": "wheel_mat", "patch_radius": 0.1, "min_patch_radius": 0.1},
    }
    for side in ("left", "right"):
        link_materials[f"link_finger_{side}"] = {"material": "finger_mat", "patch_radius": finger_patch,
                                                 "min_patch_radius": finger_patch}
        link_materials[f"link_finger_tip_{side}"] = {"material": "finger_tip_mat", "patch_radius": finger_patch,
                                                     "min_patch_radius": finger_patch}
        link_materials[f"link_finger_nail_{side}"] = {"material": "finger_nail_mat", "patch_radius": nail_patch,
                                                      "min_patch_radius": nail_patch}
    friction = 2.0
    arm = ArmControl(
        drive=JointDrive(
            joints=("joint_torso", "joint_shoulder", "joint_bicep", "joint_elbow", "joint_forearm", "joint_wrist",
                    "joint_gripper", "joint_head_pan", "joint_head_tilt"),
            stiffness=(1700.0, 1737.0471680861954, 979.975871856535, 930.0, 1212.154500274304, 432.96500923932535,
                       468.0013365498738, 2000.0, 2000.0),
            damping=(1059.9791902443303, 1010.4720585373592, 767.2803161582076, 680.0, 674.9946964336588,
                     274.613381336198, 340.532560578637, 900.0, 900.0),
            force_limit=(300.0, 300.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0),
        ),
        ee_link="link_gripper_tcp",
        frame="ee_align",
        planner=Planner(vlim=1.5, alim=2.0, jerklim=50.0),
    )
    gripper = GripperControl(
        drive=JointDrive(joints=("joint_finger_right", "joint_finger_left"), stiffness=200.0, damping=8.0,
                         force_limit=60.0),
        low=-1.3 - 0.01,
        high=1.3 + 0.01,
        use_delta=True,
        use_target=True,
        clip_target=True,
        clip_target_thres=0.01,
        delta_target_from_last_drive_target=True,
        small_action_repeat_last_target=True,
        planner=Planner(vlim=1.0, alim=7.0, jerklim=50.0, set_velocity_targets=True),
    )
    return RobotSpec(
        name="google_robot_static",
        urdf="googlerobot_description/google_robot_meta_sim_fix_wheel_fix_fingertip.urdf",
        family="google",
        control_mode="arm_pd_ee_delta_pose_align_interpolate_by_planner_gripper_pd_joint_target_delta_pos_interpolate_by_planner",
        control_freq=3,
        sim_freq=513,
        arm=arm,
        gripper=gripper,
        materials={
            "finger_mat": {"static_friction": friction, "dynamic_friction": friction, "restitution": 0.0},
            "finger_tip_mat": {"static_friction": friction, "dynamic_friction": friction, "restitution": 0.0},
            "finger_nail_mat": {"static_friction": 0.1, "dynamic_friction": 0.1, "restitution": 0.0},
            "base_mat": {"static_friction": 0.1, "dynamic_friction": 0.0, "restitution": 0.0},
            "wheel_mat": {"static_friction": 1.0, "dynamic_friction": 0.0, "restitution": 0.0},
        },
        link_materials=link_materials,
        init_qpos=(-0.2639457174606611, 0.0831913360274175, 0.5017611504652179, 1.156859026208673,
                   0.028583671314766423, 1.592598203487462, -1.080652960128774, 0.0, 0.0, -0.00285961, 0.7851361),
        init_height=0.06205 + 0.017,
        camera=CameraSpec(name="overhead_camera", mount="link_camera", p=(0.0, 0.0, 0.0), q=(0.5, 0.5, -0.5, 0.5),
                          width=640, height=512, fx=425.0, fy=425.0, cx=320.0, cy=256.0),
        base_link="link_base",
        tcp_link="link_gripper_tcp",
        grasp_max_angle=80.0,
    )


def _widowx(name: str) -> RobotSpec:
    clearance = 0.001  # extra range so the PD gripper keeps squeezing (upstream)
    arm = ArmControl(
        drive=JointDrive(
            joints=("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"),
            stiffness=(1169.7891719504198, 730.0, 808.4601346394447, 1229.1299089624076, 1272.2760456418862,
                       1056.3326605132252),
            damping=(330.0, 180.0, 152.12036565582588, 309.6215302722146, 201.04998711007383, 269.51458932695414),
            force_limit=(200.0, 200.0, 100.0, 100.0, 100.0, 100.0),
        ),
        ee_link="ee_gripper_link",
        frame="ee_align2",
        use_target=True,
    )
    gripper = GripperControl(
        drive=JointDrive(joints=("left_finger", "right_finger"), stiffness=1000.0, damping=200.0, force_limit=60.0),
        low=0.015 - clearance,
        high=0.037 + clearance,
    )
    intr = {"fx": 623.588, "fy": 623.588, "cx": 319.501, "cy": 239.545}
    if name == "widowx_sink_camera_setup":
        camera = CameraSpec(name="3rd_view_camera", mount="base_link", p=(-0.00300001, -0.21, 0.39),
                            q=(-0.907313, 0.0782, -0.36434, -0.194741), width=640, height=480, near=0.01, far=10.0,
                            **intr)
        qpos = (-0.2600599, -0.12875618, 0.04461369, -0.00652761, 1.7033415, -0.26983038, 0.037, 0.037)
        height = 0.85
    else:
        # q = look_at(eye=[0, 0, 0], target=[1, 0.553, -1.085]).q, computed in camera_quat_widowx()
        camera = CameraSpec(name="3rd_view_camera", mount="base_link", p=(0.0, -0.16, 0.36), q=(0.0, 0.0, 0.0, 0.0),
                            width=640, height=480, **intr)
        qpos = (-0.01840777, 0.0398835, 0.22242722, -0.00460194, 1.36524296, 0.00153398, 0.037, 0.037)
        height = 0.870
    return RobotSpec(
        name=name,
        urdf="widowx_description/wx250s.urdf",
        family="widowx",
        control_mode="arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos",
        control_freq=5,
        sim_freq=500,
        arm=arm,
        gripper=gripper,
        materials={"gripper": {"static_friction": 2.0, "dynamic_friction": 2.0, "restitution": 0.0}},
        link_materials={
            "left_finger_link": {"material": "gripper", "patch_radius": 0.01, "min_patch_radius": 0.01},
            "right_finger_link": {"material": "gripper", "patch_radius": 0.01, "min_patch_radius": 0.01},
        },
        init_qpos=qpos,
        init_height=height,
        camera=camera,
        base_link="base_link",
        tcp_link="ee_gripper_link",
        grasp_max_angle=60.0,
        extra={"look_at_target": (1.0, 0.553, -1.085)} if name != "widowx_sink_camera_setup" else {},
    )


ROBOTS: dict[str, RobotSpec] = {
    "google_robot_static": _google_robot(),
    "widowx": _widowx("widowx"),
    "widowx_sink_camera_setup": _widowx("widowx_sink_camera_setup"),
}


def robot_spec(name: str) -> RobotSpec:
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown SimplerEnv robot {name!r} (known: {', '.join(ROBOTS)})") from None


def camera_pose_q(spec: RobotSpec) -> tuple[float, ...]:
    """The mount-relative camera quaternion (look-at for the default WidowX camera)."""
    target = spec.extra.get("look_at_target")
    if target is None:
        return spec.camera.q
    from mani_skill2.utils.sapien_utils import look_at

    return tuple(float(v) for v in look_at([0.0, 0.0, 0.0], list(target)).q)


# ---------------------------------------------------------------------------------------------
# controllers
# ---------------------------------------------------------------------------------------------


def _active_joints(articulation: Any, names: Sequence[str]) -> tuple[list[Any], list[int]]:
    active = articulation.get_active_joints()
    by_name = [j.name for j in active]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"{articulation.name}: no active joints {missing} (has {by_name})")
    idx = [by_name.index(n) for n in names]
    return [active[i] for i in idx], idx


def plan_joint_path(start: np.ndarray, target: np.ndarray, init_v: np.ndarray | float, planner: Planner,
                    sim_freq: int, n_steps: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Jerk-limited path from ``start`` (velocity ``init_v``) to ``target`` at rest, sampled at
    the ``n_steps + 1`` sim-step times of one control step (clamped to the path's duration)."""
    from ruckig import InputParameter, Ruckig, Trajectory

    dof = len(start)
    inp = InputParameter(dof)
    inp.current_position = np.asarray(start, dtype=np.float64)
    inp.current_velocity = np.full(dof, init_v) if np.isscalar(init_v) else np.asarray(init_v, dtype=np.float64)
    inp.current_acceleration = np.zeros(dof)
    inp.target_position = np.asarray(target, dtype=np.float64)
    inp.target_velocity = np.zeros(dof)
    inp.target_acceleration = np.zeros(dof)
    inp.max_velocity = np.full(dof, planner.vlim)
    inp.max_acceleration = np.full(dof, planner.alim)
    inp.max_jerk = np.full(dof, planner.jerklim)
    inp.min_velocity = np.full(dof, -planner.vlim)
    inp.min_acceleration = np.full(dof, -planner.alim)
    trajectory = Trajectory(dof)
    Ruckig(dof).calculate(inp, trajectory)
    duration = trajectory.duration
    times = np.clip(np.arange(n_steps + 1) * (1.0 / sim_freq), 0, duration)
    pos, vel = [], []
    for t in times:
        p, v, _ = trajectory.at_time(float(t))
        pos.append(np.asarray(p, dtype=np.float64))
        vel.append(np.asarray(v, dtype=np.float64))
    return pos, vel


class JointTargetController:
    """PD joint-position drive with optional per-sim-step interpolation of the targets."""

    def __init__(self, articulation: Any, drive: JointDrive, planner: Planner | None, sim_freq: int,
                 control_freq: int, interpolate: bool):
        self.articulation = articulation
        self.drive = drive
        self.planner = planner
        self.interpolate = interpolate
        self.sim_freq = sim_freq
        self.sim_steps = sim_freq // control_freq
        self.joints, self.joint_indices = _active_joints(articulation, drive.joints)
        self._step = 0
        self._path: list[np.ndarray] | None = None
        self._path_vel: list[np.ndarray] | None = None

    @property
    def qpos(self) -> np.ndarray:
        return self.articulation.get_qpos()[self.joint_indices]

    def set_drive_property(self) -> None:
        n = len(self.joints)
        stiffness = np.broadcast_to(self.drive.stiffness, n)
        damping = np.broadcast_to(self.drive.damping, n)
        force = np.broadcast_to(self.drive.force_limit, n)
        friction = np.broadcast_to(self.drive.friction, n)
        for i, joint in enumerate(self.joints):
            joint.set_drive_property(float(stiffness[i]), float(damping[i]), force_limit=float(force[i]),
                                     mode=self.drive.drive_mode)
            joint.set_friction(float(friction[i]))

    def reset(self) -> None:
        self.set_drive_property()
        self._step = 0
        q = self.qpos
        self._start_qpos = q
        self._target_qpos = q
        self._last_drive_targets = q
        self._path = None
        self._path_vel = None

    def set_drive_targets(self, targets: np.ndarray) -> None:
        self._last_drive_targets = targets
        for i, joint in enumerate(self.joints):
            joint.set_drive_target(float(targets[i]))

    def set_drive_velocity_targets(self, targets: np.ndarray) -> None:
        for i, joint in enumerate(self.joints):
            joint.set_drive_velocity_target(float(targets[i]))

    def _setup_interpolation(self, use_target: bool) -> None:
        if self.planner is not None:
            if self.planner.init_no_vel:
                init_v: Any = 0.0
            else:
                init_v = np.clip(self.articulation.get_qvel()[self.joint_indices], -self.planner.vlim,
                                 self.planner.vlim)
            if use_target or self._path is None:
                init_q = self.qpos  # plan from the measured joints
            else:
                # continue from the last waypoint the previous control step planned
                k = min(self.sim_steps, len(self._path) - 1)
                init_q = self._path[k]
                if not self.planner.init_no_vel and self._path_vel is not None:
                    init_v = self._path_vel[k]
            path, vel = plan_joint_path(init_q, self._target_qpos, init_v, self.planner, self.sim_freq,
                                        self.sim_steps)
            self._path = path
            if not self.planner.init_no_vel:
                self._path_vel = vel
        else:
            step = (self._target_qpos - self._start_qpos) / self.sim_steps
            self._path = [self._start_qpos + step * i for i in range(self.sim_steps + 1)]

    def before_simulation_step(self) -> None:
        self._step += 1
        if not self.interpolate:
            return
        assert self._path is not None
        k = min(self._step, len(self._path) - 1)
        self.set_drive_targets(self._path[k])
        if self.planner is not None and self.planner.set_velocity_targets and self._path_vel is not None:
            self.set_drive_velocity_targets(self._path_vel[k])


class GripperController(JointTargetController):
    """Two finger joints commanded by one normalised scalar (upstream PDJointPosMimicController)."""

    def __init__(self, articulation: Any, spec: GripperControl, sim_freq: int, control_freq: int):
        super().__init__(articulation, spec.drive, spec.planner, sim_freq, control_freq,
                         interpolate=spec.planner is not None)
        self.spec = spec
        limits = articulation.get_qlimits()[self.joint_indices]
        if not np.allclose(limits[:-1] - limits[1:], 0):
            raise ValueError("mimic gripper joints must share their limits")
        self._qlimits = limits

    def scale(self, action: np.ndarray) -> np.ndarray:
        """[-1, 1] -> [low, high] (clipped first).

        Upstream scales with the bounds of its float32 action space (``spaces.Box(...,
        dtype=np.float32)``), so ``low``/``high`` are float32-rounded and the sums are float32;
        e.g. 0.5 -> 0.65499997 rad rather than 0.655. The replay parity benchmark showed that
        the 3e-8 difference grows to 1e-3 rad once the fingers touch, so it is reproduced."""
        a = np.clip(action, -1, 1)
        low = np.asarray([self.spec.low], dtype=np.float32)
        high = np.asarray([self.spec.high], dtype=np.float32)
        return 0.5 * (high + low) + 0.5 * (high - low) * a

    def set_action(self, action: np.ndarray) -> None:
        s = self.spec
        action = self.scale(np.asarray(action, dtype=np.float64).reshape(1))
        self._step = 0
        self._start_qpos = self.qpos
        last_target = self._target_qpos
        if s.use_delta:
            if s.use_target:
                if s.delta_target_from_last_drive_target:
                    self._target_qpos = self._last_drive_targets
                    self._start_qpos = self._last_drive_targets
                self._target_qpos = self._target_qpos + action
                if s.clip_target:
                    self._target_qpos = np.clip(self._target_qpos, self._qlimits[:, 0] - s.clip_target_thres,
                                                self._qlimits[:, 1] + s.clip_target_thres)
            else:
                self._target_qpos = self._start_qpos + action
        else:
            self._target_qpos = np.broadcast_to(action, self._start_qpos.shape).copy()
        if s.small_action_repeat_last_target:
            small = np.where(np.abs(np.broadcast_to(action, self._target_qpos.shape)) < 1e-3)[0]
            self._target_qpos[small] = last_target[small]
        if self.interpolate:
            self._setup_interpolation(s.use_target)
        else:
            self.set_drive_targets(self._target_qpos)


class EEPoseController(JointTargetController):
    """Delta end-effector pose -> IK joint targets (upstream PDEEPoseController, unnormalised)."""

    def __init__(self, articulation: Any, spec: ArmControl, sim_freq: int, control_freq: int):
        super().__init__(articulation, spec.drive, spec.planner, sim_freq, control_freq,
                         interpolate=spec.planner is not None)
        self.spec = spec
        self.pmodel = articulation.create_pinocchio_model()
        self.qmask = np.zeros(articulation.dof, dtype=np.int32)
        self.qmask[self.joint_indices] = 1
        links = articulation.get_links()
        names = [link.name for link in links]
        if spec.ee_link not in names:
            raise ValueError(f"{articulation.name}: no link {spec.ee_link!r}")
        self.ee_link_idx = names.index(spec.ee_link)
        self.ee_link = links[self.ee_link_idx]

    @property
    def ee_pose_at_base(self) -> Any:
        return self.articulation.pose.inv().transform(self.ee_link.pose)

    def reset(self) -> None:
        super().reset()
        self._target_pose = self.ee_pose_at_base

    def compute_ik(self, target_pose: Any) -> np.ndarray | None:
        result, success, _ = self.pmodel.compute_inverse_kinematics(
            self.ee_link_idx, target_pose, initial_qpos=self.articulation.get_qpos(), active_qmask=self.qmask,
            max_iterations=100,
        )
        return np.asarray(result)[self.joint_indices] if success else None

    def compute_fk(self, qpos: np.ndarray) -> Any:
        full = self.articulation.get_qpos()
        full[self.joint_indices] = qpos
        self.pmodel.compute_forward_kinematics(full)
        return self.pmodel.get_link_pose(self.ee_link_idx)

    def target_pose(self, prev: Any, action: np.ndarray) -> Any:
        import sapien.core as sapien
        from scipy.spatial.transform import Rotation

        delta_pos, delta_rot = action[:3], action[3:6]
        delta = sapien.Pose(delta_pos, Rotation.from_rotvec(delta_rot).as_quat()[[3, 0, 1, 2]])
        if self.spec.frame == "ee_align":
            # rotation in base axes about the EE origin; translation in base axes
            target = delta * prev
            target.set_p(prev.p + delta_pos)
            return target
        if self.spec.frame == "ee_align2":
            cur = self.compute_fk(self.qpos)
            about = sapien.Pose(p=cur.p)
            return (about * delta * about.inv()) * prev
        raise ValueError(f"unsupported EE frame {self.spec.frame!r}")

    def set_action(self, action: np.ndarray) -> None:
        action = np.asarray(action, dtype=np.float64).reshape(6)  # not normalised, not clipped (upstream)
        self._step = 0
        self._start_qpos = self.qpos
        if self.spec.use_target:
            if self.spec.delta_target_from_last_drive_target:
                prev = self.compute_fk(self._last_drive_targets)
                self._start_qpos = self._last_drive_targets
            else:
                prev = self._target_pose
        else:
            prev = self.ee_pose_at_base
        self._target_pose = self.target_pose(prev, action)
        target_q = self.compute_ik(self._target_pose)
        self._target_qpos = self._start_qpos if target_q is None else target_q
        if self.interpolate:
            self._setup_interpolation(self.spec.use_target)
        else:
            self.set_drive_targets(self._target_qpos)


# ---------------------------------------------------------------------------------------------
# the robot
# ---------------------------------------------------------------------------------------------


class Robot:
    """A loaded robot: articulation, controllers, grasp checks and proprioception."""

    def __init__(self, scene: Any, spec: RobotSpec, urdf_path: str):
        from mani_skill2.utils.sapien_utils import check_urdf_config, parse_urdf_config

        self.scene = scene
        self.spec = spec
        loader = scene.create_urdf_loader()
        loader.fix_root_link = True
        loader.load_multiple_collisions_from_file = True
        config = parse_urdf_config({"_materials": spec.materials, "link": spec.link_materials}, scene)
        check_urdf_config(config)
        robot = loader.load(urdf_path, config)
        if robot is None:
            raise RuntimeError(f"SAPIEN could not load {urdf_path}")
        robot.set_name(urdf_path.rsplit("/", 1)[-1][: -len(".urdf")])
        self.articulation = robot
        self.links = {link.name: link for link in robot.get_links()}
        self.link_ids = [link.get_id() for link in robot.get_links()]
        self.link_names = set(self.links)
        self.arm = EEPoseController(robot, spec.arm, spec.sim_freq, spec.control_freq)
        self.gripper = GripperController(robot, spec.gripper, spec.sim_freq, spec.control_freq)
        controlled = set(self.arm.joint_indices) | set(self.gripper.joint_indices)
        if len(controlled) != len(robot.get_active_joints()):
            raise AssertionError(f"{robot.name} is not fully actuated by its controllers")
        self.tcp = self.links[spec.tcp_link]
        self.base = self.links[spec.base_link]
        if spec.family == "widowx":
            self._widowx_collision_groups()
        self.reset_controllers()

    def _widowx_collision_groups(self) -> None:
        # the gripper bar must not collide with the fingers (upstream collision groups)
        for shape in self.links["gripper_bar_link"].get_collision_shapes():
            shape.set_collision_groups(1, 1, 0b11, 0)
        for shape in self.links["left_finger_link"].get_collision_shapes():
            shape.set_collision_groups(1, 1, 0b01, 0)
        for shape in self.links["right_finger_link"].get_collision_shapes():
            shape.set_collision_groups(1, 1, 0b10, 0)

    # -- control ---------------------------------------------------------------------------
    def reset_controllers(self) -> None:
        self.arm.reset()
        self.gripper.reset()

    def reset(self, qpos: Sequence[float]) -> None:
        robot = self.articulation
        robot.set_qpos(np.asarray(qpos, dtype=np.float64))
        robot.set_qvel(np.zeros(robot.dof))
        robot.set_qacc(np.zeros(robot.dof))
        robot.set_qf(np.zeros(robot.dof))
        self.reset_controllers()

    def set_action(self, action: np.ndarray) -> None:
        action = np.asarray(action, dtype=np.float64).reshape(7)
        if np.isnan(action).any():
            raise ValueError(f"action contains NaN: {action}")
        self.arm.set_action(action[:6])
        self.gripper.set_action(action[6:7])

    def before_simulation_step(self) -> None:
        # gravity + Coriolis compensation, then the controllers' targets
        qf = self.articulation.compute_passive_force(external=False)
        self.arm.before_simulation_step()
        self.gripper.before_simulation_step()
        self.articulation.set_qf(qf)

    # -- state -----------------------------------------------------------------------------
    def gripper_closedness(self) -> float:
        robot = self.articulation
        idx = self.gripper.joint_indices
        q = robot.get_qpos()[idx]
        lim = robot.get_qlimits()[idx]
        if self.spec.family == "google":
            return float(max(np.mean(q / lim[:, 1]), 0.0))
        closed = (lim[:, 1] - q) / (lim[:, 1] - lim[:, 0])
        return float(max(np.mean(closed), 0.0))

    def eef_state(self) -> np.ndarray:
        """[tcp xyz in the base-link frame, quat wxyz (w >= 0), gripper openness] (SimplerEnv-Instruct's eef_pos).

        Pose algebra, not ``np.linalg``: a LAPACK call per step wakes BLAS threads that then spin
        on the CPUs the software renderer needs (+13 % per step on 2 cores, measured).
        """
        ee_in_base = self.base.pose.inv() * self.tcp.pose
        quat = np.asarray(ee_in_base.q, dtype=np.float64)
        quat = -quat if quat[0] < 0 else quat
        return np.concatenate([ee_in_base.p, quat, [1.0 - self.gripper_closedness()]])

    def finger_links(self) -> dict[str, Any]:
        if self.spec.family == "google":
            return {"left": self.links["link_finger_left"], "left_tip": self.links["link_finger_tip_left"],
                    "right": self.links["link_finger_right"], "right_tip": self.links["link_finger_tip_right"]}
        return {"left": self.links["left_finger_link"], "right": self.links["right_finger_link"]}

    def check_grasp(self, actor: Any, min_impulse: float = 1e-6, max_angle: float | None = None,
                    contacts: list[Any] | None = None) -> bool:
        """Both fingers push the actor, each impulse within ``max_angle`` of its opening direction."""
        from mani_skill2.utils.common import compute_angle_between
        from mani_skill2.utils.sapien_utils import get_pairwise_contact_impulse

        max_angle = self.spec.grasp_max_angle if max_angle is None else max_angle
        contacts = self.scene.get_contacts() if contacts is None else contacts
        f = self.finger_links()

        def side(links: list[Any], sign: float) -> bool:
            impulses = [get_pairwise_contact_impulse(contacts, link, actor) for link in links]
            angles = [compute_angle_between(sign * link.pose.to_transformation_matrix()[:3, 1], imp)
                      for link, imp in zip(links, impulses)]
            strong = max(np.linalg.norm(imp) for imp in impulses) >= min_impulse
            return bool(strong and np.rad2deg(min(angles)) <= max_angle)

        if self.spec.family == "google":
            # tip first, then finger: min angle over both links of a side
            return side([f["left_tip"], f["left"]], 1.0) and side([f["right_tip"], f["right"]], 1.0)
        return side([f["left"]], 1.0) and side([f["right"]], -1.0)


def pose_wxyz_from_yaw(yaw: float, center_wxyz: Sequence[float] = (0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
    """``(Pose(q=euler2quat(0, 0, yaw)) * Pose(q=center)).q`` (wxyz): the evaluator's robot-orientation rule."""
    import sapien.core as sapien
    from transforms3d.euler import euler2quat

    return np.asarray((sapien.Pose(q=euler2quat(0.0, 0.0, yaw)) * sapien.Pose(q=list(center_wxyz))).q,
                      dtype=np.float64)

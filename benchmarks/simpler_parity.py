"""Replay parity: vlaeval's native SimplerEnv envs against the upstream ManiSkill2_real2sim envs.

For each catalog task (``vlaeval/suites/simpler/tasks.yaml``) and episode, both sides build the
episode with the same reset options and replay the same action sequences:

* ``zero``: all-zero actions (Google: arm and relative gripper hold; WidowX: the gripper goes to
  the "0" absolute position);
* ``random``: seeded uniform actions inside a realistic part of the action box (Google
  translation +-3 cm, rotation +-0.15 rad, gripper in {-1, 0, 0.5, 1}; WidowX +-2 cm,
  +-0.1 rad, gripper in {-1, 0.3, 1});
* ``scripted``: a closed-loop oracle (grasp-and-lift, pick-and-place-near, WidowX put-on,
  push a drawer closed) is
  run on *our* side; its actions are recorded and replayed open-loop on the upstream side.

Per step both sides record robot qpos, the TCP pose, the pose of every non-static actor (by
name), the joint positions of the other articulations (drawers), the success flag and every
scalar of ``info`` (partial-success flags and episode statistics); the policy camera frame is
captured at a few steps. Each side runs in its own process and interpreter and writes one
``.npz`` (arrays, no pickle) plus one ``.json`` per replay; ``report`` compares them.

Sides:

* ours: the ``simpler`` backend venv (``backend_python("simpler")``), the same calls as
  :class:`vlaeval.suites.simpler.backend.SimplerBackend.reset` (``make_task_env`` + replayed
  construction), raster shading;
* upstream: an interpreter in which ``import mani_skill2_real2sim`` is ManiSkill2_real2sim @
  ef7a4d4 (``--upstream``: a venv directory or its python). SimplerEnv-Instruct tasks run the
  same interpreter with a my_maniskill @ be7be52 checkout first on ``PYTHONPATH``
  (``--upstream-instruct``). The env is built the way SimplerEnv's ``maniskill2_evaluator`` +
  ``build_maniskill2_env`` build it, except ``obs_mode="state_dict"`` with the image
  observation taken at the frame steps only (rendering has no effect on the physics), and
  raster shading for the drawer tasks (the ray tracer is unusable on CPU).

Assets: the data pack lacks the stage meshes, so ``prepare`` writes *one* stand-in stage GLB
per missing scene (the table slab + floor of :func:`vlaeval.suites.simpler.scenes.approximate_table`,
written in the stage's own frame) and gives the same file to both sides: an overlay pack for
ours (``VLAEVAL_ASSETS``) and upstream asset directories (``MS2_REAL2SIM_ASSET_DIR``). Object
models whose visual mesh is missing get their collision mesh as visual on both sides (what our
loader does by itself). Nothing of upstream is copied into the repository; upstream runs as a
measuring instrument in its own interpreter.

Usage (harness or simpler venv; the driver needs numpy, PyYAML and OpenCV -> use the simpler venv)::

    PY=~/.cache/vlaeval/envs/simpler/bin/python
    $PY benchmarks/simpler_parity.py --upstream /tmp/upvenv --upstream-instruct /tmp/parity/mm \\
        --tasks required --episodes 1 --steps 40 --run main
    $PY benchmarks/simpler_parity.py --report-only --run main     # tables from what finished

Outputs: ``<work>/runs/<run>/{ours,upstream}/*.npz|json``, ``<work>/runs/<run>/summary.json``,
``docs/results/simpler_parity.md`` and ``docs/results/simpler_parity_frames.png``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SEQUENCES = ("zero", "random", "scripted")
FRAME_STEPS = (0, 10, 40)
CHECKPOINTS = (10, 40)  # "after N steps" columns; plus the last replayed step


# =============================================================================================
# shared: action sequences (both sides compute zero/random identically)
# =============================================================================================

def family_of(robot: str) -> str:
    return "widowx" if "widowx" in robot else "google"


def fixed_actions(seq: str, family: str, n: int, seed: int) -> np.ndarray:
    if seq == "zero":
        return np.zeros((n, 7))
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        if family == "google":
            out.append(np.concatenate([rng.uniform(-0.03, 0.03, 3), rng.uniform(-0.15, 0.15, 3),
                                       [rng.choice([-1.0, 0.0, 0.5, 1.0, 0.0])]]))
        else:
            out.append(np.concatenate([rng.uniform(-0.02, 0.02, 3), rng.uniform(-0.1, 0.1, 3),
                                       [rng.choice([-1.0, 1.0, 0.3])]]))
    return np.asarray(out)


def _scalars(info: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """bool/int/float leaves of an info dict (episode_stats flattened as ``episode_stats.key``)."""
    out: dict[str, float] = {}
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_scalars(value, name + "."))
        elif isinstance(value, (bool, np.bool_)):
            out[name] = float(bool(value))
        elif isinstance(value, (int, float, np.integer, np.floating)) and np.ndim(value) == 0:
            out[name] = float(value)
    return out


class Recorder:
    """Per-step arrays; actors keyed by name (a repeated name gets ``#k``)."""

    def __init__(self) -> None:
        self.qpos: list[np.ndarray] = []
        self.tcp: list[np.ndarray] = []
        self.actors: dict[str, list[np.ndarray]] = {}
        self.arts: dict[str, list[np.ndarray]] = {}
        self.success: list[bool] = []
        self.infos: list[dict[str, float]] = []
        self.frames: dict[int, np.ndarray] = {}
        self.actions: list[np.ndarray] = []

    def state(self, robot: Any, tcp: Any, actors: list[Any], arts: list[Any]) -> None:
        self.qpos.append(np.asarray(robot.get_qpos(), dtype=np.float64))
        p = tcp.pose
        self.tcp.append(np.concatenate([p.p, p.q]).astype(np.float64))
        seen: dict[str, int] = {}
        for actor in actors:
            name = actor.name
            k = seen.get(name, 0)
            seen[name] = k + 1
            key = name if k == 0 else f"{name}#{k}"
            pose = actor.pose
            self.actors.setdefault(key, []).append(np.concatenate([pose.p, pose.q]).astype(np.float64))
        for art in arts:
            self.arts.setdefault(art.name, []).append(np.asarray(art.get_qpos(), dtype=np.float64))

    def step_info(self, info: dict[str, Any]) -> None:
        self.success.append(bool(info.get("success", False)))
        self.infos.append(_scalars({k: v for k, v in info.items() if k != "success"}))

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        arrays: dict[str, np.ndarray] = {
            "qpos": np.asarray(self.qpos), "tcp": np.asarray(self.tcp),
            "success": np.asarray(self.success, dtype=bool),
            "actions": np.asarray(self.actions).reshape(-1, 7),
        }
        names = sorted(self.actors)
        for i, name in enumerate(names):
            arrays[f"actor_{i}"] = np.asarray(self.actors[name])
        arts = sorted(self.arts)
        for i, name in enumerate(arts):
            arrays[f"art_{i}"] = np.asarray(self.arts[name])
        for step, img in self.frames.items():
            arrays[f"frame_{step}"] = img
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path.with_suffix(".npz"))
        doc = {**meta, "actors": names, "articulations": arts, "infos": self.infos,
               "frame_steps": sorted(self.frames)}
        tmpj = path.with_suffix(".tmp.json")
        tmpj.write_text(json.dumps(doc))
        os.replace(tmpj, path.with_suffix(".json"))


def _is_dynamic(actor: Any) -> bool:
    return actor.type != "static" and actor.name not in ("", "arena", "ground")


# =============================================================================================
# upstream worker (runs in the upstream interpreter; numpy + upstream only)
# =============================================================================================

def upstream_worker(jobs_file: str, out_dir: str, ours_dir: str) -> None:
    import gymnasium as gym
    import mani_skill2_real2sim
    import mani_skill2_real2sim.envs  # registers the upstream envs
    import sapien.core as sapien
    from transforms3d.euler import euler2quat

    print(f"upstream package: {mani_skill2_real2sim.__file__}", flush=True)
    jobs = json.loads(Path(jobs_file).read_text())
    out, ours = Path(out_dir), Path(ours_dir)
    out.mkdir(parents=True, exist_ok=True)
    asset_dir = os.environ["MS2_REAL2SIM_ASSET_DIR"]
    for job in jobs:
        dest = out / job["key"]
        if dest.with_suffix(".json").exists():
            continue
        if job["seq"] == "scripted":
            src = ours / (job["key"] + ".npz")
            deadline = time.monotonic() + 3600
            while not src.exists() and time.monotonic() < deadline:
                if (ours / (job["key"] + ".json")).exists():  # ours finished without actions (error)
                    break
                time.sleep(2)
            if not src.exists():
                print(f"skip {job['key']}: no scripted actions", flush=True)
                continue
            actions = np.load(src)["actions"]
        else:
            actions = fixed_actions(job["seq"], job["family"], job["steps"], job["seed"])
        up = job["upstream"]
        kwargs = dict(up["make_kwargs"])
        if up.get("overlay"):
            kwargs["rgb_overlay_path"] = os.path.join(asset_dir, "real_inpainting", up["overlay"])
            kwargs["rgb_overlay_cameras"] = [up["camera"]]
        t0 = time.monotonic()
        try:
            env = gym.make(up["env_id"], **kwargs)
            ri = up["robot_init"]
            quat = (sapien.Pose(q=euler2quat(0, 0, ri["yaw"])) * sapien.Pose(q=[0, 0, 0, 1])).q
            options = {"robot_init_options": {"init_xy": np.array(ri["xy"]), "init_rot_quat": quat},
                       "obj_init_options": {k: (np.array(v) if isinstance(v, list) else v)
                                            for k, v in up["obj_init"].items()}}
            env.reset(options=options)
            u = env.unwrapped
            rec = Recorder()

            def snapshot(u: Any = u, rec: Recorder = rec) -> None:
                robot = u.agent.robot
                rec.state(robot, u.tcp, [a for a in u._scene.get_all_actors() if _is_dynamic(a)],
                          [a for a in u._scene.get_all_articulations() if a is not robot and a.dof > 0])

            def frame(step: int, u: Any = u, rec: Recorder = rec, job: dict = job, cam: str = up["camera"]) -> None:
                if step not in job["frames"]:
                    return
                mode, u._obs_mode = u._obs_mode, "image"
                try:
                    color = u.get_obs()["image"][cam]["Color"]
                finally:
                    u._obs_mode = mode
                rec.frames[step] = np.clip(color[..., :3] * 255, 0, 255).astype(np.uint8)

            snapshot()
            frame(0)
            instruction0 = u.get_language_instruction()
            for t, a in enumerate(actions):
                _, _, _, _, info = env.step(np.asarray(a, dtype=np.float64))
                rec.actions.append(np.asarray(a))
                rec.step_info(info)
                snapshot()
                frame(t + 1)
            rec.save(dest, {"key": job["key"], "side": "upstream", "wall_s": time.monotonic() - t0,
                            "instruction": instruction0, "error": None})
            env.close()
        except Exception as exc:  # noqa: BLE001 - recorded per job
            import traceback

            traceback.print_exc()
            dest.with_suffix(".json").write_text(json.dumps({"key": job["key"], "side": "upstream",
                                                             "error": f"{type(exc).__name__}: {exc}"}))
        print(f"upstream {job['key']} {time.monotonic() - t0:.1f}s", flush=True)


# =============================================================================================
# our worker (runs in the simpler venv)
# =============================================================================================

def _world_to_base(env: Any) -> tuple[np.ndarray, np.ndarray]:
    from transforms3d.quaternions import quat2mat

    pose = env.robot.articulation.pose
    return quat2mat(pose.q), np.asarray(pose.p)


class GoogleOracle:
    """Grasp the source (above, down, close, lift); for move-near also carry it beside the
    target, lower and release. Deltas in the base frame, clipped per step."""

    def __init__(self, env: Any, src: Any, tgt: Any | None):
        self.env, self.src, self.tgt = env, src, tgt
        self.phase, self.k = 0, 0
        self.grasp_at = np.asarray(src.pose.p)
        if tgt is not None:
            t, s = np.asarray(tgt.pose.p), np.asarray(src.pose.p)
            away = (s - t)[:2] / max(np.linalg.norm((s - t)[:2]), 1e-6)
            self.place_at = np.array([*(t[:2] + 0.09 * away), s[2] + 0.02])

    def __call__(self) -> np.ndarray:
        R, _ = _world_to_base(self.env)
        tcp = np.asarray(self.env.robot.tcp.pose.p)
        g = self.grasp_at
        plan = {0: (g + [0, 0, 0.10], 0.05), 1: (g, 0.03), 2: (g, 0.0), 3: (g + [0, 0, 0.15], 0.05)}
        if self.tgt is not None:
            p = self.place_at
            plan.update({4: (p + [0, 0, 0.13], 0.05), 5: (p + [0, 0, 0.01], 0.03), 6: (p, 0.0),
                         7: (p + [0, 0, 0.12], 0.05)})
        goal, limit = plan[self.phase]
        d = np.clip(goal - tcp, -limit, limit)
        grip = 0.0
        if self.phase == 2 and self.k < 2:
            grip = 1.0
        if self.phase == 6 and self.k < 2:
            grip = -1.0
        err = np.linalg.norm(goal - tcp)
        if self.phase in (0, 3, 4) and err < 0.012:
            self.phase, self.k = self.phase + (1 if self.phase != 3 or self.tgt is not None else 0), 0
        elif self.phase in (1, 5) and err < 0.008:
            self.phase, self.k = self.phase + 1, 0
        elif self.phase in (2, 6):
            self.k += 1
            if self.k >= 3:
                self.phase, self.k = self.phase + 1, 0
        return np.concatenate([R.T @ d, [0, 0, 0], [grip]])


class WidowXOracle:
    """Put the source on the target: steer the controller's target pose (WidowX deltas apply to
    the previous target), open = +1, close = -1."""

    def __init__(self, env: Any, src: Any, tgt: Any):
        self.env = env
        s, d = np.asarray(src.pose.p), np.asarray(tgt.pose.p)
        self.plan = [(s + [0, 0, 0.08], 1), (s + [0, 0, 0.005], 1), (None, -1), (s + [0, 0, 0.10], -1),
                     (d + [0, 0, 0.10], -1), (d + [0, 0, 0.04], -1), (None, 1), (d + [0, 0, 0.12], 1)]
        self.i, self.hold, self.goal = 0, 0, None

    def __call__(self) -> np.ndarray:
        R, base = _world_to_base(self.env)
        goal, grip = self.plan[self.i]
        self.goal = goal if goal is not None else self.goal
        target = R @ np.asarray(self.env.robot.arm._target_pose.p) + base
        delta = np.clip(self.goal - target, -0.04, 0.04)
        tcp = np.asarray(self.env.robot.tcp.pose.p)
        self.hold = self.hold + 1 if goal is None else 0
        if (goal is not None and np.linalg.norm(self.goal - tcp) < 0.015) or (goal is None and self.hold >= 3):
            self.i, self.hold = min(self.i + 1, len(self.plan) - 1), 0
        return np.concatenate([R.T @ delta, [0, 0, 0], [grip]])


class DrawerOracle:
    """Close an open drawer: fist closed, TCP in front of the drawer face (from its collision
    hull), then push it in along the cabinet's axis (world -x)."""

    def __init__(self, env: Any):
        self.env = env
        pts = []
        link = env.drawer_link
        for shape in link.get_collision_shapes():
            geom = shape.geometry
            if hasattr(geom, "half_lengths"):
                h = np.asarray(geom.half_lengths)
                verts = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * h
            else:
                verts = np.asarray(geom.vertices) * np.asarray(geom.scale)
            T = (link.pose * shape.get_local_pose()).to_transformation_matrix()
            pts.append(verts @ T[:3, :3].T + T[:3, 3])
        pts = np.concatenate(pts)
        lo, hi = pts.min(0), pts.max(0)
        self.front = np.array([hi[0], (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2])
        self.phase, self.k = 0, 0

    def __call__(self) -> np.ndarray:
        R, _ = _world_to_base(self.env)
        tcp = np.asarray(self.env.robot.tcp.pose.p)
        f = self.front
        plan = {0: (f + [0.10, 0, 0.02], 0.07), 1: (f + [0.04, 0, 0.02], 0.03), 2: (f + [-0.25, 0, 0.02], 0.03)}
        goal, limit = plan[self.phase]
        grip = 1.0 if self.k < 2 else 0.0
        self.k += 1
        if self.phase < 2 and np.linalg.norm(goal - tcp) < 0.015:
            self.phase += 1
        return np.concatenate([R.T @ np.clip(goal - tcp, -limit, limit), [0, 0, 0], [grip]])


def make_oracle(env: Any) -> Any | None:
    family = env.robot_spec.family
    src = getattr(env, "source", None)
    tgt = getattr(env, "target", None)
    if src is not None and tgt is not None:
        return WidowXOracle(env, src, tgt) if family == "widowx" else GoogleOracle(env, src, tgt)
    if family == "google" and getattr(env, "closing", False) and getattr(env, "drawer_link", None) is not None \
            and type(env).__name__ == "DrawerEnv":
        return DrawerOracle(env)
    obj = getattr(env, "obj", None)
    if family == "google" and obj is not None and type(env).__name__ == "GraspSingleEnv":
        return GoogleOracle(env, obj, None)
    return None


def ours_worker(jobs_file: str, out_dir: str, pack_root: str) -> None:
    sys.path.insert(0, str(REPO))
    from vlaeval.suites.simpler import assets, catalog, env_setup

    env_setup.configure()
    from vlaeval.suites.simpler.tasks import make_task_env
    from vlaeval.suites.simpler.tasks.base import upstream_episode_seed

    pack = assets.AssetPack(Path(pack_root))
    jobs = json.loads(Path(jobs_file).read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        dest = out / job["key"]
        if dest.with_suffix(".json").exists():
            continue
        t0 = time.monotonic()
        env = None
        try:
            ep = catalog.episode_at(catalog.find_task(job["task_id"]), job["episode"])
            env = make_task_env(ep, pack, shader="ibl", overlay=True)
            env.reset(upstream_episode_seed(), replay_construction=True)
            rec = Recorder()
            oracle = make_oracle(env) if job["seq"] == "scripted" else None
            if job["seq"] == "scripted" and oracle is None:
                dest.with_suffix(".json").write_text(json.dumps({"key": job["key"], "side": "ours",
                                                                 "error": "no scripted oracle"}))
                continue
            actions = None if oracle else fixed_actions(job["seq"], job["family"], job["steps"], job["seed"])

            def snapshot(env: Any = env, rec: Recorder = rec) -> None:
                robot = env.robot.articulation
                rec.state(robot, env.robot.tcp, [a for a in env.scene.get_all_actors() if _is_dynamic(a)],
                          [a for a in env.scene.get_all_articulations() if a is not robot and a.dof > 0])

            def frame(step: int, env: Any = env, rec: Recorder = rec, job: dict = job) -> None:
                if step in job["frames"]:
                    rec.frames[step] = env.render()

            snapshot()
            frame(0)
            instruction0 = env.instruction()
            for t in range(job["steps"]):
                a = oracle() if oracle else actions[t]
                info = env.step(np.asarray(a, dtype=np.float64))
                rec.actions.append(np.asarray(a, dtype=np.float64))
                rec.step_info(info)
                snapshot()
                frame(t + 1)
            rec.save(dest, {"key": job["key"], "side": "ours", "wall_s": time.monotonic() - t0,
                            "instruction": instruction0, "error": None,
                            "approximations": list(env.approximations),
                            "replayed_construction": bool(getattr(env, "replayed_construction", False))})
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            dest.with_suffix(".json").write_text(json.dumps({"key": job["key"], "side": "ours",
                                                             "error": f"{type(exc).__name__}: {exc}"}))
        finally:
            if env is not None:
                env.close()
        print(f"ours {job['key']} {time.monotonic() - t0:.1f}s", flush=True)


# =============================================================================================
# prepare: the shared stand-in stages and the asset directories of both sides
# =============================================================================================

def _stand_in_stage(scene_name: str, family: str, out: Path) -> None:
    """A GLB of our stand-in table + floor, in the stage frame upstream places it with."""
    import sapien.core as sapien
    import trimesh

    from vlaeval.suites.simpler import scenes as S

    (x0, x1), (y0, y1) = S.APPROX_TABLE_XY[family]
    h = S.TABLE_HEIGHT
    table = trimesh.creation.box(extents=[x1 - x0, y1 - y0, h])
    table.apply_translation([(x0 + x1) / 2, (y0 + y1) / 2, h / 2])
    table.visual.face_colors = [int(c * 255) for c in S.TABLE_COLOR]
    floor = trimesh.creation.box(extents=[8.0, 8.0, 0.02])
    floor.apply_translation([0, 0, -0.01])
    floor.visual.face_colors = [int(c * 255) for c in S.FLOOR_COLOR]
    offset, pose = S.stage_offset(scene_name, family)
    world_from_local = (sapien.Pose(-offset) * pose).to_transformation_matrix().astype(np.float64)
    local_from_world = np.linalg.inv(world_from_local)
    scene = trimesh.Scene()
    for name, mesh in (("table", table), ("floor", floor)):
        mesh = mesh.copy()
        mesh.apply_transform(local_from_world)
        scene.add_geometry(mesh, node_name=name)
    out.parent.mkdir(parents=True, exist_ok=True)
    scene.export(str(out))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _symlink_tree(src: Path, dst: Path) -> None:
    for root, _, files in os.walk(src, followlinks=True):
        rel = Path(root).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            link = dst / rel / name
            if not link.exists() and not link.is_symlink():
                os.symlink(Path(root) / name, link)


SCENE_FAMILY = {"bridge_table_1_v1": "widowx", "bridge_table_1_v2": "widowx"}


def prepare(work: Path, scenes: set[str]) -> dict[str, Path]:
    """Build (idempotently) the stand-in stages, our overlay pack and the upstream data dirs."""
    sys.path.insert(0, str(REPO))
    from vlaeval.suites.simpler import assets

    pack = assets.open_pack()
    root = pack.root
    stages = work / "stages"
    missing_scenes = sorted(s for s in scenes if s and "dummy" not in s and not pack.has(assets.stage_path(s)))
    for name in missing_scenes:
        glb = stages / f"{name}.glb"
        if not glb.exists():
            _stand_in_stage(name, SCENE_FAMILY.get(name, "google"), glb)
    # models whose visual mesh is missing: collision.obj as textured.obj (what our loader shows)
    no_visual = []
    for model_dir in sorted((root / "data/custom/models").iterdir()):
        if model_dir.is_dir() and (model_dir / "collision.obj").exists() and not any(
                (model_dir / n).exists() for n in ("textured.obj", "textured.dae", "textured.glb")):
            no_visual.append(model_dir.name)
    # ours: a pack view with the stand-in stages added to its manifest
    ours = work / "pack"
    if not (ours / "MANIFEST.tsv").exists() or any(
            not (ours / "data/hab2_bench_assets/stages" / f"{s}.glb").exists() for s in missing_scenes):
        if ours.exists():
            shutil.rmtree(ours)
        for top in ("data", "descriptions", "data_instruct_overrides"):
            _symlink_tree(root / top, ours / top)
        for extra in ("MISSING.tsv", "README.md"):
            os.symlink(root / extra, ours / extra)
        lines = (root / "MANIFEST.tsv").read_text().rstrip("\n").split("\n")
        for name in missing_scenes:
            rel = f"data/hab2_bench_assets/stages/{name}.glb"
            os.symlink(stages / f"{name}.glb", ours / rel)
            lines.append("\t".join([rel, str((stages / f"{name}.glb").stat().st_size),
                                    _sha256(stages / f"{name}.glb"), "vlaeval parity stand-in", "-", "-"]))
        (ours / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    # upstream: ASSET_DIRs (standard and Instruct) with the same stages and visual stand-ins
    dirs = {"ours": ours}
    for flavor in ("ms", "mm"):
        d = work / f"data-{flavor}"
        marker = d / ".stages"
        if marker.exists() and set(json.loads(marker.read_text())) >= set(missing_scenes):
            dirs[flavor] = d
            continue
        if d.exists():
            shutil.rmtree(d)
        _symlink_tree(root / "data", d)
        if flavor == "mm":
            target = d / "custom/info_bridge_custom_v0.json"
            target.unlink()
            os.symlink(root / "data_instruct_overrides/custom/info_bridge_custom_v0.json", target)
        for name in missing_scenes:
            os.symlink(stages / f"{name}.glb", d / "hab2_bench_assets/stages" / f"{name}.glb")
        for model in no_visual:
            os.symlink(root / "data/custom/models" / model / "collision.obj",
                       d / "custom/models" / model / "textured.obj")
        marker.write_text(json.dumps(missing_scenes))
        dirs[flavor] = d
    return dirs


# =============================================================================================
# driver
# =============================================================================================

def _is_variant(cfg: dict[str, Any], seen_env: set[str]) -> bool:
    """A configuration whose physics another selected one already covers: a VM URDF recolouring
    other than the base one, or an Instruct ``-v1``/``-v2`` env id whose ``-v0`` is selected
    (upstream subclasses that change the wording, the background or the scene)."""
    if cfg["id"].startswith("vm/") and cfg.get("urdf_version"):
        return True
    env_id = cfg["env_id"]
    m = re.match(r"(.*)-v([12])$", env_id)
    return bool(cfg["id"].startswith("instruct/") and m and f"{m.group(1)}-v0" in seen_env)


def select_tasks(spec: list[str]) -> list[tuple[dict[str, Any], bool]]:
    """(task config, light) pairs in run order: ids, globs, or the presets ``vm``, ``bridge``,
    ``instruct-classes`` (one configuration per Instruct env id) and ``required`` (all three).
    In the presets, variants (:func:`_is_variant`) are *light* (random replay only) and come
    after every full configuration."""
    from vlaeval.suites.simpler import catalog

    every = [t for s in ("simpler-vm", "simpler-bridge", "simpler-va", "simpler-instruct")
             for t in catalog.suite_tasks(s, include_excluded=True)]
    out: list[tuple[dict[str, Any], bool]] = []
    for item in spec:
        preset: list[dict[str, Any]] = []
        if item in ("vm", "required"):
            preset += catalog.suite_tasks("simpler-vm", include_excluded=True)
        if item in ("bridge", "required"):
            preset += catalog.suite_tasks("simpler-bridge", include_excluded=True)
        if item in ("instruct-classes", "required"):
            seen: set[str] = set()
            for t in catalog.suite_tasks("simpler-instruct", include_excluded=True):
                if t["env_id"] not in seen:
                    seen.add(t["env_id"])
                    preset.append(t)
        if preset:
            envs = {t["env_id"] for t in preset}
            full = [(t, False) for t in preset if not _is_variant(t, envs)]
            light = [(t, True) for t in preset if _is_variant(t, envs)]
            out += full + light
        else:
            out += [(t, False) for t in every if fnmatch.fnmatch(t["id"], item)]
    uniq: dict[str, tuple[dict[str, Any], bool]] = {}
    for t, light in out:
        uniq.setdefault(t["id"], (t, light))
    return list(uniq.values())


def episode_indices(cfg: dict[str, Any], n: int) -> list[int]:
    from vlaeval.suites.simpler import catalog

    total = catalog.n_episodes(cfg)
    if n >= total:
        return list(range(total))
    # evenly spread, starting inside the grid (index total // (2n))
    return sorted({int((i + 0.5) * total / n) for i in range(n)})


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def build_jobs(tasks: list[tuple[dict[str, Any], bool]], episodes: int, steps: int, sequences: list[str],
               scripted_steps: int, light_sequences: list[str]) -> list[dict[str, Any]]:
    from vlaeval.suites.simpler import catalog

    jobs = []
    for cfg, light in tasks:
        for idx in episode_indices(cfg, episodes):
            ep = catalog.episode_at(cfg, idx)
            rd = catalog.robot_defaults(ep["robot"])
            fam = family_of(ep["robot"])
            kwargs = {"obs_mode": "state_dict", "robot": ep["robot"], "sim_freq": rd["sim_freq"],
                      "control_mode": rd["control_mode"], "control_freq": rd["control_freq"],
                      "max_episode_steps": ep["max_steps"], "scene_name": ep["scene"],
                      "camera_cfgs": {"add_segmentation": True}}
            kwargs.update({k: v for k, v in ep["env_kwargs"].items() if k != "shader_dir"})
            if ep["urdf_version"]:
                kwargs["urdf_version"] = ep["urdf_version"]
            instruct = cfg["id"].startswith("instruct/")
            upstream = {"flavor": "mm" if instruct else "ms", "env_id": ep["env_id"], "make_kwargs": kwargs,
                        "overlay": ep["overlay"], "camera": rd["camera"]["name"],
                        "robot_init": ep["robot_init"],
                        "obj_init": ({"init_xy": ep["obj_init"]["xy"]} if "xy" in ep["obj_init"]
                                     else {"episode_id": ep["obj_init"]["episode_id"]})}
            for seq in (light_sequences if light else sequences):
                if seq == "scripted" and not has_oracle(ep):
                    continue
                n = min(scripted_steps if seq == "scripted" else steps, int(ep["max_steps"]))
                frames = sorted({s for s in FRAME_STEPS if s <= n} | {n})
                jobs.append({"key": _safe(f"{cfg['id']}__e{idx}__{seq}"), "task_id": cfg["id"], "episode": idx,
                             "seq": seq, "steps": n, "seed": 1000 + idx, "family": fam, "frames": frames,
                             "upstream": upstream, "instruct": instruct})
    return jobs


def has_oracle(ep: dict[str, Any]) -> bool:
    """A scripted oracle exists for grasp-single, move/place-near, put-on and close-drawer tasks."""
    return "Drawer" not in ep["env_id"] or bool(re.search(r"Close(Top|Middle|Bottom)DrawerCustomInScene", ep["env_id"]))


def upstream_python(arg: str) -> str:
    p = Path(arg).expanduser()
    if p.is_dir():
        p = p / "bin" / "python"
    if not p.exists():
        raise SystemExit(f"--upstream: no python at {p}")
    return str(p)


def render_env() -> dict[str, str]:
    """The Vulkan variables our setup uses (lavapipe + our layer), for both sides."""
    sys.path.insert(0, str(REPO))
    from vlaeval.suites.simpler import env_setup

    saved = dict(os.environ)
    try:
        env_setup.configure()
        return dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_workers(jobs: list[dict[str, Any]], run_dir: Path, dirs: dict[str, Path], up_python: str,
                instruct_checkout: str | None, ours_python: str, log: Any) -> None:
    base_env = {**render_env(), "PYTHONDONTWRITEBYTECODE": "1", "DISPLAY": ""}
    procs = []
    ours_jobs = run_dir / "jobs_ours.json"
    ours_jobs.write_text(json.dumps(jobs))
    env = {**base_env, "PYTHONPATH": str(REPO)}
    procs.append(("ours", subprocess.Popen(
        [ours_python, str(Path(__file__).resolve()), "_ours", str(ours_jobs), str(run_dir / "ours"),
         str(dirs["ours"])], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(run_dir))))
    # upstream: standard jobs and Instruct jobs in separate interpreters (different packages)
    for flavor in ("ms", "mm"):
        fj = [j for j in jobs if j["upstream"]["flavor"] == flavor]
        if not fj:
            continue
        if flavor == "mm" and not instruct_checkout:
            print("no --upstream-instruct: Instruct tasks run on ours only", file=sys.stderr)
            continue
        path = run_dir / f"jobs_up_{flavor}.json"
        path.write_text(json.dumps(fj))
        env = {**base_env, "MS2_REAL2SIM_ASSET_DIR": str(dirs[flavor])}
        env.pop("PYTHONPATH", None)
        if flavor == "mm":
            env["PYTHONPATH"] = str(Path(instruct_checkout).resolve())
        procs.append((f"upstream-{flavor}", subprocess.Popen(
            [up_python, str(Path(__file__).resolve()), "_upstream", str(path), str(run_dir / "upstream"),
             str(run_dir / "ours")], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(run_dir))))
        if flavor == "ms" and any(j["upstream"]["flavor"] == "mm" for j in jobs):
            procs[-1][1].wait()  # the two upstream flavours one after the other (2 CPU cores)
    for name, proc in procs:
        rc = proc.wait()
        print(f"{name} worker exit {rc}", file=log, flush=True)


# =============================================================================================
# comparison and report
# =============================================================================================

def _load(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    j = path.with_suffix(".json")
    if not j.exists():
        return None
    meta = json.loads(j.read_text())
    if meta.get("error"):
        return meta, {}
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return meta, arrays


def _quat_angle_deg(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Rotation angle of q1^-1 q2 (wxyz), via atan2 (exact 0 for equal quaternions)."""
    w1, v1 = q1[..., :1], q1[..., 1:]
    w2, v2 = q2[..., :1], q2[..., 1:]
    w = w1 * w2 + np.sum(v1 * v2, axis=-1, keepdims=True)
    v = w1 * v2 - w2 * v1 - np.cross(v1, v2)
    return np.degrees(2 * np.arctan2(np.linalg.norm(v, axis=-1), np.abs(w[..., 0])))


def compare_job(job: dict[str, Any], run_dir: Path) -> dict[str, Any] | None:
    a = _load(run_dir / "ours" / job["key"])
    b = _load(run_dir / "upstream" / job["key"])
    if a is None or b is None:
        return None
    (ma, A), (mb, B) = a, b
    res: dict[str, Any] = {"key": job["key"], "task_id": job["task_id"], "episode": job["episode"],
                           "seq": job["seq"]}
    if ma.get("error") or mb.get("error"):
        res["error"] = {"ours": ma.get("error"), "upstream": mb.get("error")}
        return res
    n = min(len(A["success"]), len(B["success"]))
    res["steps"] = n
    res["actions_equal"] = bool(np.array_equal(A["actions"][:n], B["actions"][:n]))
    res["instruction_equal"] = ma.get("instruction") == mb.get("instruction")
    res["instructions"] = [ma.get("instruction"), mb.get("instruction")]
    # robot
    dq = np.abs(A["qpos"][: n + 1] - B["qpos"][: n + 1]).max(axis=1) if A["qpos"].shape == B["qpos"].shape \
        else np.full(n + 1, np.nan)
    res["qpos_max"] = {str(c): float(dq[: c + 1].max()) for c in (*CHECKPOINTS, n) if c <= n}
    dt = np.linalg.norm(A["tcp"][: n + 1, :3] - B["tcp"][: n + 1, :3], axis=1) * 1000
    res["tcp_mm_max"] = float(dt.max())
    # actors
    names_a, names_b = ma["actors"], mb["actors"]
    common = sorted(set(names_a) & set(names_b))
    res["actors_only_ours"] = sorted(set(names_a) - set(names_b))
    res["actors_only_upstream"] = sorted(set(names_b) - set(names_a))
    pos = np.zeros((n + 1, max(len(common), 1)))
    ang = np.zeros((n + 1, max(len(common), 1)))
    for k, name in enumerate(common):
        pa = A[f"actor_{names_a.index(name)}"][: n + 1]
        pb = B[f"actor_{names_b.index(name)}"][: n + 1]
        pos[:, k] = np.linalg.norm(pa[:, :3] - pb[:, :3], axis=1) * 1000
        ang[:, k] = _quat_angle_deg(pa[:, 3:], pb[:, 3:])
    res["objects"] = common
    res["obj_pos_mm"] = {str(c): {"max": float(pos[c].max()), "mean": float(pos[c].mean())}
                         for c in (0, *CHECKPOINTS, n) if c <= n}
    res["obj_rot_deg"] = {str(c): {"max": float(ang[c].max()), "mean": float(ang[c].mean())}
                          for c in (0, *CHECKPOINTS, n) if c <= n}
    res["obj_pos_mm_worst_step"] = float(pos.max())
    # articulations (drawers)
    arts = sorted(set(ma["articulations"]) & set(mb["articulations"]))
    if arts:
        d = max(float(np.abs(A[f"art_{ma['articulations'].index(x)}"][: n + 1]
                             - B[f"art_{mb['articulations'].index(x)}"][: n + 1]).max()) for x in arts)
        res["art_qpos_max"] = d
    # success and partial signals
    sa, sb = A["success"][:n], B["success"][:n]
    res["success_steps_agree"] = float(np.mean(sa == sb)) if n else 1.0
    res["success_final"] = [bool(sa[-1]), bool(sb[-1])] if n else [False, False]
    res["success_any"] = [bool(sa.any()), bool(sb.any())]
    flags: dict[str, float] = {}
    keys = sorted(set().union(*[set(x) for x in ma["infos"][:n]]) & set().union(*[set(x) for x in mb["infos"][:n]]))
    for key in keys:
        va = np.array([x.get(key, np.nan) for x in ma["infos"][:n]])
        vb = np.array([x.get(key, np.nan) for x in mb["infos"][:n]])
        flags[key] = float(np.mean(np.isclose(va, vb, atol=1e-6, equal_nan=True)))
    res["info_agree"] = flags
    res["info_only_ours"] = sorted(set().union(*[set(x) for x in ma["infos"][:n]]) - set(keys)) if n else []
    res["info_only_upstream"] = sorted(set().union(*[set(x) for x in mb["infos"][:n]]) - set(keys)) if n else []
    # frames
    fr = {}
    for s in sorted(set(ma["frame_steps"]) & set(mb["frame_steps"])):
        fa, fb = A[f"frame_{s}"].astype(np.int16), B[f"frame_{s}"].astype(np.int16)
        if fa.shape != fb.shape:
            fr[str(s)] = None
            continue
        diff = np.abs(fa - fb)
        fr[str(s)] = {"mad": float(diff.mean()), "p99": float(np.percentile(diff.max(-1), 99)),
                      "frac_gt10": float(np.mean(diff.max(-1) > 10))}
    res["frames"] = fr
    res["wall_s"] = [ma.get("wall_s"), mb.get("wall_s")]
    return res


def summarize(results: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_task: dict[str, dict[str, Any]] = {}
    for job in jobs:
        by_task.setdefault(job["task_id"], {"jobs": 0, "results": []})["jobs"] += 1
    for r in results:
        by_task[r["task_id"]]["results"].append(r)
    return by_task


def _fmt(v: float | None, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if v == 0:
        return "0"
    if abs(v) < 10 ** (-nd):
        return f"{v:.0e}"
    return f"{v:.{nd}f}"


def task_row(task_id: str, info: dict[str, Any]) -> dict[str, Any]:
    rs = [r for r in info["results"] if "error" not in r]
    errs = [r for r in info["results"] if "error" in r]
    row: dict[str, Any] = {"task": task_id, "replays": len(rs), "planned": info["jobs"], "errors": errs}
    if not rs:
        return row

    def agg(field: str, ck: str, stat: str) -> float | None:
        vals = [r[field][ck][stat] for r in rs if ck in r[field]]
        if not vals:
            return None
        return float(max(vals)) if stat == "max" else float(np.mean(vals))

    for ck in ("10", "40"):
        row[f"pos{ck}"] = (agg("obj_pos_mm", ck, "max"), agg("obj_pos_mm", ck, "mean"))
        row[f"rot{ck}"] = (agg("obj_rot_deg", ck, "max"), agg("obj_rot_deg", ck, "mean"))
    row["posall"] = (max(r["obj_pos_mm"][str(r["steps"])]["max"] for r in rs),
                     float(np.mean([r["obj_pos_mm"][str(r["steps"])]["mean"] for r in rs])))
    row["rotall"] = (max(r["obj_rot_deg"][str(r["steps"])]["max"] for r in rs),
                     float(np.mean([r["obj_rot_deg"][str(r["steps"])]["mean"] for r in rs])))
    row["pos0"] = max(r["obj_pos_mm"]["0"]["max"] for r in rs)
    row["qpos"] = max(max(r["qpos_max"].values()) for r in rs)
    row["tcp"] = max(r["tcp_mm_max"] for r in rs)
    row["art"] = max((r["art_qpos_max"] for r in rs if "art_qpos_max" in r), default=None)
    row["success_final_agree"] = sum(r["success_final"][0] == r["success_final"][1] for r in rs)
    row["success_steps"] = float(np.mean([r["success_steps_agree"] for r in rs]))
    row["success_ours"] = sum(r["success_final"][0] for r in rs)
    row["success_up"] = sum(r["success_final"][1] for r in rs)
    flags = {}
    for r in rs:
        for k, v in r["info_agree"].items():
            flags.setdefault(k, []).append(v)
    row["flags_min"] = min((min(v) for v in flags.values()), default=None)
    row["flags_disagree"] = sorted(k for k, v in flags.items() if min(v) < 1)
    mads = [f["mad"] for r in rs for f in r["frames"].values() if f]
    row["frame_mad_max"] = max(mads) if mads else None
    row["frame_mad_mean"] = float(np.mean(mads)) if mads else None
    row["frame_mad_first"] = max((r["frames"]["0"]["mad"] for r in rs if r["frames"].get("0")), default=None)
    row["steps"] = sorted({(r["seq"], r["steps"]) for r in rs})
    row["seqs"] = sorted({r["seq"] for r in rs})
    row["episodes"] = sorted({r["episode"] for r in rs})
    row["instr_equal"] = all(r["instruction_equal"] for r in rs)
    row["only"] = sorted({*(x for r in rs for x in r["actors_only_ours"]),
                          *(f"up:{x}" for r in rs for x in r["actors_only_upstream"])})
    return row


def write_report(run_dir: Path, jobs: list[dict[str, Any]], doc: Path, png: Path, notes: dict[str, Any]) -> None:
    results = [r for r in (compare_job(j, run_dir) for j in jobs) if r is not None]
    (run_dir / "summary.json").write_text(json.dumps(results, indent=1))
    by_task = summarize(results, jobs)
    rows = [task_row(t, info) for t, info in by_task.items()]
    tol = notes.get("tolerances", {})
    lines = [
        "<!-- generated by benchmarks/simpler_parity.py; the prose around the tables is in the template -->",
        "",
        ("| task | replays (episodes × seqs) | obj pos Δ mm after 10 max/mean | after 40 max/mean | after all max/mean "
         "| obj rot Δ° after 40 max/mean | after all max/mean | max \\|Δqpos\\| (rad or m) | drawer Δq | success final agree "
         "(ours/up successes) | per-step success agree | info flags agree (min) | frame MAD step 0 / max (0–255) | verdict |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = {}
    for row in sorted(rows, key=lambda r: r["task"]):
        t = row["task"]
        if not row["replays"]:
            why = "; ".join(f"{e['seq']}: ours={e['error']['ours']} up={e['error']['upstream']}"
                            for e in row["errors"])[:200] or "not run (time budget)"
            lines.append(f"| `{t}` | 0/{row['planned']} | – | – | – | – | – | – | – | – | – | – | – | {why} |")
            verdicts[t] = "not run"
            continue

        def pair(p: tuple[float | None, float | None], nd: int = 1) -> str:
            return f"{_fmt(p[0], nd)} / {_fmt(p[1], nd)}"

        ok_pos = row["pos40"][0] is None or row["pos40"][0] <= tol.get("pos_mm_40", 5.0)
        ok_succ = row["success_final_agree"] == row["replays"]
        ok_frame = (row["frame_mad_max"] is None or row["frame_mad_max"] <= tol.get("frame_mad", 1.0)) and (
            row["frame_mad_first"] is None or row["frame_mad_first"] <= tol.get("frame_mad_first", 0.1))
        verdict = "ok" if ok_pos and ok_succ and ok_frame else "DIFF: " + ", ".join(
            x for x, ok in (("pos", ok_pos), ("success", ok_succ), ("frame", ok_frame)) if not ok)
        if row["only"]:
            verdict += f" (actors on one side only: {', '.join(row['only'])})"
        if not row["instr_equal"]:
            verdict += " (instruction differs)"
        verdicts[t] = verdict
        eps = len(row["episodes"])
        lines.append(
            f"| `{t}` | {row['replays']} ({eps}×{'/'.join(row['seqs'])}) | {pair(row['pos10'])} | {pair(row['pos40'])} "
            f"| {pair(row['posall'])} | {pair(row['rot40'], 2)} | {pair(row['rotall'], 2)} | {_fmt(row['qpos'], 6)} "
            f"| {_fmt(row['art'], 6)} | {row['success_final_agree']}/{row['replays']} ({row['success_ours']}/{row['success_up']}) "
            f"| {row['success_steps']:.3f} | {_fmt(row['flags_min'], 3)} "
            f"| {_fmt(row['frame_mad_first'], 2)} / {_fmt(row['frame_mad_max'], 2)} | {verdict} |")
    table = "\n".join(lines)
    table += "\n\n" + coverage_table(rows, jobs)
    # headline numbers
    all_rs = [r for r in results if "error" not in r]
    agree = sum(r["success_final"][0] == r["success_final"][1] for r in all_rs)
    pos40 = [r["obj_pos_mm"]["40"]["max"] for r in all_rs if "40" in r["obj_pos_mm"]]
    headline = {
        "replays": len(all_rs), "tasks": sum(1 for r in rows if r["replays"]),
        "success_final_agree": agree, "success_final_agree_frac": agree / max(len(all_rs), 1),
        "success_positive_ours": sum(r["success_final"][0] for r in all_rs),
        "success_positive_up": sum(r["success_final"][1] for r in all_rs),
        "pos40_le_5mm": sum(v <= 5.0 for v in pos40), "pos40_n": len(pos40),
        "qpos_max": max((max(r["qpos_max"].values()) for r in all_rs), default=None),
        "frame_mad_max": max((f["mad"] for r in all_rs for f in r["frames"].values() if f), default=None),
        "errors": [r["key"] for r in results if "error" in r],
    }
    (run_dir / "headline.json").write_text(json.dumps({"headline": headline, "verdicts": verdicts}, indent=1))
    template = doc.read_text() if doc.exists() else "<!-- TABLE -->\n"
    begin, end = "<!-- TABLE BEGIN -->", "<!-- TABLE END -->"
    if begin in template and end in template:
        pre, rest = template.split(begin, 1)
        _, post = rest.split(end, 1)
        text = f"{pre}{begin}\n{table}\n{end}{post}"
    else:
        text = f"{template}\n{begin}\n{table}\n{end}\n"
    hb, he = "<!-- HEADLINE BEGIN -->", "<!-- HEADLINE END -->"
    if hb in text and he in text:
        pre, rest = text.split(hb, 1)
        _, post = rest.split(he, 1)
        text = f"{pre}{hb}\n```json\n{json.dumps(headline, indent=1)}\n```\n{he}{post}"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print(json.dumps(headline, indent=1))
    write_frames_png(run_dir, jobs, png)


def coverage_table(rows: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> str:
    """One row per catalog task that was not replayed, naming the replayed configuration with
    the same upstream env id (what differs: scene, overlay, URDF, env kwargs)."""
    from vlaeval.suites.simpler import catalog

    measured = {r["task"] for r in rows if r["replays"]}
    cfgs = {t["id"]: t for s in ("simpler-vm", "simpler-bridge", "simpler-instruct", "simpler-va")
            for t in catalog.suite_tasks(s, include_excluded=True)}
    cfgs = {tid: catalog.episode_at(cfg, 0) | {"suite": cfg["suite"]} for tid, cfg in cfgs.items()}
    by_env: dict[str, list[str]] = {}
    for tid in sorted(measured):
        if tid in cfgs:
            by_env.setdefault(cfgs[tid]["env_id"], []).append(tid)
    out = ["| task (not replayed) | suite | env id | replayed configuration with the same env id | differs in |",
           "|---|---|---|---|---|"]
    planned = {r["task"] for r in rows}
    for tid, cfg in cfgs.items():
        if tid in planned:
            continue
        same = by_env.get(cfg["env_id"], [])
        if same:
            ref = cfgs[same[0]]
            diff = [k for k in ("scene", "overlay", "urdf_version", "robot_init", "obj_init", "max_steps")
                    if cfg.get(k) != ref.get(k)]
            kw = {k: v for k, v in cfg["env_kwargs"].items() if ref["env_kwargs"].get(k) != v}
            kw.update({k: None for k in ref["env_kwargs"] if k not in cfg["env_kwargs"]})
            if kw:
                diff.append("env_kwargs " + json.dumps(kw, sort_keys=True))
            out.append(f"| `{tid}` | {cfg['suite']} | {cfg['env_id']} | `{same[0]}` | {'; '.join(diff) or '–'} |")
        else:
            out.append(f"| `{tid}` | {cfg['suite']} | {cfg['env_id']} | – (env id not replayed) | – |")
    return "\n".join(out)


def write_frames_png(run_dir: Path, jobs: list[dict[str, Any]], png: Path) -> None:
    """Rows: one Google VM, one Bridge, one Instruct replay (the last common frame):
    ours | upstream | |difference| x4."""
    import cv2

    picks = []
    for prefix in ("vm/google/pick_coke_can", "vm/google/move_near", "bridge/", "instruct/free/grasp_banana",
                   "instruct/"):
        if any(p[0]["task_id"].startswith("instruct/") for p in picks):
            break
        cands = [j for j in jobs if j["task_id"].startswith(prefix) and j["seq"] in ("scripted", "random")]
        cands.sort(key=lambda j: (j["seq"] != "scripted", j["task_id"]))
        for j in cands:
            a = _load(run_dir / "ours" / j["key"])
            b = _load(run_dir / "upstream" / j["key"])
            if a and b and not a[0].get("error") and not b[0].get("error"):
                steps = sorted(set(a[0]["frame_steps"]) & set(b[0]["frame_steps"]))
                s = 40 if 40 in steps else steps[-1]  # mid-manipulation: the arm is in view
                picks.append((j, s, a[1][f"frame_{s}"], b[1][f"frame_{s}"]))
                break
    if not picks:
        return
    width = 3 * 640
    rows = []
    for j, s, fa, fb in picks:
        diff = np.clip(np.abs(fa.astype(np.int16) - fb.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
        row = np.concatenate([fa, fb, diff], axis=1)
        row = cv2.resize(row, (width, int(row.shape[0] * width / row.shape[1])))
        bar = np.full((28, width, 3), 255, np.uint8)
        mad = float(np.abs(fa.astype(np.int16) - fb.astype(np.int16)).mean())
        cv2.putText(bar, f"{j['task_id']} ep {j['episode']} {j['seq']} step {s}: ours | upstream | |diff|x4  "
                    f"(MAD {mad:.2f})", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        rows += [bar, row]
    img = np.concatenate(rows, axis=0)
    img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_upstream":
        upstream_worker(*argv[1:4])
        return 0
    if argv and argv[0] == "_ours":
        ours_worker(*argv[1:4])
        return 0
    sys.path.insert(0, str(REPO))
    from vlaeval.harness.envs import backend_python, vlaeval_home

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", help="upstream venv dir (or its python) with ManiSkill2_real2sim @ ef7a4d4")
    ap.add_argument("--upstream-instruct", help="my_maniskill @ be7be52 checkout (put first on PYTHONPATH)")
    ap.add_argument("--tasks", nargs="+", default=["required"],
                    help="task ids / globs, or presets vm, bridge, instruct-classes, required")
    ap.add_argument("--episodes", type=int, default=1, help="episodes per task (spread over the grid)")
    ap.add_argument("--steps", type=int, default=40, help="steps of the zero and random replays")
    ap.add_argument("--scripted-steps", type=int, default=60, help="steps of the scripted replay")
    ap.add_argument("--sequences", default="zero,random,scripted")
    ap.add_argument("--light-sequences", default="random",
                    help="sequences of the variant configurations of the presets (see select_tasks)")
    ap.add_argument("--work", default=str(vlaeval_home() / "cache" / "simpler_parity"))
    ap.add_argument("--run", default="default", help="results subdirectory of <work>/runs")
    ap.add_argument("--report-only", action="store_true", help="only compare what is there and write the doc")
    ap.add_argument("--doc", default=str(REPO / "docs/results/simpler_parity.md"))
    ap.add_argument("--png", default=str(REPO / "docs/results/simpler_parity_frames.png"))
    ap.add_argument("--ours-stand-in", choices=("glb", "box"), default="glb",
                    help="glb: both sides load the same stand-in stage GLB (isolates our code); box: ours "
                         "uses its production stand-in (box primitives from the real pack), upstream the GLB")
    ap.add_argument("--pos-tol-mm", type=float, default=5.0)
    ap.add_argument("--frame-tol", type=float, default=1.0, help="max frame MAD (0-255) at any captured step")
    ap.add_argument("--frame-tol-first", type=float, default=0.1,
                    help="max frame MAD at step 0 (before physics can diverge: camera, overlay, materials)")
    args = ap.parse_args(argv)

    work = Path(args.work).expanduser()
    run_dir = work / "runs" / args.run
    run_dir.mkdir(parents=True, exist_ok=True)
    jobs_path = run_dir / "jobs.json"
    notes = {"tolerances": {"pos_mm_40": args.pos_tol_mm, "frame_mad": args.frame_tol,
                            "frame_mad_first": args.frame_tol_first}}
    if args.report_only:
        jobs = json.loads(jobs_path.read_text())
    else:
        if not args.upstream:
            ap.error("--upstream is required (or --report-only)")
        tasks = select_tasks(args.tasks)
        seqs = [s for s in args.sequences.split(",") if s]
        light = [s for s in args.light_sequences.split(",") if s]
        jobs = build_jobs(tasks, args.episodes, args.steps, seqs, args.scripted_steps, light)
        old = json.loads(jobs_path.read_text()) if jobs_path.exists() else []
        keys = {j["key"] for j in jobs}
        jobs_path.write_text(json.dumps([j for j in old if j["key"] not in keys] + jobs))
        dirs = prepare(work, {t["scene"] for t, _ in tasks})
        if args.ours_stand_in == "box":
            from vlaeval.suites.simpler import assets

            dirs["ours"] = assets.open_pack().root
        print(f"{len(tasks)} tasks, {len(jobs)} replays -> {run_dir}", flush=True)
        with open(run_dir / "workers.log", "a") as log:
            run_workers(jobs, run_dir, dirs, upstream_python(args.upstream), args.upstream_instruct,
                        backend_python("simpler"), log)
        jobs = json.loads(jobs_path.read_text())
    write_report(run_dir, jobs, Path(args.doc), Path(args.png), notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

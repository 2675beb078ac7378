"""Scene building blocks on SAPIEN 2.2.2: engine, stage, objects, lights, camera, overlay.

Upstream facts restated (ManiSkill2_real2sim @ ef7a4d4, envs/sapien_env.py and
envs/custom_scenes/base_env.py; shared/docs/simplerenv.md §1.2, §3):

* PhysX scene: default friction 1.0/1.0, restitution 0, contact offset 0.02 (0.005 for the
  move-near and put-on families), no PCM, TGS solver, 25 position / 1 velocity iterations.
* Stages are y-up GLBs placed with pose ``(q = [0.707, 0.707, 0, 0])`` at ``-scene_offset``
  (Google tabletop offset (-1.6616, -3.0337, 0), Bridge (-2.0634, -2.8313, 0)); table top
  at z = 0.87. The pack lacks most stage meshes: then a collision table of that height stands
  in for the stage (:func:`approximate_table`), and results are marked approximate.
* Objects: convex pieces of ``collision.obj`` (density and scale from the info JSON, friction
  0.5/0.5), visual ``textured.obj|dae|glb``, damping 0.1/0.1.
* Visual matching replaces every pixel that is not the robot, a task object or another
  articulation with the real image ("greenscreen"), using the actor-level segmentation.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from vlaeval.suites.simpler import assets as A

STAGE_POSE_Q = (0.707, 0.707, 0.0, 0.0)
SCENE_OFFSETS = {"google": (-1.6616, -3.0337, 0.0), "widowx": (-2.0634, -2.8313, 0.0)}
TABLE_HEIGHT = 0.87
# Stand-in table extents in world x/y (the stage meshes' true shape is unknown; these are the
# documented placeholders of shared/docs/reference/simpler_cpu, covering the robot's reach).
APPROX_TABLE_XY = {"google": ((-0.75, 0.05), (-0.35, 0.75)), "widowx": ((-0.55, 0.35), (-0.45, 0.45))}
TABLE_COLOR = (150 / 255, 110 / 255, 75 / 255, 1.0)
FLOOR_COLOR = (90 / 255, 90 / 255, 90 / 255, 1.0)
OBJECT_FRICTION = 0.5


# ---------------------------------------------------------------------------------------------
# engine / renderer (one per process)
# ---------------------------------------------------------------------------------------------

_ENGINE: dict[str, Any] = {}


def engine_and_renderer() -> tuple[Any, Any]:
    """The process-wide SAPIEN engine and renderer (shader compilation is paid once)."""
    if not _ENGINE:
        from vlaeval.suites.simpler import env_setup

        env_setup.configure()
        import sapien.core as sapien

        engine = sapien.Engine()
        engine.set_log_level(os.environ.get("MS2_SIM_LOG_LEVEL", "error"))
        renderer = sapien.SapienRenderer(offscreen_only=True)
        renderer.set_log_level(os.environ.get("MS2_RENDERER_LOG_LEVEL", "warn"))
        engine.set_renderer(renderer)
        _ENGINE.update(engine=engine, renderer=renderer)
    return _ENGINE["engine"], _ENGINE["renderer"]


def set_shader(shader: str) -> None:
    """``ibl`` (raster) or ``rt`` (path tracing, 32 spp, depth 8, denoiser requested) for new cameras."""
    import sapien.core as sapien

    if shader == "rt":
        settings = dict(camera_shader_dir="rt", viewer_shader_dir="rt", rt_samples_per_pixel=32,
                        rt_max_path_depth=8, rt_use_denoiser=True)
    else:
        settings = dict(camera_shader_dir=shader, viewer_shader_dir=shader)
    for key, value in settings.items():
        setattr(sapien.render_config, key, value)


def create_scene(sim_freq: int, contact_offset: float = 0.02) -> Any:
    import sapien.core as sapien

    engine, _ = engine_and_renderer()
    cfg = sapien.SceneConfig()
    cfg.default_dynamic_friction = 1.0
    cfg.default_static_friction = 1.0
    cfg.default_restitution = 0.0
    cfg.contact_offset = contact_offset
    cfg.enable_pcm = False
    cfg.solver_iterations = 25
    cfg.enable_tgs = True  # keeps the Google gripper from sinking into meshes (upstream note)
    cfg.solver_velocity_iterations = 1
    scene = engine.create_scene(cfg)
    scene.set_timestep(1.0 / sim_freq)
    return scene


# ---------------------------------------------------------------------------------------------
# stage
# ---------------------------------------------------------------------------------------------


@dataclass
class StageInfo:
    name: str
    approximate: bool
    note: str = ""


def stage_offset(scene_name: str | None, family: str) -> tuple[np.ndarray, Any]:
    """(scene offset, stage pose) for a stage name (upstream's per-scene rules)."""
    import sapien.core as sapien

    offset = np.asarray(SCENE_OFFSETS[family], dtype=np.float64)
    pose = sapien.Pose(q=list(STAGE_POSE_Q))
    if scene_name and "modern_bedroom" in scene_name:
        offset = np.asarray(SCENE_OFFSETS["google"])
        pose = sapien.Pose([0.178, -2.235, 1.669], [0.007, 0, 0, -1]) * pose
    elif scene_name and "modern_office" in scene_name:
        offset = np.asarray(SCENE_OFFSETS["google"])
        pose = sapien.Pose([-0.192, -1.728, 1.48], [0.709, 0, 0, -0.705]) * pose
    return offset, pose


def load_stage(scene: Any, renderer: Any, pack: A.AssetPack, scene_name: str, family: str,
               table_height: float = TABLE_HEIGHT, add_collision: bool = True) -> tuple[Any, StageInfo]:
    """The static "arena": the stage mesh if the pack has it, else the stand-in table."""
    import sapien.core as sapien

    builder = scene.create_actor_builder()
    if scene_name == "dummy_drawer":
        builder.add_box_visual(half_size=np.array([10.0, 10.0, 0.017]), color=[1, 1, 1])
        arena = builder.build_static(name="arena")
        arena.set_pose(sapien.Pose(-np.asarray(SCENE_OFFSETS[family])))
        return arena, StageInfo(scene_name, approximate=False)
    offset, pose = stage_offset(scene_name, family)
    rel = A.stage_path(scene_name)
    if pack.has(rel):
        path = str(pack.require(rel, "stage"))
        if add_collision:
            builder.add_nonconvex_collision_from_file(path, pose)
        builder.add_visual_from_file(path, pose)
        arena = builder.build_static(name="arena")
        arena.set_pose(sapien.Pose(-offset))
        return arena, StageInfo(scene_name, approximate=False)
    arena = approximate_table(scene, renderer, family, table_height, add_collision)
    return arena, StageInfo(scene_name, approximate=True,
                            note=f"stage mesh {rel} absent: stand-in table (top z={table_height})")


def approximate_table(scene: Any, renderer: Any, family: str, height: float = TABLE_HEIGHT,
                      add_collision: bool = True) -> Any:
    """A table slab with its top at ``height`` plus a floor, in world coordinates, named "arena"."""
    (x0, x1), (y0, y1) = APPROX_TABLE_XY[family]
    builder = scene.create_actor_builder()
    table_half = np.array([(x1 - x0) / 2, (y1 - y0) / 2, height / 2])
    table_pose = _pose([(x0 + x1) / 2, (y0 + y1) / 2, height / 2])
    floor_half = np.array([4.0, 4.0, 0.01])
    floor_pose = _pose([0.0, 0.0, -0.01])
    if add_collision:
        builder.add_box_collision(pose=table_pose, half_size=table_half)
        builder.add_box_collision(pose=floor_pose, half_size=floor_half)
    builder.add_box_visual(pose=table_pose, half_size=table_half, material=_material(renderer, TABLE_COLOR))
    builder.add_box_visual(pose=floor_pose, half_size=floor_half, material=_material(renderer, FLOOR_COLOR))
    return builder.build_static(name="arena")


def _pose(p: Sequence[float], q: Sequence[float] = (1.0, 0.0, 0.0, 0.0)) -> Any:
    import sapien.core as sapien

    return sapien.Pose(list(p), list(q))


def _material(renderer: Any, rgba: Sequence[float]) -> Any:
    mat = renderer.create_material()
    mat.base_color = list(rgba)
    mat.metallic = 0.0
    mat.roughness = 0.9
    mat.specular = 0.3
    return mat


# ---------------------------------------------------------------------------------------------
# objects
# ---------------------------------------------------------------------------------------------


class ModelDB:
    """An object info JSON of the pack (bbox, scales, density per model id)."""

    def __init__(self, pack: A.AssetPack, name: str, instruct_override: bool = False):
        rel = A.model_json_path(name, instruct_override)
        self.name = name
        self.rel = rel
        self.models: dict[str, dict[str, Any]] = json.loads(pack.require(rel, "model info").read_text())

    def __getitem__(self, model_id: str) -> dict[str, Any]:
        try:
            return self.models[model_id]
        except KeyError:
            raise KeyError(f"model {model_id!r} is not in {self.rel}") from None

    def bbox_size(self, model_id: str, scale: float) -> np.ndarray:
        bbox = self[model_id]["bbox"]
        return (np.asarray(bbox["max"]) - np.asarray(bbox["min"])) * scale

    def scales(self, model_id: str) -> list[float]:
        return list(self[model_id].get("scales") or [1.0])


@dataclass
class ObjectInfo:
    model_id: str
    scale: float
    density: float
    visual: str
    approximate_visual: bool = False


VISUAL_NAMES = ("textured.obj", "textured.dae", "textured.glb")


def load_object(scene: Any, pack: A.AssetPack, model_id: str, scale: float, density: float,
                friction: float = OBJECT_FRICTION, kinematic: bool = False) -> tuple[Any, ObjectInfo]:
    """A dynamic actor named ``model_id`` (convex collision pieces + visual mesh)."""
    model_rel = A.model_dir(model_id)
    root = pack.view(model_rel)
    builder = scene.create_actor_builder()
    material = scene.create_physical_material(static_friction=friction, dynamic_friction=friction, restitution=0.0)
    builder.add_multiple_collisions_from_file(filename=str(root / "collision.obj"), scale=[scale] * 3,
                                              material=material, density=density)
    visual, approximate = None, False
    for name in VISUAL_NAMES:
        if pack.has(f"{model_rel}/{name}"):
            visual = name
            break
    if visual is None:
        # Upstream's visual mesh is missing from the pack: show the collision mesh instead.
        visual, approximate = "collision.obj", True
    builder.add_visual_from_file(filename=str(root / visual), scale=[scale] * 3)
    actor = builder.build_kinematic(name=model_id) if kinematic else builder.build(name=model_id)
    actor.name = model_id
    return actor, ObjectInfo(model_id, scale, density, visual, approximate)


# ---------------------------------------------------------------------------------------------
# lighting
# ---------------------------------------------------------------------------------------------


def setup_lighting(scene: Any, preset: str) -> None:
    """Upstream lighting presets (no shadows; ``enable_shadow`` is off in every evaluation)."""
    kw = dict(shadow=False, scale=5, shadow_map_size=2048)
    scene.set_ambient_light([0.3, 0.3, 0.3])
    if preset == "default":
        scene.add_directional_light([0, 0, -1], [2.2, 2.2, 2.2], **kw)
        scene.add_directional_light([-1, -0.5, -1], [0.7, 0.7, 0.7])
        scene.add_directional_light([1, 1, -1], [0.7, 0.7, 0.7])
    elif preset == "slightly_brighter":
        scene.add_directional_light([0, 0, -1], [3.6, 3.6, 3.6], **kw)
        scene.add_directional_light([-1, -0.5, -1], [1.3, 1.3, 1.3])
        scene.add_directional_light([1, 1, -1], [1.3, 1.3, 1.3])
    elif preset == "slightly_darker":
        scene.add_directional_light([1, 1, -1], [0.8, 0.8, 0.8], **kw)
        scene.add_directional_light([0, 0, -1], [0.8, 0.8, 0.8])
    elif preset == "darker":
        scene.add_directional_light([1, 1, -1], [0.3, 0.3, 0.3], **kw)
        scene.add_directional_light([0, 0, -1], [0.3, 0.3, 0.3])
    elif preset == "original":
        scene.add_directional_light([1, 1, -1], [1, 1, 1], **kw)
        scene.add_directional_light([0, 0, -1], [1, 1, 1])
    elif preset == "ambient_only":
        scene.set_ambient_light([1.0, 1.0, 1.0])
    elif preset == "sink":
        scene.add_directional_light([0, 0, -1], [0.3, 0.3, 0.3], position=[0, 0, 1], **kw)
    else:
        raise ValueError(f"unknown lighting preset {preset!r}")


def lighting_preset(env_kwargs: dict[str, Any], default: str = "default") -> str:
    if env_kwargs.get("slightly_brighter_lighting"):
        return "slightly_brighter"
    if env_kwargs.get("slightly_darker_lighting"):
        return "slightly_darker"
    if env_kwargs.get("darker_lighting"):
        return "darker"
    if env_kwargs.get("original_lighting"):
        return "original"
    if env_kwargs.get("ambient_only_lighting"):
        return "ambient_only"
    return default


def set_robot_render_material(articulation: Any, specular: float = 0.9, roughness: float = 0.3) -> None:
    """Upstream's "bad material" tweak of the robot's look (skipped with disable_bad_material)."""
    for link in articulation.get_links():
        for body in link.get_visual_bodies():
            for shape in body.get_render_shapes():
                mat = shape.material
                mat.specular = specular
                mat.roughness = roughness


# ---------------------------------------------------------------------------------------------
# camera + overlay
# ---------------------------------------------------------------------------------------------


@dataclass
class PolicyCamera:
    camera: Any
    width: int
    height: int

    @classmethod
    def mount(cls, scene: Any, link: Any, name: str, p: Sequence[float], q: Sequence[float], width: int,
              height: int, fx: float, fy: float, cx: float, cy: float, near: float, far: float,
              fovy: float = 1.5) -> "PolicyCamera":
        import sapien.core as sapien

        cam = scene.add_mounted_camera(name, link, sapien.Pose(list(p), list(q)), width, height, fovy, near, far)
        cam.set_focal_lengths(fx, fy)
        cam.set_principal_point(cx, cy)
        return cls(cam, width, height)

    def capture(self, segmentation: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(Color float32 HxWx4, actor-level segmentation HxW or None); call after update_render."""
        self.camera.take_picture()
        color = self.camera.get_float_texture("Color")
        seg = self.camera.get_uint32_texture("Segmentation")[..., 1] if segmentation else None
        return color, seg

    def params(self) -> dict[str, list[list[float]]]:
        return {"intrinsic_cv": self.camera.get_intrinsic_matrix().tolist(),
                "extrinsic_cv": self.camera.get_extrinsic_matrix().tolist()}


@dataclass
class Overlay:
    """A real image replacing the simulated background of the policy camera."""

    name: str
    image: np.ndarray  # float64 HxWx3 in [0, 1], resized to the camera
    keep_ids: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, pack: A.AssetPack, name: str, width: int, height: int) -> "Overlay":
        import cv2

        path = pack.require(A.overlay_path(name), "overlay image")
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise A.AssetError(f"cannot read overlay image {path}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255
        return cls(name, cv2.resize(rgb, (width, height)))

    def apply(self, color: np.ndarray, actor_seg: np.ndarray, keep_ids: np.ndarray) -> np.ndarray:
        """Composite on the float Color image in place (sim pixels of ``keep_ids`` survive)."""
        mask = np.ones(actor_seg.shape, dtype=np.float32)
        mask[np.isin(actor_seg, keep_ids)] = 0.0
        mask = mask[..., None]
        color[..., :3] = color[..., :3] * (1 - mask) + self.image * mask
        return color


def to_uint8(color: np.ndarray) -> np.ndarray:
    """Float Color -> HxWx3 uint8 as upstream's observation wrapper does (clip, scale, truncate)."""
    return np.ascontiguousarray(np.clip(color[..., :3] * 255, 0, 255).astype(np.uint8))

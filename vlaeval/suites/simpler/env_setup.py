"""Vulkan environment for SAPIEN 2.2.2 in a sim worker; must run before ``import sapien``.

On a machine without an NVIDIA GPU, SAPIEN renders through Mesa's lavapipe (CPU Vulkan,
Mesa >= 25, installed by ``scripts/setup --backends simpler``). SAPIEN's wheel asks for the
CUDA-interop device extension ``VK_KHR_external_semaphore_fd``, which lavapipe lacks; our
layer ``VK_LAYER_VLAEVAL_ext_filter`` (built into ``$VLAEVAL_HOME/vk_layer``) removes it at
device creation. On a machine with an NVIDIA GPU nothing is changed (the driver has the
extension, and the layer is not loaded).

``python -m vlaeval.suites.simpler.env_setup --check`` renders one frame (setup's post-check).
Standard library only at module level.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from vlaeval.harness.envs import vlaeval_home

LAYER_NAME = "VK_LAYER_VLAEVAL_ext_filter"
LAYER_MANIFEST = "VkLayer_vlaeval_ext_filter.json"
ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")

_STATE: dict[str, Any] = {}


class VulkanSetupError(RuntimeError):
    """The CPU Vulkan stack (lavapipe + our layer) is not installed."""


def layer_dir() -> Path:
    return Path(os.environ.get("VLAEVAL_VK_LAYER_DIR") or vlaeval_home() / "vk_layer")


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is loaded and its Vulkan ICD is installed."""
    if not (os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")):
        return False
    return any(glob.glob(os.path.join(d, "nvidia_icd*.json")) for d in ICD_DIRS)


def lavapipe_icd() -> str | None:
    for d in ICD_DIRS:
        found = sorted(glob.glob(os.path.join(d, "lvp_icd*.json")))
        if found:
            return found[0]
    return None


def _prepend(var: str, value: str) -> None:
    parts = [p for p in os.environ.get(var, "").split(os.pathsep) if p and p != value]
    os.environ[var] = os.pathsep.join([value, *parts])


def configure(mode: str | None = None) -> dict[str, Any]:
    """Set the Vulkan loader variables for this process (idempotent: re-applied on every call);
    return what was chosen.

    ``mode``: ``"auto"`` (default; ``$VLAEVAL_SIMPLER_RENDER`` overrides), ``"cpu"`` (lavapipe
    + layer even if a GPU exists) or ``"gpu"`` (leave the environment alone).
    """
    mode = mode or os.environ.get("VLAEVAL_SIMPLER_RENDER") or "auto"
    if mode not in ("auto", "cpu", "gpu"):
        raise ValueError(f"VLAEVAL_SIMPLER_RENDER must be auto, cpu or gpu, not {mode!r}")
    use_cpu = mode == "cpu" or (mode == "auto" and not has_nvidia_gpu())
    state: dict[str, Any] = {"mode_requested": mode, "device": "cpu" if use_cpu else "gpu"}
    if use_cpu:
        manifest = layer_dir() / LAYER_MANIFEST
        if not manifest.exists():
            raise VulkanSetupError(
                f"Vulkan layer {LAYER_NAME} not built ({manifest} missing); run `scripts/setup --backends simpler`"
            )
        icd = os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES") or lavapipe_icd()
        if not icd:
            raise VulkanSetupError(
                "no lavapipe Vulkan driver (lvp_icd*.json); run `scripts/setup --backends simpler`"
            )
        os.environ["VK_ICD_FILENAMES"] = icd
        os.environ["VK_DRIVER_FILES"] = icd
        _prepend("VK_LAYER_PATH", str(manifest.parent))
        _prepend("VK_INSTANCE_LAYERS", LAYER_NAME)
        # No window system: SAPIEN would otherwise try GLFW on $DISPLAY.
        os.environ["DISPLAY"] = ""
        state.update(icd=icd, layer=LAYER_NAME, layer_dir=str(manifest.parent))
    _STATE.clear()
    _STATE.update(state)
    return dict(state)


def render_info() -> dict[str, Any]:
    """What :func:`configure` chose (for ``describe()``)."""
    return {k: v for k, v in _STATE.items() if k != "mode_requested"}


def check(width: int = 640, height: int = 512, frames: int = 5) -> dict[str, Any]:
    """Render a lit box on a ground plane; raise unless the frame has content."""
    configure()
    t0 = time.monotonic()
    import numpy as np
    import sapien.core as sapien

    engine = sapien.Engine()
    renderer = sapien.SapienRenderer(offscreen_only=True)
    engine.set_renderer(renderer)
    t_renderer = time.monotonic() - t0
    scene = engine.create_scene()
    scene.set_timestep(1 / 100)
    scene.add_ground(0.0)
    builder = scene.create_actor_builder()
    builder.add_box_collision(half_size=[0.1, 0.1, 0.1])
    builder.add_box_visual(half_size=[0.1, 0.1, 0.1], color=[0.8, 0.2, 0.2])
    box = builder.build(name="box")
    box.set_pose(sapien.Pose([0, 0, 0.1]))
    scene.set_ambient_light([0.3, 0.3, 0.3])
    scene.add_directional_light([0, 0.5, -1], [1.0, 1.0, 1.0])
    camera = scene.add_camera("check", width, height, fovy=1.0, near=0.01, far=10.0)
    camera.set_pose(sapien.Pose([-1.0, 0.0, 0.6], [0.9659258, 0.0, 0.258819, 0.0]))
    times = []
    for _ in range(frames):
        t = time.monotonic()
        scene.step()
        scene.update_render()
        camera.take_picture()
        rgba = camera.get_float_texture("Color")
        times.append(time.monotonic() - t)
    img = (np.clip(rgba[..., :3], 0, 1) * 255).astype(np.uint8)
    red = img[..., 0].astype(int) - img[..., 2].astype(int)
    out = {
        **render_info(),
        "sapien": _version("sapien"),
        "renderer_s": round(t_renderer, 3),
        "first_frame_s": round(times[0], 3),
        "frame_ms": round(1000 * float(np.median(times[1:])), 1) if frames > 1 else None,
        "shape": list(img.shape),
        "std": round(float(img.std()), 2),
        "red_pixels": int((red > 60).sum()),
    }
    if img.std() < 1.0 or out["red_pixels"] < 100:
        raise RuntimeError(f"rendered frame looks blank: {out}")
    return out


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str]) -> int:
    if "--check" not in argv:
        print(json.dumps(configure(), indent=1))
        return 0
    out = check()
    print("render check:", json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

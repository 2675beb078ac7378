"""Real LIBERO backend checks, run in the libero venv through subprocesses.

The harness test process has no libero installed: each test runs a script with
``backend_python("libero")`` and asserts on the JSON it prints. The scripts put this
clone first on ``PYTHONPATH`` so they test this checkout even if the shared venv's
editable install points at another clone.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from vlaeval.harness.envs import BackendEnvMissing, backend_python

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "vlaeval" / "suites" / "libero" / "tasks.json"
MARK = "@@RESULT@@"

pytestmark = pytest.mark.libero


@pytest.fixture(scope="module")
def libero_python() -> str:
    try:
        return backend_python("libero")
    except BackendEnvMissing as exc:
        pytest.skip(f"libero env missing: {exc}")


def run_in_libero(python: str, code: str, *args: str, timeout: float = 240) -> Any:
    """Run ``code`` in the libero venv; return the JSON it printed after ``MARK``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.run(
        [python, "-c", PRELUDE + textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env,
    )
    assert proc.returncode == 0, f"libero subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    assert lines, f"no result printed; stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-2000:]}"
    return json.loads(lines[-1][len(MARK):])


PRELUDE = f"""
import json, time
import numpy as np
from vlaeval.harness.specs import EpisodeSpec
from vlaeval.suites.libero.backend import LiberoBackend

def emit(value):
    print({MARK!r} + json.dumps(value), flush=True)

def episode(task_index=0, init=0, seed=0, camera_size=256, benchmark="libero_spatial"):
    return EpisodeSpec(
        suite=benchmark.replace("_", "-"), suite_version="1", task_id=f"t{{task_index}}",
        episode_index=init, seed=seed, max_steps=10, instruction="", task_index=task_index,
        protocol={{"benchmark": benchmark, "camera_size": camera_size, "settle_steps": 10}},
    )
"""


def test_catalog_matches_installed_package(libero_python: str) -> None:
    proc = subprocess.run(
        [libero_python, str(REPO / "scripts" / "gen_libero_catalog.py"), "--stdout"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    installed = json.loads(proc.stdout)
    committed = json.loads(CATALOG.read_text())
    assert committed["version"] == installed["version"]
    assert list(committed["benchmarks"]) == list(installed["benchmarks"])
    assert sum(len(tasks) for tasks in installed["benchmarks"].values()) == 130
    for name, tasks in installed["benchmarks"].items():
        ours = committed["benchmarks"][name]
        fields = ("index", "name", "instruction", "n_init_states", "problem_folder", "bddl_file")
        assert [[t[f] for f in fields] for t in ours] == [[t[f] for f in fields] for t in tasks], name
        assert all(t["n_init_states"] == 50 for t in tasks), name
    assert committed == installed, "tasks.json differs; rerun scripts/gen_libero_catalog.py"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_backend_spatial_task0(libero_python: str) -> None:
    code = """
    b = LiberoBackend({})
    out = {}
    t0 = time.monotonic()
    obs = b.reset(episode())
    out["reset_s"] = time.monotonic() - t0
    raw = b._raw
    out["keys"] = sorted(obs)
    out["shapes"] = {k: list(v.shape) for k, v in obs.items() if hasattr(v, "shape")}
    out["dtypes"] = {k: str(v.dtype) for k, v in obs.items() if hasattr(v, "dtype")}
    out["contiguous"] = all(obs[k].flags["C_CONTIGUOUS"] for k in ("agentview", "wrist"))
    out["nonzero"] = [int(obs[k].max()) > 0 for k in ("agentview", "wrist")]
    out["rotated"] = [
        bool(np.array_equal(obs["agentview"], raw["agentview_image"][::-1, ::-1])),
        bool(np.array_equal(obs["wrist"], raw["robot0_eye_in_hand_image"][::-1, ::-1])),
    ]
    out["raw_differs"] = not np.array_equal(obs["agentview"], raw["agentview_image"])
    out["state_finite"] = bool(np.all(np.isfinite(obs["state"])))
    out["instruction"] = obs["instruction"]
    out["frame_is_agentview"] = b.frame(obs) is obs["agentview"]
    t0 = time.monotonic()
    out["success"] = [b.step(np.zeros(7)).success for _ in range(5)]
    out["step_s"] = (time.monotonic() - t0) / 5
    priv = b.privileged()
    out["privileged"] = {"keys": sorted(priv), "objects": sorted(priv["objects"]), "goal": priv["goal_state"]}
    again = b.reset(episode())
    out["deterministic"] = {k: bool(np.array_equal(obs[k], again[k])) for k in ("agentview", "wrist", "state")}
    errors = []
    for bad in (episode(task_index=10), episode(init=50)):
        try:
            b.reset(bad)
        except ValueError as exc:
            errors.append(str(exc))
    out["errors"] = errors
    out["describe"] = b.describe()
    b.close()
    emit(out)
    """
    out = run_in_libero(libero_python, code)
    assert out["keys"] == ["agentview", "instruction", "state", "wrist"]
    assert out["shapes"] == {"agentview": [256, 256, 3], "wrist": [256, 256, 3], "state": [8]}
    assert out["dtypes"] == {"agentview": "uint8", "wrist": "uint8", "state": "float32"}
    assert out["contiguous"] and all(out["nonzero"])
    assert all(out["rotated"]) and out["raw_differs"]
    assert out["state_finite"] and out["frame_is_agentview"]
    catalog = json.loads(CATALOG.read_text())["benchmarks"]["libero_spatial"]
    assert out["instruction"] == catalog[0]["instruction"]
    assert out["success"] == [False] * 5
    assert out["deterministic"] == {"agentview": True, "wrist": True, "state": True}
    assert {"objects", "fixtures", "eef_pos", "eef_quat", "gripper_qpos", "goal_state"} <= set(out["privileged"]["keys"])
    assert out["privileged"]["goal"] == [["on", "akita_black_bowl_1", "plate_1"]]
    assert "akita_black_bowl_1" in out["privileged"]["objects"]
    assert len(out["errors"]) == 2 and "task index 10" in out["errors"][0] and "init state 50" in out["errors"][1]
    desc = out["describe"]
    assert desc["robosuite"] == "1.4.0" and desc["mujoco"] == "2.3.7" and desc["MUJOCO_GL"]
    print(f"reset {out['reset_s']:.1f}s (incl. env creation), step {out['step_s'] * 1000:.0f} ms, {desc.get('gl_renderer')}")


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_all_spatial_tasks_build_and_step(libero_python: str) -> None:
    code = """
    b = LiberoBackend({"camera_size": 128})
    rows = []
    for i in range(10):
        t0 = time.monotonic()
        obs = b.reset(episode(task_index=i, camera_size=128))
        steps = [b.step(np.array([0, 0, 0, 0, 0, 0, -1.0])) for _ in range(2)]
        rows.append({
            "instruction": obs["instruction"],
            "shape": list(obs["agentview"].shape),
            "finite": bool(np.all(np.isfinite(steps[-1].obs["state"]))),
            "success": [s.success for s in steps],
            "seconds": round(time.monotonic() - t0, 2),
        })
    b.close()
    emit(rows)
    """
    rows = run_in_libero(libero_python, code, timeout=400)
    catalog = json.loads(CATALOG.read_text())["benchmarks"]["libero_spatial"]
    assert [r["instruction"] for r in rows] == [t["instruction"] for t in catalog]
    for row in rows:
        assert row["shape"] == [128, 128, 3] and row["finite"], row
        assert row["success"] == [False, False], row
    print("per-task seconds:", [r["seconds"] for r in rows])

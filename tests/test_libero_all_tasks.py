"""Every LIBERO task builds, resets and steps on the real backend.

All 40 tasks of libero_spatial / libero_object / libero_goal / libero_10 and the 90 of
libero_90 go through :class:`~vlaeval.suites.libero.backend.LiberoBackend` exactly as a
sim worker drives it (env creation, hard reset, init state 0, settle steps, a few
steps), with 128 px cameras. Two worker processes share the tasks (one env rebuild per
task, reused process); each task reports its observation shapes, its privileged state
and timings. About 5-8 minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vlaeval.harness.envs import BackendEnvMissing, backend_python
from vlaeval.suites.libero import MAX_STEPS, catalog

try:
    LIBERO_PYTHON = backend_python("libero")
except BackendEnvMissing as exc:
    pytest.skip(str(exc), allow_module_level=True)

pytestmark = [pytest.mark.libero, pytest.mark.slow]

STANDARD = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
STEPS = 3

SCRIPT = r"""
import json, sys, time, traceback
import numpy as np
from vlaeval.harness.specs import EpisodeSpec
from vlaeval.suites.libero.backend import LiberoBackend

tasks = json.loads(sys.argv[1])
steps = int(sys.argv[2])
backend = LiberoBackend({})
for task in tasks:
    row = {"benchmark": task["benchmark"], "index": task["index"]}
    try:
        t0 = time.monotonic()
        episode = EpisodeSpec(
            suite=task["benchmark"].replace("_", "-"), suite_version="1", task_id=task["name"], episode_index=0,
            seed=0, max_steps=steps, instruction=task["instruction"], task_index=task["index"],
            protocol={"benchmark": task["benchmark"], "camera_size": 128, "settle_steps": 2},
        )
        obs = backend.reset(episode)
        t1 = time.monotonic()
        action = np.zeros(7)
        action[-1] = -1.0
        for _ in range(steps):
            outcome = backend.step(action)
        t2 = time.monotonic()
        priv = backend.privileged()
        row.update(
            ok=True, instruction=obs["instruction"],
            shapes={k: list(v.shape) for k, v in outcome.obs.items() if hasattr(v, "shape")},
            finite=bool(np.all(np.isfinite(outcome.obs["state"]))),
            image_std=float(outcome.obs["agentview"].std()),
            goal=priv.get("goal_state"), objects=len(priv.get("objects", {})), success=bool(outcome.success),
            reset_s=round(t1 - t0, 2), step_s=round((t2 - t1) / steps, 3),
        )
    except Exception:
        row.update(ok=False, error=traceback.format_exc()[-2000:])
    print(json.dumps(row), flush=True)
backend.close()
"""


def all_tasks() -> list[dict]:
    benchmarks = catalog()["benchmarks"]
    return [{**t, "benchmark": b} for b in (*STANDARD, "libero_90") for t in benchmarks[b]]


def run_shard(tasks: list[dict]) -> subprocess.Popen[str]:
    env = {**os.environ, "LP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.Popen([LIBERO_PYTHON, "-c", SCRIPT, json.dumps(tasks), str(STEPS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.timeout(900)
def test_every_libero_task_builds_resets_and_steps(tmp_path):
    tasks = all_tasks()
    assert len(tasks) == 130
    shards = [tasks[0::2], tasks[1::2]]  # two processes on two cores, each reusing its process
    procs = [run_shard(shard) for shard in shards]
    rows = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=880)
        assert proc.returncode == 0, stderr[-3000:]
        rows += [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    (tmp_path / "tasks.jsonl").write_text("\n".join(json.dumps(r) for r in rows))

    by_key = {(r["benchmark"], r["index"]): r for r in rows}
    missing = [(t["benchmark"], t["index"]) for t in tasks if (t["benchmark"], t["index"]) not in by_key]
    assert not missing, f"no report for {missing}"
    failed = {k: r["error"] for k, r in by_key.items() if not r["ok"]}
    assert not failed, "\n\n".join(f"{k}:\n{v}" for k, v in failed.items())
    for task in tasks:
        row = by_key[(task["benchmark"], task["index"])]
        where = f"{task['benchmark']}/{task['index']}"
        assert row["instruction"].lower() == task["instruction"].lower(), where
        assert row["shapes"]["agentview"] == [128, 128, 3] and row["shapes"]["wrist"] == [128, 128, 3], where
        assert row["shapes"]["state"] == [8] and row["finite"], where
        assert row["image_std"] > 5, where  # a rendered scene, not a blank frame
        assert row["goal"] and row["objects"] > 0, where
        assert not row["success"], where  # nothing is solved by standing still
    assert {t["benchmark"] for t in tasks} == set(MAX_STEPS)
    slowest = max(rows, key=lambda r: r["reset_s"])
    print(f"\n{len(rows)} tasks; slowest reset {slowest['benchmark']}/{slowest['index']} {slowest['reset_s']} s; "
          f"mean step {sum(r['step_s'] for r in rows) / len(rows):.3f} s", file=sys.stderr)

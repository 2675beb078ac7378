"""The harness end to end on the real LIBERO backend (robosuite + MuJoCo in its own venv).

Episodes are shortened with ``--protocol max_steps=...`` to fit CI; everything else
(worker process, policy protocol, store, resume, retries) is the real path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vlaeval.harness.envs import BackendEnvMissing, backend_python
from vlaeval.harness.policy import Policy, PolicySpec
from vlaeval.harness.protocol.server import PolicyServer
from vlaeval.harness.store import RunStore

try:
    backend_python("libero")
except BackendEnvMissing as exc:  # scripts/test always builds it; plain pytest may not have
    pytest.skip(str(exc), allow_module_level=True)

pytestmark = [pytest.mark.libero, pytest.mark.slow]


def vlaeval_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vlaeval.cli", "run", "--suite", "libero-spatial", "--out", str(out),
            "--episodes-per-task", "1", *extra]


def stored(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    store = RunStore(out)
    try:
        return store.episodes(), store.attempts()
    finally:
        store.close()


def worker_pids(driver_pid: int) -> list[int]:
    """Sim worker processes whose parent is ``driver_pid`` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == driver_pid and b"vlaeval.harness.worker.main" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_random_run_survives_a_killed_driver_and_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = vlaeval_cmd(out, "--model", "random", "--tasks", "0", "--tasks", "1", "--protocol", "max_steps=20")
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        if (out / "results.sqlite").exists() and stored(out)[0]:
            break
        time.sleep(0.2)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    workers = worker_pids(driver.pid)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = {e["key"]: e["finished_at"] for e in stored(out)[0]}
    assert len(before) == 1
    deadline = time.monotonic() + 10  # the worker dies with its driver (PDEATHSIG)
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{p}").exists() for p in workers)

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipped 1 already finished" in done.stdout
    episodes, attempts = stored(out)
    assert len(episodes) == 2 == len({e["key"] for e in episodes})
    assert {e["task_id"] for e in episodes} == {
        "pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate",
        "pick_up_the_black_bowl_next_to_the_ramekin_and_place_it_on_the_plate",
    }
    assert all(e["status"] == "failure" and e["steps"] == 20 for e in episodes)
    first = next(iter(before))
    assert [e["finished_at"] for e in episodes if e["key"] == first] == [before[first]]
    assert not attempts
    store = RunStore(out)
    runs = store.runs()
    store.close()
    backend = runs[-1]["metadata"]["backend"]
    assert backend["robosuite"] == "1.4.0" and backend["mujoco"] == "2.3.7"
    assert backend["gl_renderer"]  # e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"


class KillWorkerOnce(Policy):
    """Zero actions; on the 5th request of the first episode it SIGKILLs the sim worker."""

    name = "kill-worker-once"

    def __init__(self) -> None:
        self.calls = 0
        self.driver_pid: int | None = None
        self.killed: list[int] = []

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, name=self.name)

    def act(self, state: Any, obs: dict[str, Any]) -> np.ndarray:
        self.calls += 1
        assert obs["agentview"].shape == (256, 256, 3) and obs["state"].shape == (8,)
        if self.calls == 5 and not self.killed and self.driver_pid is not None:
            for pid in worker_pids(self.driver_pid):
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
        action = np.zeros(7)
        action[-1] = -1.0
        return action


def test_worker_killed_mid_episode_is_retried_and_recorded(tmp_path):
    policy = KillWorkerOnce()
    server = PolicyServer(policy, port=0)
    server.start_in_thread()
    try:
        out = tmp_path / "run"
        driver = subprocess.Popen(
            vlaeval_cmd(out, "--model", server.url, "--tasks", "0", "--protocol", "max_steps=10"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        policy.driver_pid = driver.pid
        stdout, stderr = driver.communicate(timeout=400)
    finally:
        server.stop()
    assert driver.returncode == 0, stderr[-2000:]
    assert len(policy.killed) == 1
    [episode], attempts = stored(out)
    assert episode["status"] == "failure" and episode["steps"] == 10 and episode["attempts"] == 2
    assert len(attempts) == 1 and "SIGKILL" in attempts[0]["error"]
    assert "1 failure, 0 error" in stdout


FIRST_FRAME = """
import json, sys
import numpy as np
from vlaeval.harness.specs import EpisodeSpec
from vlaeval.suites.libero.backend import LiberoBackend
backend = LiberoBackend({})
obs = backend.reset(EpisodeSpec.from_dict(json.loads(sys.argv[1])))
np.save(sys.argv[2], obs["agentview"])
backend.close()
"""


def test_recorded_video_plays_and_starts_with_the_first_observation(tmp_path):
    imageio = pytest.importorskip("imageio.v2")
    out = tmp_path / "run"
    cmd = vlaeval_cmd(out, "--model", "zero", "--tasks", "3", "--protocol", "max_steps=5", "--record-video")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [episode], _ = stored(out)
    video = Path(episode["video"])
    assert video.name == f"{episode['key']}.mp4" and video.parent == out / "videos"
    frames = [np.asarray(f) for f in imageio.get_reader(video)]
    assert len(frames) == 6  # the first observation + one frame per step
    assert frames[0].shape == (256, 256, 3) and frames[0].std() > 10

    spec = {k: episode[k] for k in ("suite", "suite_version", "task_id", "task_index", "episode_index", "seed",
                                    "instruction", "protocol")}
    spec["max_steps"] = episode["protocol"]["max_steps"]
    first = tmp_path / "first.npy"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    subprocess.run([backend_python("libero"), "-c", FIRST_FRAME, json.dumps(spec), str(first)],
                   check=True, timeout=240, env=env, capture_output=True)
    reference = np.load(first).astype(float)
    assert np.abs(frames[0].astype(float) - reference).mean() < 6  # h264 is lossy, the scene is the same
    assert np.abs(frames[0].astype(float) - reference[::-1, ::-1]).mean() > 10  # and it is not upside down

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "skipped 1 already finished" in again.stdout
    assert sorted(p.name for p in (out / "videos").iterdir()) == [video.name]  # never overwritten


@pytest.mark.ray
def test_ray_executor_completes_the_same_libero_run_with_identical_results(tmp_path):
    pytest.importorskip("ray")
    results = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor
        cmd = vlaeval_cmd(out, "--model", "random", "--tasks", "4", "--protocol", "max_steps=8",
                          "--executor", executor)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-2000:]
        [episode], attempts = stored(out)
        assert not attempts
        results[executor] = (episode["key"], episode["status"], episode["steps"], episode["attempts"])
    assert results["ray"] == results["local"]

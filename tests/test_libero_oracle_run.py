"""The scripted LIBERO oracle on the real backend, and its demonstrations as a LeRobot dataset."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vlaeval.harness.envs import BackendEnvMissing, backend_python
from vlaeval.harness.store import RunStore

try:
    backend_python("libero")
except BackendEnvMissing as exc:
    pytest.skip(str(exc), allow_module_level=True)

pytestmark = [pytest.mark.libero, pytest.mark.slow]


def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "vlaeval.cli", "run", "--suite", "libero-spatial", *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_oracle_solves_real_libero_spatial_episodes_and_records_a_lerobot_dataset(tmp_path):
    out, demos = tmp_path / "run", tmp_path / "libero_spatial_no_noops"
    run("--model", "oracle", "--tasks", "0", "--tasks", "1", "--episodes-per-task", "2", "--workers", "2",
        "--record-demos", str(demos), "--out", str(out))
    store = RunStore(out)
    episodes = store.episodes()
    store.close()
    assert len(episodes) == 4
    assert sum(e["success"] for e in episodes) >= 3, [(e["task_id"], e["status"], e["steps"]) for e in episodes]

    from vlaeval.harness.demos import load_dataset

    dataset = load_dataset(demos)
    assert dataset.num_episodes == 4
    assert dataset.num_frames == sum(e["steps"] for e in episodes)
    frame = dataset[0]
    assert tuple(frame["observation.images.agentview"].shape)[-2:] == (256, 256)
    assert tuple(frame["action"].shape) == (7,) and np.isfinite(np.asarray(frame["action"])).all()
    assert frame["task"] in {e["instruction"] for e in episodes}

    again = run("--model", "oracle", "--tasks", "0", "--tasks", "1", "--episodes-per-task", "2",
                "--record-demos", str(demos), "--out", str(out))
    assert "skipped 4 already finished" in again.stdout
    assert load_dataset(demos).num_episodes == 4  # nothing appended twice


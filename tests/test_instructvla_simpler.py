"""The flagship path: ``vlaeval run --suite simpler-instruct --model <checkpoint>``.

A tiny random-weight single-camera InstructVLA checkpoint drives a real SimplerEnv-Instruct
episode (SAPIEN on CPU, sim worker, policy server, store); real weights cannot be
downloaded here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from vlaeval.harness.envs import BackendEnvMissing, backend_python  # noqa: E402
from vlaeval.harness.store import read_episodes  # noqa: E402
from tiny_instructvla import tiny_checkpoint  # noqa: E402

try:
    backend_python("simpler")
except BackendEnvMissing as exc:
    pytest.skip(str(exc), allow_module_level=True)

pytestmark = [pytest.mark.simpler, pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def test_simpler_instruct_runs_a_checkpoint_end_to_end(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "ckpt", "bridge_dataset", num_images=1)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vlaeval.cli", "run", "--suite", "simpler-instruct", "--model", str(checkpoint),
           "--limit", "1", "--protocol", "max_steps=3", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    [episode] = read_episodes(out)
    assert episode["status"] in ("success", "failure"), episode["error"]
    assert episode["steps"] == 3
    assert episode["metrics"]["assets"] in ("approximate", "complete")

"""The headline path: ``vlaeval run --model <checkpoint>`` with an InstructVLA checkpoint on LIBERO.

A tiny random-weight checkpoint (real loading code, real policy server, real LIBERO worker)
proves the wiring end to end; real weights cannot be downloaded here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from vlaeval.harness.envs import BackendEnvMissing, backend_python  # noqa: E402
from vlaeval.harness.store import RunStore  # noqa: E402
from tiny_instructvla import tiny_checkpoint  # noqa: E402

try:
    backend_python("libero")
except BackendEnvMissing as exc:
    pytest.skip(str(exc), allow_module_level=True)

pytestmark = [pytest.mark.libero, pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


@pytest.mark.parametrize("which", ["random-weights", "shipped-demo"])
def test_a_checkpoint_path_runs_on_libero_through_the_real_worker(tmp_path, which):
    """A fresh random-weight checkpoint, and the shipped one trained on oracle demonstrations (it also
    reads the robot state, so the worker's state observation reaches the model)."""
    from vlaeval.models.instructvla import DEMO_CHECKPOINT

    checkpoint = DEMO_CHECKPOINT if which == "shipped-demo" else tiny_checkpoint(tmp_path / "ckpt", "libero_spatial_no_noops")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vlaeval.cli", "run", "--suite", "libero-spatial", "--model", str(checkpoint),
           "--tasks", "0", "--episodes-per-task", "1", "--protocol", "max_steps=8", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    store = RunStore(out)
    [episode] = store.episodes()
    [run] = store.runs()
    store.close()
    assert episode["status"] in ("success", "failure"), episode["error"]
    assert episode["steps"] == 8 or episode["status"] == "success"
    assert episode["model"] == str(checkpoint)
    assert run["metadata"]["model"]["spec"]["gripper"] == "open_positive"
    assert run["metadata"]["model"]["spec"]["chunk_size"] == 8

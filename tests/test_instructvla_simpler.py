"""The flagship path: ``vlaeval run --suite simpler-instruct --model <checkpoint>``.

A tiny random-weight single-camera InstructVLA checkpoint drives a real SimplerEnv-Instruct
episode (SAPIEN on CPU, sim worker, policy server, store); real weights cannot be
downloaded here.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from vlaeval.harness.envs import BackendEnvMissing, backend_python  # noqa: E402
from vlaeval.harness.store import RunStore  # noqa: E402
from vlaeval.models.instructvla.checkpoint import save_checkpoint  # noqa: E402
from vlaeval.models.instructvla.config import get_config  # noqa: E402
from vlaeval.models.instructvla.model import build_model  # noqa: E402
from vlaeval.models.instructvla.normalization import dataset_statistics  # noqa: E402

try:
    backend_python("simpler")
except BackendEnvMissing as exc:
    pytest.skip(str(exc), allow_module_level=True)

pytestmark = [pytest.mark.simpler, pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def test_simpler_instruct_runs_a_checkpoint_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    stats = {"bridge_dataset": dataset_statistics(rng.normal(size=(100, 7)), rng.normal(size=(100, 8)), 3)}
    model = build_model(get_config("tiny", num_images=1), norm_stats=stats, seed=0)
    checkpoint = save_checkpoint(model, tmp_path / "ckpt")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vlaeval.cli", "run", "--suite", "simpler-instruct", "--model", str(checkpoint),
           "--limit", "1", "--protocol", "max_steps=3", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    store = RunStore(out)
    [episode] = store.episodes()
    store.close()
    assert episode["status"] in ("success", "failure"), episode["error"]
    assert episode["steps"] == 3
    assert episode["metrics"]["assets"] in ("approximate", "complete")

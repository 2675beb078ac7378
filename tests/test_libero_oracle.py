"""The scripted LIBERO oracle and LeRobot demonstrations.

* Real LIBERO (``libero`` + ``slow``): ``vlaeval run --suite libero-spatial --model oracle``
  solves three episodes end to end, and ``--record-demos`` turns one episode into a
  LeRobot dataset that ``LeRobotDataset`` reads back frame for frame.
* Fast: the adapter's suite dispatch and errors, the oracle's geometry helpers, and
  :class:`~vlaeval.harness.demos.DemoWriter` on synthetic episodes (appending, resume,
  concurrent callers).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from vlaeval.adapters.oracle import OraclePolicy, OracleUnavailable
from vlaeval.harness.envs import BackendEnvMissing, backend_python
from vlaeval.harness.specs import EpisodeResult, EpisodeSpec
from vlaeval.harness.store import read_episodes
from vlaeval.suites.libero import oracle as libero_oracle

try:
    backend_python("libero")
    HAVE_LIBERO = True
except BackendEnvMissing:
    HAVE_LIBERO = False

needs_libero = pytest.mark.skipif(not HAVE_LIBERO, reason="no libero environment (scripts/setup builds it)")


def lerobot_available() -> bool:
    try:
        from vlaeval.harness.demos import import_lerobot

        import_lerobot()
        return True
    except ImportError:
        return False


needs_lerobot = pytest.mark.skipif(not lerobot_available(), reason="lerobot-dataset is not installed")


def vlaeval_run(out: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "vlaeval.cli", "run", "--suite", "libero-spatial", "--model", "oracle",
           "--out", str(out), "--episodes-per-task", "1", *extra]
    env = {**os.environ, "LP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def stored(out: Path) -> list[dict]:
    return read_episodes(out)


# -- real LIBERO -----------------------------------------------------------------------
@pytest.mark.libero
@pytest.mark.slow
@needs_libero
@pytest.mark.timeout(400)
def test_oracle_solves_libero_spatial_episodes(tmp_path):
    out = tmp_path / "run"
    log = tmp_path / "oracle.jsonl"
    done = vlaeval_run(out, "--tasks", "0", "--tasks", "3", "--tasks", "8", "--workers", "2",
                       "--model-arg", f"log={log}")
    assert done.returncode == 0, done.stderr[-3000:]
    episodes = stored(out)
    assert len(episodes) == 3
    failed = [(e["task_id"], e["status"], e["steps"]) for e in episodes if not e["success"]]
    assert not failed, f"{failed}\n{log.read_text() if log.exists() else ''}"
    assert all(e["steps"] < 220 for e in episodes)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["task_index"] for r in records) == [0, 3, 8] and all(r["success"] for r in records)


@pytest.mark.libero
@pytest.mark.slow
@needs_lerobot
@needs_libero
@pytest.mark.timeout(400)
def test_recorded_oracle_episode_loads_back_as_a_lerobot_dataset(tmp_path):
    from vlaeval.harness.demos import SIDECAR, load_dataset

    out, dataset_dir = tmp_path / "run", tmp_path / "dataset"
    done = vlaeval_run(out, "--tasks", "0", "--record-demos", str(dataset_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    [episode] = stored(out)
    assert episode["success"]
    raw = out / "demos" / "raw" / f"{episode['key']}.npz"
    with np.load(raw) as data:
        arrays = {k: data[k] for k in data.files}
    steps = episode["steps"]
    assert arrays["action"].shape == (steps, 7) and arrays["observation.agentview"].shape == (steps, 256, 256, 3)

    dataset = load_dataset(dataset_dir)
    assert dataset.num_episodes == 1 and dataset.num_frames == steps == len(dataset)
    assert dataset.fps == 20
    assert set(dataset.features) >= {"observation.images.agentview", "observation.images.wrist",
                                     "observation.state", "action", "next.success", "next.done"}
    for t in (0, steps // 2, steps - 1):
        frame = dataset[t]
        assert frame["task"] == episode["instruction"]
        assert int(frame["frame_index"]) == t and int(frame["episode_index"]) == 0
        np.testing.assert_allclose(frame["action"].numpy(), arrays["action"][t], atol=1e-6)
        np.testing.assert_allclose(frame["observation.state"].numpy(), arrays["observation.state"][t], atol=1e-6)
        for camera in ("agentview", "wrist"):
            image = (frame[f"observation.images.{camera}"].numpy().transpose(1, 2, 0) * 255).round()
            np.testing.assert_array_equal(image.astype(np.uint8), arrays[f"observation.{camera}"][t])
        last = t == steps - 1
        assert bool(frame["next.done"]) is last and bool(frame["next.success"]) is last

    sidecar = [json.loads(line) for line in (dataset_dir / SIDECAR).read_text().splitlines()]
    assert [r["key"] for r in sidecar] == [episode["key"]] and sidecar[0]["frames"] == steps
    again = vlaeval_run(out, "--tasks", "0", "--record-demos", str(dataset_dir))
    assert again.returncode == 0 and "skipped 1 already finished" in again.stdout
    assert load_dataset(dataset_dir).num_episodes == 1


# -- fast: the adapter -----------------------------------------------------------------
def test_oracle_adapter_declares_privileged_observations_and_dispatches_by_suite():
    policy = OraclePolicy()
    spec = policy.spec()
    assert spec.observation_keys == ("privileged",) and spec.action_dim == 7 and spec.gripper == "close_positive"
    assert policy.fingerprint().startswith("oracle(")
    state = policy.start_episode("put the bowl on the plate", {"suite": "libero-goal", "protocol": {"benchmark": "libero_goal"}})
    assert isinstance(state, libero_oracle.LiberoOracle)
    family = policy.start_episode("x", {"suite": "libero", "protocol": {"benchmark": "libero_10"}})
    assert isinstance(family, libero_oracle.LiberoOracle)
    with pytest.raises(OracleUnavailable, match="no scripted oracle for suite 'toy'"):
        policy.start_episode("x", {"suite": "toy", "protocol": {}})
    with pytest.raises(OracleUnavailable, match="privileged"):
        policy.act(state, {"state": np.zeros(8)})


def test_oracle_plans_goal_predicates_in_a_workable_order():
    oracle = libero_oracle.LiberoOracle()
    goal = [["close", "white_cabinet_1_bottom_region"], ["in", "akita_black_bowl_1", "white_cabinet_1_bottom_region"],
            ["on", "moka_pot_1", "flat_stove_1_cook_region"], ["turnon", "flat_stove_1"]]
    assert [p[0] for p in oracle._order(goal)] == ["turnon", "in", "on", "close"]
    oracle.plan([["in", "a_1", "basket_1_contain_region"], ["in", "b_1", "basket_1_contain_region"]])
    assert oracle.slots == {("a_1", "basket_1_contain_region"): 1.0, ("b_1", "basket_1_contain_region"): -1.0}


def test_oracle_geometry_helpers():
    assert libero_oracle.category("akita_black_bowl_12") == "akita_black_bowl"
    for angle in (0.3, -1.2, 2.0, math.pi):
        R = libero_oracle.rot_z(angle)
        assert np.allclose(libero_oracle.rotvec(R), [0, 0, libero_oracle.wrap(angle)], atol=1e-6) or np.isclose(
            abs(libero_oracle.wrap(angle)), math.pi)
        assert -math.pi / 2 < libero_oracle.wrap_half(angle) <= math.pi / 2
    # at yaw 0 the fingers close along world y; a quarter turn makes them close along x
    assert math.isclose(libero_oracle.closing_yaw(np.array([0.0, 1.0])), 0.0, abs_tol=1e-9)
    assert math.isclose(abs(libero_oracle.closing_yaw(np.array([1.0, 0.0]))), math.pi / 2, abs_tol=1e-9)
    q = [0.0, 0.0, math.sin(0.4), math.cos(0.4)]  # 0.8 rad about z, xyzw
    assert np.allclose(libero_oracle.quat_to_mat(q), libero_oracle.rot_z(0.8))


def test_oracle_reads_table_regions_from_bddl(tmp_path):
    bddl = tmp_path / "t.bddl"
    bddl.write_text("(:regions (stove_front_region (:target main_table) (:ranges ((-0.09 0.17 -0.01 0.25)))))")
    regions = libero_oracle.bddl_table_regions(str(bddl))
    (cx, cy), (hx, hy) = regions["main_table_stove_front_region"]
    assert np.allclose([cx, cy, hx, hy], [-0.05, 0.21, 0.04, 0.04])


# -- fast: the LeRobot writer ----------------------------------------------------------
def synthetic_demo(path: Path, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "observation.agentview": rng.integers(0, 256, (steps, 32, 32, 3), dtype=np.uint8),
        "observation.wrist": rng.integers(0, 256, (steps, 32, 32, 3), dtype=np.uint8),
        "observation.state": rng.normal(size=(steps, 8)).astype(np.float32),
        "action": rng.uniform(-1, 1, (steps, 7)).astype(np.float32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def spec(index: int) -> EpisodeSpec:
    return EpisodeSpec(suite="libero-spatial", suite_version="1", task_id=f"task_{index % 2}", episode_index=index,
                       seed=0, max_steps=50, instruction=f"instruction {index % 2}", task_index=index % 2)


@needs_lerobot
def test_demo_writer_appends_resumes_and_is_thread_safe(tmp_path):
    from vlaeval.harness.demos import DemoWriter, load_dataset

    root = tmp_path / "dataset"
    demos = {f"key{i}": synthetic_demo(tmp_path / "raw" / f"key{i}.npz", steps=3 + i, seed=i) for i in range(4)}
    writer = DemoWriter(root, suite="libero-spatial")
    threads = [threading.Thread(target=writer.add_episode,
                                args=(tmp_path / "raw" / f"key{i}.npz", spec(i),
                                      EpisodeResult(status="success" if i % 2 else "failure", success=bool(i % 2),
                                                    steps=3 + i)))
               for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert writer.added == 3 and not writer.errors

    again = DemoWriter(root, suite="libero-spatial")  # a resumed run: one old episode, one new
    again.add_episode(tmp_path / "raw" / "key1.npz", spec(1), EpisodeResult(status="success", success=True, steps=4))
    again.add_episode(tmp_path / "raw" / "key3.npz", spec(3), EpisodeResult(status="success", success=True, steps=6))
    again.close()
    assert again.added == 1 and again.skipped == 1 and not again.errors

    dataset = load_dataset(root)
    assert dataset.num_episodes == 4 and dataset.num_frames == 3 + 4 + 5 + 6
    sidecar = [json.loads(line) for line in (root / "vlaeval_episodes.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in sidecar) == sorted(demos)
    start = 0
    for record in sorted(sidecar, key=lambda r: r["episode_index"]):
        arrays, steps = demos[record["key"]], record["frames"]
        first, last = dataset[start], dataset[start + steps - 1]
        assert int(first["episode_index"]) == record["episode_index"]
        np.testing.assert_allclose(first["action"].numpy(), arrays["action"][0], atol=1e-6)
        np.testing.assert_allclose(last["observation.state"].numpy(), arrays["observation.state"][-1], atol=1e-6)
        image = (first["observation.images.wrist"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        np.testing.assert_array_equal(image, arrays["observation.wrist"][0])
        assert bool(last["next.done"]) and bool(last["next.success"]) is record["success"]
        assert not bool(first["next.done"]) or steps == 1
        start += steps
    assert "torchvision" not in sys.modules or not getattr(sys.modules["torchvision"], "__vlaeval_stand_in__", False)


@needs_lerobot
def test_demo_writer_refuses_a_directory_that_is_not_its_dataset(tmp_path):
    from vlaeval.harness.demos import DemoWriter

    root = tmp_path / "dataset"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    synthetic_demo(tmp_path / "raw" / "k.npz", steps=2, seed=0)
    writer = DemoWriter(root)
    writer.add_episode(tmp_path / "raw" / "k.npz", spec(0), EpisodeResult(status="success", success=True, steps=2))
    writer.close()
    assert writer.added == 0 and "not a LeRobot dataset" in writer.errors[0]

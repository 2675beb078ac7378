"""End-to-end runs through real worker processes, on the toy suite (harness logic).

The same scenarios run on the real LIBERO backend in test_run_libero.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from vlaeval.harness.config import load_config
from vlaeval.harness.run import run_evaluation
from vlaeval.harness.store import RunStore


def run(tmp_path, **overrides):
    config = load_config(None, {"suite": "toy", "model": "toy-greedy", "out": str(tmp_path / "run"), **overrides})
    return run_evaluation(config)


def rows(tmp_path):
    store = RunStore(tmp_path / "run")
    try:
        return store.episodes(), store.attempts(), store.runs()
    finally:
        store.close()


def test_local_pool_runs_every_episode_and_resume_skips_them(tmp_path):
    summary = run(tmp_path, workers=2, seeds=[0, 1], episodes_per_task=2)
    assert summary.planned == 12 and summary.counts["success"] == 12
    episodes, attempts, runs = rows(tmp_path)
    assert len(episodes) == 12 and not attempts
    assert all(e["steps"] >= 4 and e["attempts"] == 1 for e in episodes)
    assert runs[0]["metadata"]["suite"]["protocol"]["max_steps"] == 30
    # the worker and the run's policy server share this host: observations go through shared memory
    assert runs[0]["metadata"]["backend"]["policy_transport"] == ("shm" if os.path.isdir("/dev/shm") else "wire")
    again = run(tmp_path, workers=2, seeds=[0, 1], episodes_per_task=2)
    assert again.skipped == 12 and again.ran == 0
    wider = run(tmp_path, workers=2, seeds=[0, 1, 2], episodes_per_task=2)
    assert wider.skipped == 12 and wider.ran == 6
    assert len(rows(tmp_path)[0]) == 18


def test_crashed_worker_is_replaced_and_its_episode_retried(tmp_path):
    summary = run(tmp_path, episodes_per_task=1, protocol={"crash_once_dir": str(tmp_path / "markers")})
    assert summary.counts["success"] == 3
    episodes, attempts, _ = rows(tmp_path)
    retried = [e for e in episodes if e["attempts"] == 2]
    assert len(retried) == 1 and retried[0]["task_id"] == "reach_0"
    assert len(attempts) == 1 and "SIGKILL" in attempts[0]["error"]


def test_a_worker_that_always_crashes_is_recorded_as_error_and_the_run_continues(tmp_path):
    summary = run(tmp_path, episodes_per_task=1, retries=1, protocol={"crash_always": True})
    assert summary.counts == {"success": 2, "error": 1}
    episodes, attempts, _ = rows(tmp_path)
    [failed] = [e for e in episodes if e["status"] == "error"]
    assert failed["attempts"] == 2 and "gave up after 2 attempts" in failed["error"]
    assert len(attempts) == 2


def test_watchdog_kills_a_hung_worker(tmp_path):
    summary = run(tmp_path, episodes_per_task=1, watchdog_s=3, protocol={"hang_once_dir": str(tmp_path / "m")})
    assert summary.counts["success"] == 3
    _, attempts, _ = rows(tmp_path)
    assert len(attempts) == 1 and "watchdog" in attempts[0]["error"]


def test_nan_actions_end_the_episode_with_a_clear_error(tmp_path):
    summary = run(tmp_path, model="toy-nan", episodes_per_task=1)
    assert summary.counts == {"error": 3}
    episodes, attempts, _ = rows(tmp_path)
    assert all("NaN" in e["error"] and e["attempts"] == 1 for e in episodes)
    assert not attempts  # a policy fault is not retried


def test_a_policy_needing_missing_observations_is_refused_per_episode(tmp_path):
    summary = run(tmp_path, model="toy-needs-wrist", episodes_per_task=1)
    assert summary.counts == {"error": 3}
    assert all("needs observation keys ['wrist']" in e["error"] for e in rows(tmp_path)[0])


def test_inprocess_executor_gives_the_same_results(tmp_path):
    run(tmp_path, episodes_per_task=2)
    local = {(e["key"], e["steps"], e["status"]) for e in rows(tmp_path)[0]}
    inproc_dir = tmp_path / "inproc"
    inproc_dir.mkdir()
    run(inproc_dir, episodes_per_task=2, executor="inprocess")
    assert {(e["key"], e["steps"], e["status"]) for e in rows(inproc_dir)[0]} == local


def test_driver_killed_mid_run_resumes_without_rerunning_or_duplicating(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vlaeval.cli", "run", "--suite", "toy", "--model", "toy-greedy",
           "--episodes-per-task", "4", "--protocol", "step_sleep_s=0.05", "--out", str(out)]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (out / "results.sqlite").exists() and len(RunStore(out).finished_keys()) >= 3:
            break
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    finished_before = {e["key"]: e["finished_at"] for e in rows(tmp_path)[0]}
    assert 3 <= len(finished_before) < 12
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"skipped {len(finished_before)} already finished" in done.stdout
    episodes = rows(tmp_path)[0]
    assert len(episodes) == 12 == len({e["key"] for e in episodes})
    for e in episodes:  # nothing finished before the kill was run again
        if e["key"] in finished_before:
            assert e["finished_at"] == finished_before[e["key"]]


@pytest.mark.ray
def test_ray_executor_gives_the_same_results(tmp_path):
    pytest.importorskip("ray")
    run(tmp_path, episodes_per_task=2, workers=2)
    local = {(e["key"], e["steps"], e["status"]) for e in rows(tmp_path)[0]}
    ray_dir = tmp_path / "ray"
    ray_dir.mkdir()
    summary = run(ray_dir, episodes_per_task=2, workers=2, executor="ray")
    assert summary.ran == 6
    assert {(e["key"], e["steps"], e["status"]) for e in rows(ray_dir)[0]} == local


def test_ray_executor_retries_a_crashed_worker(tmp_path):
    pytest.importorskip("ray")
    summary = run(tmp_path, episodes_per_task=1, executor="ray", protocol={"crash_once_dir": str(tmp_path / "mk")})
    assert summary.counts["success"] == 3
    assert len(rows(tmp_path)[1]) == 1


def test_workers_default_to_one_blas_thread_unless_told(monkeypatch) -> None:
    """Spinning BLAS threads in a sim worker slowed every SimplerEnv step by ~13 % on 2 cores."""
    from pathlib import Path

    import vlaeval
    from vlaeval.harness.worker.supervisor import WorkerConfig, worker_environment

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    config = WorkerConfig(python=sys.executable, backend="toy", policy_url="ws://127.0.0.1:1")
    env = worker_environment(config)
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "1"
    assert str(Path(vlaeval.__file__).resolve().parent.parent) == env["PYTHONPATH"].split(os.pathsep)[0]
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    config.env = {"MKL_NUM_THREADS": "2"}
    env = worker_environment(config)
    assert (env["OPENBLAS_NUM_THREADS"], env["MKL_NUM_THREADS"]) == ("4", "2")

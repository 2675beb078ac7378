"""The scripted SimplerEnv oracle (``--model oracle`` on the ``simpler-*`` suites).

* Real SimplerEnv (``simpler`` + ``slow``): three ``vlaeval run --model oracle`` invocations,
  started together so that their workers share the two cores: Google robot visual matching
  (close the top drawer, move near), WidowX (carrot on plate) and SimplerEnv-Instruct (place
  the lemon near the pear). Every episode must succeed, and the oracle log must say why.
* Fast (no simulator): the adapter's dispatch, the oracle's geometry and planning helpers,
  its controller arithmetic on hand-made privileged states, and the clear failure it reports
  for a task it has no plan for.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vlaeval.adapters.oracle import OraclePolicy
from vlaeval.harness.envs import BackendEnvMissing, backend_python
from vlaeval.harness.store import RunStore
from vlaeval.suites.simpler import oracle as so

REPO = Path(__file__).resolve().parent.parent

# (suite, tasks, episode indices): every episode listed must succeed
RUNS: dict[str, tuple[str, list[str], str]] = {
    "google": ("simpler-google-vm", ["vm/google/close_drawer/top/urdf-base", "vm/google/move_near/urdf-base"], "1"),
    "widowx": ("simpler-widowx", ["bridge/put_carrot_on_plate"], "0"),
    "instruct": ("simpler-instruct", ["instruct/free/place_lemon_near_pear_v0"], "0"),
}


def have_simpler() -> bool:
    try:
        backend_python("simpler")
        return True
    except BackendEnvMissing:
        return False


# -- real SimplerEnv ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def oracle_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Start the three runs at once (the Google one with two workers), wait, collect results."""
    if not have_simpler():
        pytest.skip("simpler env missing (scripts/setup builds it)")
    root = tmp_path_factory.mktemp("simpler_oracle")
    env = {**os.environ, "LP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    procs = {}
    t0 = time.monotonic()
    for name, (suite, tasks, episodes) in RUNS.items():
        out = root / name
        cmd = [sys.executable, "-m", "vlaeval.cli", "run", "--suite", suite, "--model", "oracle", "--out", str(out),
               "--episodes", episodes, "--workers", "2" if name == "google" else "1",
               "--model-arg", f"log={root / (name + '.jsonl')}"]
        for task in tasks:
            cmd += ["--tasks", task]
        procs[name] = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
    results: dict[str, Any] = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        store = RunStore(root / name) if (root / name / "results.sqlite").exists() else None
        try:
            episodes = store.episodes() if store else []
        finally:
            if store:
                store.close()
        log_path = root / f"{name}.jsonl"
        log = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.exists() else []
        results[name] = {"rc": proc.returncode, "stderr": stderr[-3000:], "episodes": episodes, "log": log}
    results["seconds"] = time.monotonic() - t0
    return results


def check_run(results: dict[str, Any], name: str, expected: int) -> None:
    run = results[name]
    assert run["rc"] == 0, run["stderr"]  # the end-of-run summary pools tasks with their own protocols
    episodes = run["episodes"]
    assert len(episodes) == expected, (len(episodes), run["stderr"])
    failed = [(e["task_id"], e["episode_index"], e["status"], e.get("error")) for e in episodes if not e["success"]]
    reasons = [(r["task_id"], r["phase"], r["failure"], r["log"][-3:]) for r in run["log"] if not r["success"]]
    assert not failed, (failed, reasons)
    assert len(run["log"]) == expected
    for record in run["log"]:
        assert record["plan_done"] and record["failure"] is None and record["phase"] in ("done", "placed")
    for e in episodes:
        print(f"{name}: {e['task_id']} #{e['episode_index']}: {e['status']} in {e['steps']} steps, "
              f"{e['duration_s']:.0f} s (all three runs: {results['seconds']:.0f} s)")


@pytest.mark.simpler
@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_oracle_solves_google_robot_drawer_and_move_near(oracle_runs: dict[str, Any]) -> None:
    check_run(oracle_runs, "google", 2)
    drawer = next(r for r in oracle_runs["google"]["log"] if "close_drawer" in r["task_id"])
    assert any("after push" in line for line in drawer["log"])


@pytest.mark.simpler
@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_oracle_solves_widowx_carrot_on_plate(oracle_runs: dict[str, Any]) -> None:
    check_run(oracle_runs, "widowx", 1)
    [episode] = oracle_runs["widowx"]["episodes"]
    assert episode["metrics"].get("grasp") is True  # the Bridge partial metric came along


@pytest.mark.simpler
@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_oracle_solves_an_instruct_place_near_task(oracle_runs: dict[str, Any]) -> None:
    check_run(oracle_runs, "instruct", 1)


# -- fast: the adapter ------------------------------------------------------------------------

def test_adapter_dispatches_simpler_suites_and_versions_the_fingerprint() -> None:
    policy = OraclePolicy()
    assert f"simpler={so.VERSION}" in policy.fingerprint()
    for suite in ("simpler-google-vm", "simpler-google-va", "simpler-widowx", "simpler-instruct"):
        state = policy.start_episode("x", {"suite": suite, "protocol": {"max_steps": 80}})
        assert isinstance(state, so.SimplerOracle) and state.max_steps == 80


# -- fast: geometry helpers ---------------------------------------------------------------------

def quat_about(axis: list[float], angle: float) -> list[float]:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    return [math.cos(angle / 2), *(a * math.sin(angle / 2))]


def test_rotation_helpers_round_trip() -> None:
    for axis, angle in (([0, 0, 1], 0.7), ([1, 2, 3], 2.5), ([0, 1, 0], math.pi - 1e-6), ([1, 0, 0], 1e-9)):
        R = so.quat_to_mat(quat_about(axis, angle))
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and math.isclose(np.linalg.det(R), 1.0, abs_tol=1e-9)
        v = so.rotvec(R)
        assert math.isclose(float(np.linalg.norm(v)), angle, abs_tol=1e-5)
        if angle > 1e-6:
            assert np.allclose(v / np.linalg.norm(v), np.asarray(axis) / np.linalg.norm(axis), atol=1e-4)
    assert np.allclose(so.clip_norm(np.array([3.0, 4.0, 0.0]), 1.0), [0.6, 0.8, 0.0])
    assert np.allclose(so.clip_norm(np.array([0.1, 0.0, 0.0]), 1.0), [0.1, 0.0, 0.0])


def test_gripper_frame_is_right_handed_with_the_requested_axes() -> None:
    R = so.frame([0.0, 0.0, -1.0], [1.0, 0.2, 0.3])  # the closing axis is made perpendicular to the approach
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and math.isclose(np.linalg.det(R), 1.0, abs_tol=1e-9)
    assert np.allclose(R[:, 2], [0, 0, -1]) and abs(R[2, 1]) < 1e-9 and R[0, 1] > 0.9
    assert np.allclose(so.closest_flip(np.array([1.0, 0, 0]), np.array([-0.5, 0.5, 0])), [-1, 0, 0])


def test_footprint_finds_the_narrow_side_of_a_turned_box() -> None:
    # a 10 x 4 x 3 cm box turned 30 degrees about z: narrow side along the turned local y
    R = so.quat_to_mat(quat_about([0, 0, 1], math.radians(30)))
    dirs, widths = so.footprint([-0.05, -0.02, -0.015], [0.05, 0.02, 0.015], R)
    assert np.allclose(widths, [0.04, 0.10])
    assert np.allclose(np.abs(dirs[0] @ [-math.sin(math.radians(30)), math.cos(math.radians(30)), 0]), 1.0)
    # a can lying on its side (its long local z axis horizontal): the up axis is dropped
    R = so.quat_to_mat(quat_about([1, 0, 0], math.pi / 2))
    dirs, widths = so.footprint([-0.033, -0.033, -0.06], [0.033, 0.033, 0.06], R)
    assert np.allclose(widths, [0.066, 0.12]) and np.allclose(np.abs(dirs[1]), [0, 1, 0], atol=1e-9)


def test_spot_near_keeps_its_distance_and_avoids_the_others() -> None:
    target = np.array([0.0, 0.0])
    spot = so.spot_near(target, 0.12, [np.array([0.2, 0.0])], prefer=np.array([0.0, 0.3]))
    assert math.isclose(float(np.linalg.norm(spot - target)), 0.12, abs_tol=1e-9)
    # 8 cm further from the other object than from the target (more is no better), then nearest
    # the preferred point
    assert float(np.linalg.norm(spot - [0.2, 0.0])) >= 0.12 + 0.08 - 1e-9 and spot[1] > 0.05
    crowded = so.spot_near(target, 0.12, [np.array([0.1, 0.0]), np.array([0.0, 0.1])], prefer=np.array([0.0, 0.3]))
    assert crowded[0] < -0.05 and crowded[1] < -0.05  # away from both
    # the target's origin 3 cm off its centre of mass (+x): the spot keeps clear of that side
    spot = so.spot_near(target, 0.1, [], prefer=np.array([0.5, 0.0]), target_origin=np.array([0.03, 0.0]))
    assert float(np.linalg.norm(spot - [0.03, 0.0])) + 0.01 - 0.1 >= 0.005 and spot[0] < 0.05
    # nothing else on the table: the point nearest the preferred one (the source's start)
    spot = so.spot_near(target, 0.1, [], prefer=np.array([0.0, 0.5]))
    assert np.allclose(spot, [0.0, 0.1], atol=1e-9)


# -- fast: the controller on hand-made states ------------------------------------------------------

def priv_state(family: str = "google", task: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    base_q = quat_about([0, 0, 1], math.pi)  # the robot faces -x, as in every SimplerEnv scene
    down = quat_about([1, 0, 0], math.pi)  # TCP z (Google approach axis) pointing down
    state = {
        "tcp": {"pos": [0.2, 0.0, 1.0], "quat_wxyz": down},
        "robot_base": {"pos": [0.5, 0.0, 0.08], "quat_wxyz": base_q},
        "arm_target": {"pos": [0.2, 0.0, 1.0], "quat_wxyz": down},
        "objects": {}, "geometry": {}, "gripper_closedness": 0.0, "gripper_qpos": [0.0, 0.0],
        "robot_family": family, "table_height": 0.87, "task": task or {},
    }
    state.update(extra)
    return state


def test_google_commands_are_deltas_of_the_measured_pose_in_base_axes() -> None:
    oracle = so.SimplerOracle("x", {})
    oracle.view = so.View(priv_state())
    action = oracle._command(np.array([0.1, 0.05, 1.0]), None, so.CLOSE, speed=1.0)
    # world (-0.1, +0.05, 0) in the base frame turned 180 degrees about z
    assert np.allclose(action[:3], [0.1, -0.05, 0.0]) and np.allclose(action[3:6], 0) and action[6] == so.CLOSE
    action = oracle._command(np.array([0.0, 0.0, 1.0]), None, so.OPEN, speed=0.05)
    assert math.isclose(float(np.linalg.norm(action[:3])), 0.05) and action[6] == so.OPEN


def test_widowx_commands_are_deltas_of_the_controller_target() -> None:
    oracle = so.SimplerOracle("x", {})
    # the arm lags 2 cm behind its target: the delta starts from the target, not the TCP
    oracle.view = so.View(priv_state("widowx", arm_target={"pos": [0.2, 0.0, 1.02], "quat_wxyz": [1, 0, 0, 0]}))
    action = oracle._command(np.array([0.2, 0.0, 1.0]), None, so.CLOSE, speed=1.0)
    assert np.allclose(action[:3], [0.0, 0.0, -0.02])


def test_yaw_goal_turns_about_the_vertical_only() -> None:
    oracle = so.SimplerOracle("x", {})
    oracle.view = so.View(priv_state())
    R = oracle.v.tcp_R  # fingers close along TCP y; here world -y (pointing down, turned about x)
    turned = so.Yaw([math.cos(0.3), math.sin(0.3), 0.0])  # close along a direction 0.3 rad off world x
    delta = oracle._rot_delta(turned, R)
    assert np.allclose(delta[:2], 0.0) and math.isclose(abs(delta[2]), math.pi / 2 - 0.3, abs_tol=1e-9)
    assert np.allclose(oracle._rot_delta(so.Yaw([0.0, 1.0, 0.0]), R), 0.0)  # +y and -y are the same grasp
    # leaning 20 degrees more than MAX_TILT: brought back to it, about a horizontal axis
    leaning = so.quat_to_mat(quat_about([0, 1, 0], so.MAX_TILT + math.radians(20))) @ R
    delta = oracle._rot_delta(so.Yaw(leaning[:, 1]), leaning)
    assert math.isclose(float(np.linalg.norm(delta)), math.radians(20), abs_tol=1e-6) and abs(delta[2]) < 1e-9


def test_grasp_plan_keeps_the_google_palm_above_tall_objects() -> None:
    oracle = so.SimplerOracle("x", {})
    bottle = {"min": [-0.33, 0.0, 0.87], "max": [-0.27, 0.06, 1.07], "local_min": [-0.03, -0.03, -0.1],
              "local_max": [0.03, 0.03, 0.1], "com": [-0.3, 0.03, 0.97]}
    oracle.view = so.View(priv_state(objects={"bottle": {"pos": [-0.3, 0.03, 0.97], "quat_wxyz": [1, 0, 0, 0]}},
                                     geometry={"bottle": bottle}))
    point, closing, height = oracle.grasp_plan("bottle")
    assert math.isclose(point[2], 1.07 - so.GOOGLE_PALM_CLEAR) and math.isclose(height, 0.2)
    objects = {"bottle": {"pos": [-0.3, 0.03, 0.97], "quat_wxyz": [1, 0, 0, 0]}}
    oracle.view = so.View(priv_state("widowx", objects=objects, geometry={"bottle": bottle}))
    with pytest.raises(so.Failed, match="wider than the open gripper"):  # 6 cm: the WidowX opens 5.2 cm
        oracle.grasp_plan("bottle")
    thin = {**bottle, "local_min": [-0.02, -0.02, -0.1], "local_max": [0.02, 0.02, 0.1]}
    oracle.view = so.View(priv_state("widowx", objects=objects, geometry={"bottle": thin}))
    point, _, _ = oracle.grasp_plan("bottle")  # WidowX: fingertips just above the bottom
    assert 0.87 + so.WIDOWX_TIP < point[2] < 0.87 + so.WIDOWX_TIP + 0.02


def test_unknown_task_fails_clearly_and_holds_still() -> None:
    policy = OraclePolicy()
    state = policy.start_episode("do a dance", {"suite": "simpler-instruct", "protocol": {}})
    priv = priv_state(task={"kind": "dance", "env_class": "DanceEnv"})
    for _ in range(3):
        action = policy.act(state, {"privileged": priv})
        assert np.allclose(action[:6], 0.0)
    assert state.phase == "failed" and not state.done
    assert "no plan for task kind 'dance'" in state.failure and "DanceEnv" in state.failure
    # the backend could not build the description: its error is the reason
    state = policy.start_episode("x", {"suite": "simpler-google-vm", "protocol": {}})
    policy.act(state, {"privileged": priv_state(oracle_state_error="KeyError: 'cabinet'")})
    assert state.failure == "the backend could not describe the task: KeyError: 'cabinet'"


def test_drawer_helpers_read_the_cabinet_boxes() -> None:
    panel = {"center": [0.21, 0.0, 0.685], "half": [0.0075, 0.3075, 0.07]}
    board = {"center": [-0.095, 0.0, 0.625], "half": [0.275, 0.2575, 0.01]}
    wall = {"center": [0.19, 0.0, 0.665], "half": [0.01, 0.2575, 0.05]}
    links = {"top_drawer": {"pos": [-0.095, 0, 0.685], "boxes": [board, panel, wall]},
             "body": {"pos": [-0.295, 0, 0.017], "boxes": [{"center": [-0.295, 0.0, 0.872],
                                                             "half": [0.315, 0.3075, 0.01]}]}}
    view = so.View(priv_state(cabinet={"qpos": [0.2, 0, 0], "target_joint": 0}, cabinet_links=links))
    center, half = view.drawer_panel("top")
    assert np.allclose(center, panel["center"]) and math.isclose(view.drawer_qpos(), 0.2)
    assert math.isclose(view.drawer_floor("top"), 0.635) and math.isclose(view.cabinet_top(), 0.882)
    assert math.isclose(view.cabinet_front(), 0.02)
    with pytest.raises(so.Failed, match="middle drawer"):
        view.drawer_panel("middle")


def test_the_plan_survives_a_subtask_change(tmp_path: Path) -> None:
    """The harness restarts the policy when the instruction changes (apple in drawer, step 100);
    the oracle hands its state back so the plan goes on, and logs the episode once."""
    log = tmp_path / "oracle.jsonl"
    policy = OraclePolicy(log=str(log))
    info = {"suite": "simpler-google-vm", "task_id": "vm/google/place_apple_in_closed_top_drawer/urdf-base",
            "task_index": 40, "episode_index": 3, "seed": 0, "protocol": {}}
    state = policy.start_episode("open top drawer", info)
    other = policy.start_episode("open top drawer", {**info, "episode_index": 4})
    policy.end_episode(state, {"status": "subtask_changed", "success": False, "steps": 100})
    again = policy.start_episode("place apple into top drawer", {**info, "subtask": 1})
    assert again is state and "subtask 1" in state.log[-1]
    assert policy.start_episode("x", {**info, "episode_index": 4, "subtask": 1}) is not other  # nothing kept
    assert not log.exists()
    policy.end_episode(state, {"status": "success", "success": True, "steps": 200})
    [record] = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["episode_index"] == 3 and record["success"] is True

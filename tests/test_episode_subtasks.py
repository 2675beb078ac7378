"""The episode loop's terminate channel and mid-episode instruction changes (toy backend, in process)."""

from __future__ import annotations

import pytest
from toy_suite import ToyBackend, ToySuite, TerminatingPolicy

from vlaeval.harness.episode import run_episode
from vlaeval.harness.policy import LocalPolicyHandle
from vlaeval.harness.suite import Selection


def episode(**protocol):
    [first] = ToySuite().episodes(Selection(seeds=[0], episodes_per_task=1, tasks=["0"], protocol_overrides=protocol))
    return first


def test_terminate_moves_on_to_the_next_subtask_and_restarts_the_policy():
    policy = TerminatingPolicy()
    result = run_episode(ToyBackend(), LocalPolicyHandle(policy), episode(subtasks=2))
    assert result.status == "success", result.error
    assert [instruction for instruction, _ in policy.starts] == ["reach goal 0", "return to the start"]
    assert policy.starts[1][1]["subtask"] == 1 and policy.starts[1][1]["task_id"] == "reach_0"
    assert policy.ends == ["subtask_changed", "success"]


def test_a_forced_subtask_change_restarts_the_policy_on_the_new_instruction():
    policy = TerminatingPolicy()
    result = run_episode(ToyBackend(), LocalPolicyHandle(policy), episode(subtasks=2, force_advance_step=2))
    assert result.status == "success"
    assert [instruction for instruction, _ in policy.starts] == ["reach goal 0", "return to the start"]
    assert policy.ends == ["subtask_changed", "success"]


def test_terminate_on_the_last_subtask_ends_the_episode_with_that_steps_outcome():
    policy = TerminatingPolicy(terminate_at=2)
    result = run_episode(ToyBackend(), LocalPolicyHandle(policy), episode())
    assert (result.status, result.steps) == ("failure", 2)  # stopped short of the goal
    assert policy.ends == ["failure"]


def test_a_policy_that_declares_terminate_must_send_the_flag():
    class Forgetful(TerminatingPolicy):
        def act(self, state, obs):
            return super().act(state, obs)[:7]

    result = run_episode(ToyBackend(), LocalPolicyHandle(Forgetful()), episode())
    assert result.status == "error" and "expected (8,) or (H, 8)" in result.error


@pytest.mark.parametrize("protocol", [{}, {"subtasks": 2}])
def test_without_the_flag_nothing_changes(protocol):
    from toy_suite import GreedyPolicy

    result = run_episode(ToyBackend(), LocalPolicyHandle(GreedyPolicy()), episode(**protocol))
    # one subtask: solved; two subtasks and no terminate: the first goal never counts
    assert result.status == ("success" if not protocol else "failure")


def test_the_flag_crosses_the_wire_to_a_sim_worker(tmp_path):
    from vlaeval.harness.config import load_config
    from vlaeval.harness.run import run_evaluation
    from vlaeval.harness.store import read_episodes

    config = load_config(None, {"suite": "toy", "model": "toy-terminating", "out": str(tmp_path / "run"),
                                "episodes_per_task": 1, "protocol": {"subtasks": 2}})
    summary = run_evaluation(config)  # the policy serves from the driver, the loop runs in a worker
    assert summary.counts == {"success": 3}
    assert all(e["steps"] > 5 for e in read_episodes(tmp_path / "run"))  # both subtasks were walked

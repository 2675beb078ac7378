"""Dataset (multimodal) suites through the same planner, store and resume as robot suites."""

from __future__ import annotations

import pytest

from vlaeval.harness.config import load_config
from vlaeval.harness.model_source import ModelError
from vlaeval.harness.run import run_evaluation
from vlaeval.harness.store import read_episodes


def run(tmp_path, **overrides):
    config = load_config(None, {"suite": "toy-qa", "model": "toy-pixel-reader", "out": str(tmp_path / "run"),
                                **overrides})
    return run_evaluation(config)


def episodes(tmp_path):
    return read_episodes(tmp_path / "run")


def test_samples_are_answered_scored_stored_and_resumed(tmp_path):
    summary = run(tmp_path)
    assert summary.planned == 15
    assert summary.counts == {"success": 10, "failure": 5}  # every green item is answered "lime"
    rows = episodes(tmp_path)
    wrong = [r for r in rows if not r["success"]]
    assert {r["outputs"]["references"][0] for r in wrong} == {"green"}
    assert all(r["outputs"]["answer"] == "lime" and r["metrics"]["exact_match"] == 0.0 for r in wrong)
    again = run(tmp_path)
    assert again.skipped == 15 and again.ran == 0


def test_a_failing_model_batch_is_recorded_as_errors(tmp_path):
    summary = run(tmp_path, model_args={"fail": True}, limit=6)
    assert summary.counts == {"error": 6}
    assert all("model exploded" in r["error"] for r in episodes(tmp_path))


def test_robot_policies_cannot_answer_and_text_models_cannot_act(tmp_path):
    with pytest.raises(ModelError, match="needs a text model"):
        run(tmp_path, model="random")
    with pytest.raises(ModelError, match="cannot act in a robot suite"):
        run(tmp_path, suite="toy")

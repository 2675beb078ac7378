"""Action validation, gripper conventions and chunk execution."""

from __future__ import annotations

import numpy as np
import pytest

from vlaeval.harness.chunking import AdaptiveEnsembler, ChunkExecutor
from vlaeval.harness.policy import ActionError, PolicySpec, as_action_chunk, convert_gripper


def test_action_chunks_are_validated():
    assert as_action_chunk(np.zeros(7), 7).shape == (1, 7)
    assert as_action_chunk(np.zeros((8, 7)), 7).shape == (8, 7)
    for bad, message in [
        (np.zeros(6), "shape"),
        (np.zeros((2, 3, 7)), "shape"),
        (np.zeros((0, 7)), "shape"),
        ([np.nan] * 7, "NaN"),
        ([np.inf] * 7, "NaN or infinite"),
        (["a"] * 7, "not numeric"),
    ]:
        with pytest.raises(ActionError, match=message):
            as_action_chunk(bad, 7)


def test_gripper_conventions_are_converted():
    chunk = np.zeros((3, 7))
    chunk[:, -1] = [0.0, 0.5, 1.0]  # open=1 policy in [0, 1]
    openpos = PolicySpec(gripper="open_positive", gripper_range=(0.0, 1.0))
    out = convert_gripper(chunk, openpos, "close_positive", (-1.0, 1.0))
    np.testing.assert_allclose(out[:, -1], [1.0, 0.0, -1.0])  # closed, half, open
    same = convert_gripper(chunk, PolicySpec(gripper_range=(0.0, 1.0)), "close_positive", (0.0, 1.0))
    np.testing.assert_array_equal(same, chunk)
    np.testing.assert_array_equal(out[:, :-1], chunk[:, :-1])


def test_replan_steps_execute_a_prefix_of_each_chunk():
    executor = ChunkExecutor({"replan_steps": 2})
    chunk = np.arange(4 * 7, dtype=float).reshape(4, 7)
    assert executor.needs_query()
    executor.push(chunk)
    np.testing.assert_array_equal(executor.pop(), chunk[0])
    assert not executor.needs_query()
    np.testing.assert_array_equal(executor.pop(), chunk[1])
    assert executor.needs_query()
    whole = ChunkExecutor({"replan_steps": 0})
    whole.push(chunk)
    assert [whole.pop()[0] for _ in range(4)] == [0, 7, 14, 21]
    with pytest.raises(ValueError, match="unknown ensemble mode"):
        ChunkExecutor({"ensemble": "mean"})


def test_adaptive_ensemble_matches_the_published_formula():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(size=(8, 7)) for _ in range(3)]
    ens = AdaptiveEnsembler(horizon=2, alpha=0.1)
    outputs = [ens(c) for c in chunks]
    np.testing.assert_allclose(outputs[0], chunks[0][0])
    # at step 2 the candidates are chunk2[0] (newest) and chunk1[1] (one step old)
    a0, a1 = chunks[2][0], chunks[1][1]
    cos = np.array([1.0, a1 @ a0 / (np.linalg.norm(a1) * np.linalg.norm(a0))])
    w = np.exp(0.1 * cos) / np.exp(0.1 * cos).sum()
    np.testing.assert_allclose(outputs[2], w[0] * a0 + w[1] * a1, rtol=1e-6)
    executor = ChunkExecutor({"ensemble": "adaptive", "ensemble_horizon": 2})
    executor.push(chunks[0])
    assert executor.needs_query()  # ensembling queries every step

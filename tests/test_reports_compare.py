"""`vlaeval compare`: a real regression is caught, null differences are not flagged, bad input exits 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from vlaeval.cli import main
from vlaeval.reports.compare import WORSE, compare_episodes, compare_runs
from vlaeval.reports.synthetic import Outcome, episode_frame, simulate, write_run

TASKS = {"libero-spatial": {f"task_{i}": 0.0 for i in range(5)}}


def _rates(p: float) -> dict[str, dict[str, float]]:
    return {suite: {task: p for task in tasks} for suite, tasks in TASKS.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    rng = np.random.default_rng(7)
    base = simulate(_rates(0.8), seeds=[0, 1], episodes_per_task=40, rng=rng)
    worse = simulate(_rates(0.6), seeds=[0, 1], episodes_per_task=40, rng=rng)
    write_run(root / "base", base, model="base")
    write_run(root / "worse", worse, model="worse")
    write_run(root / "same", base, model="same")  # identical outcomes, another model
    write_run(root / "other-protocol", worse, model="worse", protocol={"max_steps": 50})
    write_run(root / "other-version", worse, model="worse", suite_versions={"libero-spatial": "2"})
    write_run(root / "other-suite", simulate({"toy": {"a": 0.5}}, [0], 3, rng), model="toy")
    (root / "not-a-run").mkdir()
    return root


def test_simulated_regression_is_detected(runs):
    result = compare_runs(runs / "base", runs / "worse")
    overall = result.table.set_index("scope").loc["overall"]
    assert overall["delta"] == pytest.approx(overall["new_rate"] - overall["base_rate"]) and overall["delta"] < -0.1
    assert overall["verdict"] == WORSE and result.exit_code == 1
    assert result.pairs == 400 and result.unmatched_base == result.unmatched_new == 0


def test_min_effect_larger_than_the_drop_passes(runs):
    assert compare_runs(runs / "base", runs / "worse", min_effect=0.5).exit_code == 0


def test_null_differences_are_not_flagged_beyond_the_nominal_rate():
    """200 simulated null pairs: gate flags (and any Holm-significant row) stay near alpha or below."""
    rng = np.random.default_rng(12345)
    alpha, sims, flagged, any_significant = 0.05, 200, 0, 0
    rates = {"libero-spatial": {f"task_{i}": p for i, p in enumerate((0.3, 0.5, 0.6, 0.7, 0.9))}}
    for _ in range(sims):
        base = episode_frame(simulate(rates, [0, 1], 20, rng), model="base")
        new = episode_frame(simulate(rates, [0, 1], 20, rng), model="new")
        result = compare_episodes(base, new, alpha=alpha, min_effect=0.0)
        flagged += result.regression
        any_significant += bool((result.table["p_holm"] <= alpha).any())
    assert flagged / sims <= alpha + 0.02
    assert any_significant / sims <= alpha + 0.03


def test_error_pairs_are_dropped_and_counted():
    base = [Outcome("s", "t", i, 0, True) for i in range(10)]
    new = [Outcome("s", "t", i, 0, i > 0, status="error" if i == 0 else "") for i in range(10)]
    result = compare_episodes(episode_frame(base, "a"), episode_frame(new, "b"))
    assert result.error_pairs == 1 and result.pairs == 9 and result.exit_code == 0


def test_metrics_get_a_paired_bootstrap_and_do_not_gate():
    base = [Outcome("mm", "q", i, 0, True, metrics={"bleu": 0.5 + 0.01 * (i % 5)}) for i in range(40)]
    new = [Outcome("mm", "q", i, 0, True, metrics={"bleu": 0.2 + 0.01 * (i % 5)}) for i in range(40)]
    result = compare_episodes(episode_frame(base, "a"), episode_frame(new, "b"))
    [row] = result.metrics.to_dict(orient="records")
    assert row["delta"] == pytest.approx(-0.3) and row["p_holm"] < 0.01 and result.exit_code == 0


def _invoke(*args: str):
    return CliRunner().invoke(main, ["compare", *args])


def test_cli_exit_codes(runs):
    assert _invoke(str(runs / "base"), str(runs / "same")).exit_code == 0
    worse = _invoke(str(runs / "base"), str(runs / "worse"))
    assert worse.exit_code == 1 and "REGRESSION" in worse.stdout and "WORSE" in worse.stdout
    assert _invoke(str(runs / "base"), str(runs / "worse"), "--format", "json").exit_code == 1


@pytest.mark.parametrize(
    "new, message",
    [
        ("other-protocol", "protocol parameters differ for libero-spatial: max_steps 100 (BASE) vs 50 (NEW)"),
        ("other-version", "suite versions differ for libero-spatial"),
        ("other-suite", "no matched episodes"),
        ("not-a-run", "is not a run directory"),
        ("missing", "is not a run directory"),
    ],
)
def test_cli_unusable_input_exits_2_with_one_line(runs, new, message):
    result = _invoke(str(runs / "base"), str(runs / new))
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_bad_alpha_and_real_process_errors_are_one_line(runs):
    assert _invoke(str(runs / "base"), str(runs / "worse"), "--alpha", "2").exit_code == 2
    proc = subprocess.run([sys.executable, "-m", "vlaeval.cli", "compare", str(runs / "base"), str(runs / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

"""`vlaeval report / leaderboard / power` from the command line, and the example CI workflow."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from vlaeval.cli import main
from vlaeval.reports.synthetic import simulate, write_run

WORKFLOW = Path(__file__).parent.parent / "examples" / "ci" / "regression.yml"


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    rates = {"libero-spatial": {"task_0": 0.5, "task_1": 0.7}}
    return write_run(root / "run", simulate(rates, [0, 1], 3, np.random.default_rng(0)))


def test_help_lists_the_report_commands():
    output = _invoke("--help").output
    for word in ("report", "leaderboard", "compare", "power"):
        assert word in output
    assert "exit 1" in _invoke("compare", "--help").output.lower()


def test_report_and_leaderboard_write_every_format(run_dir, tmp_path):
    for command in ("report", "leaderboard"):
        for fmt in ("md", "latex", "html", "csv", "json"):
            out = tmp_path / f"{command}.{fmt}"
            result = _invoke(command, str(run_dir), "--format", fmt, "--out", str(out))
            assert result.exit_code == 0, result.output
            assert out.stat().st_size > 200
    stdout = _invoke("report", str(run_dir)).stdout
    assert "## Reproducibility" in stdout and "[" in stdout  # Wilson brackets survive (no rich markup)


@pytest.mark.parametrize("command", ["report", "leaderboard"])
def test_bad_run_directory_is_a_one_line_error(tmp_path, command):
    result = _invoke(command, str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "is not a run directory" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_power_prints_episodes_per_model():
    independent = _invoke("power", "--effect", "0.05", "--baseline", "0.6")
    assert independent.exit_code == 0 and independent.stdout.startswith("1534 episodes per model")
    paired = _invoke("power", "--effect", "0.05", "--baseline", "0.6", "--paired")
    assert paired.exit_code == 0 and "McNemar" in paired.stdout
    bad = _invoke("power", "--effect", "0", "--baseline", "0.6")
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_example_workflow_runs_the_slice_and_gates_on_compare():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["regression"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert "vlaeval run --suite \"$SUITE\" --model \"$CKPT\"" in scripts
    assert "--episodes-per-task 2 --seeds 0,1" in scripts and "--out runs/new" in scripts
    assert "vlaeval compare runs/baseline runs/new" in scripts
    assert any("cache/restore" in step.get("uses", "") for step in steps)
    commands = set(re.findall(r"\.venv/bin/vlaeval (\w+)", scripts))
    assert {"run", "compare", "report"} <= commands <= set(main.commands)

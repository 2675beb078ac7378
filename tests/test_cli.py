"""The command line as a user meets it: help, listings, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from vlaeval.cli import main
from vlaeval.harness.doctor import collect


def vlaeval(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vlaeval.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_help_teaches_with_examples():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for word in ("run", "serve", "doctor", "export", "list", "Examples:"):
        assert word in result.output
    run_help = CliRunner().invoke(main, ["run", "--help"])
    assert "--episodes-per-task" in run_help.output and "resume" in run_help.output


def test_list_suites_tasks_and_adapters():
    runner = CliRunner()
    assert "libero-spatial" in runner.invoke(main, ["list", "suites"]).output
    tasks = runner.invoke(main, ["list", "tasks", "--suite", "libero-spatial"], terminal_width=300).output
    assert "pick up the black bowl" in tasks
    assert "random" in runner.invoke(main, ["list", "adapters"]).output


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--suite", "libero-spatail", "--model", "random"], "did you mean 'libero-spatial'"),
        (["run", "--suite", "toy", "--model", "randm"], "unknown adapter 'randm'"),
        (["run", "--suite", "toy", "--model", "missing/ckpt.pt"], "checkpoint not found"),
        (["run", "--suite", "toy", "--model", "random", "--protocol", "nope=1"], "unknown protocol parameter"),
        (["run", "--suite", "toy", "--model", "random", "--config", "/nonexistent.yaml"], "config file not found"),
        (["run", "--suite", "toy", "--model", "random", "--seeds", "x"], "list of integers"),
        (["export", "/nonexistent-run", "--to", "x.csv"], "not a run directory"),
        (["run", "--suite", "toy", "--model", "ws://127.0.0.1:9"], "cannot reach policy server at ws://127.0.0.1:9"),
    ],
)
def test_bad_input_gets_a_one_line_error(args, message, tmp_path):
    result = vlaeval(*args, cwd=str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written for a refused run


def test_doctor_reports_backends_and_renderers():
    result = CliRunner().invoke(main, ["doctor"], terminal_width=200)
    assert result.exit_code == 0
    for word in ("vlaeval", "backend env: libero", "EGL", "GPU", "SimplerEnv renderer", "SimplerEnv assets"):
        assert word in result.output
    rows = {row.name: row for row in collect()}
    if rows["backend env: simpler"].status == "ok":  # the renderer is named, with its layer on a CPU machine
        renderer = rows["SimplerEnv renderer"]
        assert renderer.status == "ok", renderer.details
        assert "Vulkan layer VK_LAYER_VLAEVAL" in renderer.details or renderer.details.startswith("GPU")
    assets = rows["SimplerEnv assets"]
    if assets.status in ("ok", "incomplete"):  # every file hashed; what the pack lacks is said, with its effect
        assert "sha256 verified" in assets.details
        assert (assets.status == "incomplete") == ("approximate" in assets.details)


def test_policy_and_suite_action_widths_are_checked_before_anything_runs(tmp_path):
    result = vlaeval("run", "--suite", "toy", "--model", "random", "--model-arg", "action_dim=8",
                     "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "declares 8-d actions but toy executes 7-d actions" in result.stderr

"""Golden files for `vlaeval report` and `vlaeval leaderboard` (Markdown, LaTeX, CSV).

The stores are synthetic and seeded, and their run metadata is fixed, so every byte is
deterministic. Regenerate after an intended change with
``VLAEVAL_UPDATE_GOLDEN=1 python -m pytest tests/test_reports_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vlaeval.cli import main
from vlaeval.reports.synthetic import Outcome, simulate, write_run

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("VLAEVAL_UPDATE_GOLDEN") == "1"
LIBERO = {
    "libero-spatial": {"pick_up_the_black_bowl": 0.9, "pick_up_the_ramekin": 0.8, "place_bowl_on_plate": 0.7},
    "libero-object": {"pick_up_the_ketchup": 0.95, "pick_up_the_milk": 0.85, "pick_up_the_salad_dressing": 0.8},
    "libero-goal": {"open_the_middle_drawer": 0.75, "put_the_bowl_on_the_stove": 0.9, "turn_on_the_stove": 0.95},
    "libero-10": {"LIVING_ROOM_SCENE2_put_both": 0.5, "KITCHEN_SCENE3_turn_on_stove": 0.7, "STUDY_SCENE1_pick_book": 0.6},
    "simpler-instruct": {"FreeGraspSingleBananaInScene-v0": 0.5, "FreeOpenTopDrawerCustomInScene-v0": 0.3,
                         "AltGraspSpongeDistractorInSceneEnv-v0": 0.2, "AltPutOrangeOnPlateInScene-v0": 0.1},
}


def _model_outcomes(seed: int, shift: float) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    rates = {s: {t: min(1.0, max(0.0, p + shift)) for t, p in tasks.items()} for s, tasks in LIBERO.items()}
    outcomes = simulate(rates, seeds=[0, 1, 2], episodes_per_task=4, rng=rng)
    outcomes += [Outcome("vla-it", f"caption_{i % 2}", i, 0, bool(rng.random() < 0.5), task_index=i % 2,
                         metrics={"bleu_1": round(float(rng.random()), 4), "cider": round(float(2 * rng.random()), 4)})
                 for i in range(6)]
    outcomes.append(Outcome("libero-10", "STUDY_SCENE1_pick_book", 99, 0, False, status="error", task_index=2))
    outcomes.append(Outcome("libero-spatial", "pick_up_the_black_bowl", 98, 0, True, video="videos/ep98.mp4"))
    return outcomes


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("golden")
    write_run(root / "run-a", _model_outcomes(1, 0.0), model="model-a")
    write_run(root / "run-b", _model_outcomes(2, -0.15), model="model-b")
    return root


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with VLAEVAL_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("fmt, suffix", [("md", "md"), ("latex", "tex"), ("csv", "csv")])
def test_report_golden(runs, monkeypatch, fmt, suffix):
    monkeypatch.chdir(runs)
    _check(f"report.{suffix}", _cli("report", "run-a", "--format", fmt))


@pytest.mark.parametrize("fmt, suffix", [("md", "md"), ("latex", "tex"), ("csv", "csv")])
def test_leaderboard_golden(runs, monkeypatch, fmt, suffix):
    monkeypatch.chdir(runs)
    _check(f"leaderboard.{suffix}", _cli("leaderboard", "run-a", "run-b", "--reference", "published", "--format", fmt))


def test_report_json_and_out_file(runs, monkeypatch):
    monkeypatch.chdir(runs)
    _cli("report", "run-a", "run-b", "--format", "json", "--out", "out/report.json")
    data = json.loads((runs / "out" / "report.json").read_text())
    assert {"definitions", "summary", "metrics", "reproducibility"} <= set(data)
    overall = [r for r in data["summary"] if r["level"] == "overall"]
    assert len(overall) == 2 and all(r["errors"] == 1 for r in overall)
    assert data["reproducibility"]["runs"][0]["metadata"]["git"]["commit"].startswith("0123456789")


def test_leaderboard_ranks_and_marks_reported_rows(runs, monkeypatch):
    monkeypatch.chdir(runs)
    board = json.loads(_cli("leaderboard", "run-a", "run-b", "--reference", "published", "--format", "json"))
    measured = [r for r in board["rows"] if r["kind"] == "measured"]
    assert [r["model"] for r in measured] == ["model-a", "model-b"] and measured[0]["rank"] == "1"
    reported = {r["model"]: r for r in board["rows"] if r["kind"] == "reported"}
    assert reported["OpenVLA-7B"]["LIBERO"] == pytest.approx(0.765)
    assert reported["InstructVLA-Generalist"]["simpler-instruct/free"] == pytest.approx(0.436)
    assert "ivla-libero" in board["citations"]

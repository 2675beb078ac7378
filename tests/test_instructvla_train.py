"""Stage-1 / stage-2 training entry points on tiny synthetic LeRobot datasets (v2.1 and v3.0 layouts)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402

from vlaeval.models.instructvla.checkpoint import load_checkpoint  # noqa: E402
from vlaeval.models.instructvla.cli import train as train_group  # noqa: E402
from vlaeval.models.instructvla.data import LeRobotFrames, PromptSampler, VLAITAnnotations  # noqa: E402
from vlaeval.models.instructvla.synthetic import write_annotations, write_chat, write_lerobot  # noqa: E402
from vlaeval.models.instructvla.train import TrainArgs, train  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
NAME = "libero_spatial_no_noops"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lerobot")
    return {
        "v2": write_lerobot(root / "v2", version="v2.1"),
        "v3": write_lerobot(root / "v3", version="v3.0"),
        "annotations": write_annotations(root / "vla_it.json"),
        "chat": write_chat(root / "chat"),
    }


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_both_layouts_read_the_same_frames(data: dict[str, Path]) -> None:
    v2 = LeRobotFrames(data["v2"], chunk_size=4, num_images=2, gripper="libero")
    v3 = LeRobotFrames(data["v3"], chunk_size=4, num_images=2, gripper="libero")
    assert len(v2) == len(v3) == 12 and v2.num_episodes == 2
    assert np.array_equal(v2.actions, v3.actions)
    assert set(np.unique(v2.actions[:, -1])) <= {0.0, 1.0}  # -1 open -> 1, +1 close -> 0
    chunk, valid = v2.chunk(4)  # last two frames of episode 0
    assert valid.tolist() == [True, True, False, False] and np.array_equal(chunk[2], v2.actions[5])
    assert [im.shape for im in v3.images(7)] == [(32, 32, 3), (32, 32, 3)]
    assert np.array_equal(v2.images(7)[1], v3.images(7)[1])
    assert v2.instruction(7) == "Open the drawer"


def test_prompt_sampler_covers_upstream_prompt_types(data: dict[str, Path]) -> None:
    annotations = VLAITAnnotations.from_file(data["annotations"])
    primitive, alt = annotations.lookup("1", 5)
    assert primitive == "stop" and alt is not None
    sampler = PromptSampler("stage2", "sys", num_meta=4)
    rng = random.Random(0)
    kinds = set()
    for _ in range(200):
        turns = sampler("open the drawer", primitive, alt, rng)
        text = turns[1].content
        kinds.add("qa" if len(turns) == 5 else "reason" if "First answer" in text else "primitive" if "primitive" in text else "atomic")
        assert turns[-1].content.endswith("<new_token_3>")
    assert kinds == {"qa", "reason", "primitive", "atomic"}
    stage1 = PromptSampler("stage1", "sys", num_meta=4)
    assert all(len(stage1("x", None, alt, rng)) == 3 for _ in range(50))


def test_stage1_trains_checkpoints_and_resumes(data: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "stage1"
    args = dict(stage="stage1", data=data["v2"], out=run, gripper="libero", dataset_name=NAME, logger="jsonl")
    first = train(TrainArgs(steps=2, **args))
    assert first.name == "step-000002" and (first / "train_state.pt").is_file()
    model, report = load_checkpoint(first)
    assert report.ok and model.stage == "stage1" and NAME in model.norm_stats
    resumed = train(TrainArgs(steps=3, **args))
    assert resumed.name == "step-000003"
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in rows)
    assert {"fm_loss", "lm_loss", "grad_norm"} <= set(rows[0])
    state = torch.load(resumed / "train_state.pt", weights_only=False)
    assert state["step"] == 3 and state["streams"]["vla"]["position"] == 3


def test_stage2_from_stage1_with_annotations_and_chat(data: dict[str, Path], tmp_path: Path) -> None:
    stage1 = train(TrainArgs(stage="stage1", data=data["v2"], out=tmp_path / "s1", steps=1, gripper="libero", dataset_name=NAME, logger="jsonl"))
    run = tmp_path / "s2"
    args = dict(stage="stage2", data=data["v3"], out=run, init=stage1, annotations=data["annotations"], mm_data=data["chat"],
                mm_batch_size=2, gripper="libero", dataset_name=NAME, image_aug=True, logger="jsonl")
    last = train(TrainArgs(steps=2, **args))
    model, report = load_checkpoint(last)
    assert report.ok and model.stage == "stage2"
    before, _ = load_checkpoint(stage1)
    expert_before = before.action_model.state_dict()
    assert all(torch.equal(v, expert_before[k]) for k, v in model.action_model.state_dict().items())  # frozen expert
    assert train(TrainArgs(steps=3, **args)).name == "step-000003"
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3] and all("mm_loss" in r for r in rows)


def test_cli_group(data: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    assert set(train_group.commands) == {"stage1", "stage2"}
    out = tmp_path / "cli"
    result = runner.invoke(
        train_group,
        ["stage1", "--data", str(data["v3"]), "--config", "tiny", "--out", str(out), "--steps", "2", "--batch-size", "2",
         "--gripper", "libero", "--chunk-size", "4", "--num-images", "1", "--use-state", "--logger", "jsonl"],
    )
    assert result.exit_code == 0, result.output
    assert "checkpoint:" in result.output
    model, _ = load_checkpoint(out / "checkpoints" / "step-000002")
    assert model.cfg.chunk_size == 4 and model.cfg.num_images == 1 and "v3" in model.norm_stats
    assert model.cfg.use_state and "proprio" in model.norm_stats["v3"]  # state statistics travel with it
    help_text = runner.invoke(train_group, ["stage2", "--help"]).output
    assert "--annotations" in help_text and "--init" in help_text


def test_gradient_checkpointing_flag(data: dict[str, Path], tmp_path: Path) -> None:
    args = dict(data=data["v2"], steps=1, gripper="libero", dataset_name=NAME, logger="jsonl", gradient_checkpointing=True)
    assert train(TrainArgs(stage="stage1", out=tmp_path / "gc", **args)).name == "step-000001"
    with pytest.raises(ValueError, match="--init"):
        train(TrainArgs(stage="stage2", out=tmp_path / "gc2", **{**args, "gradient_checkpointing": False}))
    with pytest.raises(ValueError, match="gradient checkpointing is not supported in stage 2"):
        train(TrainArgs(stage="stage2", out=tmp_path / "gc3", train_expert=True, **args))

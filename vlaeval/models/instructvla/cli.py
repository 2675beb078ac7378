"""``train`` click group: ``train stage1`` / ``train stage2`` (attach to the main CLI with ``add_command``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from vlaeval.models.instructvla.config import PRESETS

PathArg = click.Path(path_type=Path)


def _common(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="LeRobot dataset root (meta/info.json)."),
        click.option("--config", "config", default="tiny", show_default=True, type=click.Choice(sorted(PRESETS)), help="Model preset for a fresh model."),
        click.option("--out", required=True, type=PathArg, help="Run directory (checkpoints/, metrics.jsonl)."),
        click.option("--steps", required=True, type=int, help="Total optimizer iterations (resume continues up to this)."),
        click.option("--batch-size", default=2, show_default=True, type=int, help="Per-device VLA batch size."),
        click.option("--lr", default=5e-5, show_default=True, type=float),
        click.option("--weight-decay", default=0.0, show_default=True, type=float),
        click.option("--grad-clip", default=1.0, show_default=True, type=float),
        click.option("--save-every", default=0, show_default=True, type=int, help="Checkpoint period in steps (0: only at the end)."),
        click.option("--log-every", default=1, show_default=True, type=int),
        click.option("--seed", default=42, show_default=True, type=int),
        click.option("--num-workers", default=0, show_default=True, type=int),
        click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=False, show_default=True),
        click.option("--init", type=click.Path(exists=True, path_type=Path), help="Start from this checkpoint (ours)."),
        click.option("--eagle-dir", type=click.Path(exists=True, path_type=Path), help="Base Eagle2 directory for a fresh VLM."),
        click.option("--dino-dir", type=click.Path(exists=True, path_type=Path), help="HF DINOv2-with-registers directory."),
        click.option("--image-aug/--no-image-aug", default=False, show_default=True),
        click.option("--gripper", default="none", show_default=True, type=click.Choice(["none", "libero"]), help="Gripper action transform."),
        click.option("--dataset-name", help="Statistics key (default: dataset folder name, e.g. libero_spatial_no_noops)."),
        click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUT/checkpoints/latest."),
        click.option("--logger", default="auto", show_default=True, type=click.Choice(["auto", "jsonl", "tensorboard", "wandb"])),
        click.option("--chunk-size", type=int, help="Override the preset's action chunk length."),
        click.option("--num-images", type=int, help="Override the preset's images per step."),
        click.option("--use-state/--no-use-state", default=None,
                     help="Condition the action expert on the 8-d robot state (the preset's choice if omitted)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _run(stage: str, **kwargs: Any) -> None:
    from vlaeval.models.instructvla.train import TrainArgs, train

    overrides = {k: kwargs.pop(k) for k in ("chunk_size", "num_images", "use_state") if kwargs.get(k) is not None}
    for key in ("chunk_size", "num_images", "use_state"):
        kwargs.pop(key, None)
    last = train(TrainArgs(stage=stage, overrides=overrides, **kwargs))
    click.echo(f"checkpoint: {last}")


@click.group(name="train")
def train() -> None:
    """Train InstructVLA (stage 1: action expert + LoRA; stage 2: mixture-of-LoRA instruction tuning)."""


@train.command("stage1")
@_common
def stage1(**kwargs: Any) -> None:
    """Stage 1 ("Expert"): LoRA + meta tokens + action expert, flow-matching + LM loss."""
    _run("stage1", **kwargs)


@train.command("stage2")
@_common
@click.option("--annotations", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="VLA-IT annotation JSON.")
@click.option("--mm-data", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="LLaVA-format chat JSON.")
@click.option("--mm-image-root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--mm-batch-size", default=2, show_default=True, type=int)
@click.option("--train-expert/--freeze-expert", default=None, help="Default: frozen in stage 2 (upstream fix_system1).")
def stage2(**kwargs: Any) -> None:
    """Stage 2 ("Generalist"): 2-expert MoE-LoRA; start from a stage-1 checkpoint with --init."""
    _run("stage2", **kwargs)

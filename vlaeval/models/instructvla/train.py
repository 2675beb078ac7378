"""Stage-1 / stage-2 training loops.

AdamW (lr 5e-5 constant, wd 0, betas 0.9/0.999), grad-norm clipping 1.0, bf16 autocast only
when CUDA exists, optional gradient checkpointing (stage 1 only), resumable checkpoints in
our format plus ``train_state.pt`` (optimizer, step, data position, RNG), tqdm progress,
metrics to ``metrics.jsonl`` always and to TensorBoard / W&B when installed and selected.
Launched with ``torchrun`` (``WORLD_SIZE > 1``) it uses torch DDP; rank 0 logs and saves.

Stage 2 starts from a stage-1 checkpoint (``init``): the LoRA becomes the ``action`` expert
of the mixture, the action expert is frozen, and when chat data is given every iteration
does a second optimizer step on one multimodal batch (upstream's two-step iteration).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from vlaeval.models.instructvla.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vlaeval.models.instructvla.config import get_config
from vlaeval.models.instructvla.data import ActionDataset, ChatDataset, LeRobotFrames, PromptSampler, VLAITAnnotations
from vlaeval.models.instructvla.model import InstructVLA, build_model

TRAIN_STATE = "train_state.pt"
LATEST = "latest"


@dataclass
class TrainArgs:
    stage: str
    data: Path
    out: Path
    steps: int
    config: str = "tiny"
    batch_size: int = 2
    lr: float = 5e-5
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    save_every: int = 0
    """0: save only at the end."""
    log_every: int = 1
    seed: int = 42
    num_workers: int = 0
    gradient_checkpointing: bool = False
    init: Path | None = None
    eagle_dir: Path | None = None
    dino_dir: Path | None = None
    annotations: Path | None = None
    mm_data: Path | None = None
    mm_image_root: Path | None = None
    mm_batch_size: int = 2
    image_aug: bool = False
    gripper: str = "none"
    dataset_name: str | None = None
    resume: bool = True
    logger: str = "auto"
    train_expert: bool | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


# ----- distributed helpers -----------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world <= 1:
        return Dist(device=torch.device("cuda" if cuda else "cpu"))
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return Dist(rank=dist.get_rank(), world=world, device=device)


# ----- data order --------------------------------------------------------------------------------
class BatchStream:
    """Deterministic, resumable batches of indices: a seeded permutation per epoch, sharded by rank."""

    def __init__(self, size: int, batch_size: int, seed: int, dist: Dist):
        if size < batch_size * dist.world:
            raise ValueError(f"dataset has {size} frames, fewer than one global batch ({batch_size * dist.world})")
        self.size, self.batch_size, self.seed, self.dist = size, batch_size, seed, dist
        self.epoch, self.position = 0, 0

    def _epoch_batches(self) -> list[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        shard = order[self.dist.rank :: self.dist.world]
        count = len(shard) // self.batch_size
        return [shard[i * self.batch_size : (i + 1) * self.batch_size].tolist() for i in range(count)]

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            batches = self._epoch_batches()
            while self.position < len(batches):
                batch = batches[self.position]
                self.position += 1
                yield batch
            self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def _batches(dataset: Any, stream: BatchStream, collate: Any, workers: int) -> Iterator[dict[str, torch.Tensor]]:
    """Collated batches in ``stream`` order (a DataLoader over the index batches when ``workers``)."""
    if workers <= 0:
        for indices in stream:
            if hasattr(dataset, "epoch"):
                dataset.epoch = stream.epoch
            yield collate([dataset[i] for i in indices])
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_sampler=stream, collate_fn=collate, num_workers=workers)
    yield from loader


# ----- logging -----------------------------------------------------------------------------------
class MetricLogger:
    """JSONL always; TensorBoard or W&B in addition when installed (``auto`` prefers TensorBoard)."""

    def __init__(self, out: Path, kind: str, config: dict[str, Any], enabled: bool):
        self.enabled = enabled
        self.path = out / "metrics.jsonl"
        self.tb: Any = None
        self.wandb: Any = None
        if not enabled:
            return
        if kind in ("auto", "tensorboard"):
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                if kind == "tensorboard":
                    raise
        if kind == "wandb" or (kind == "auto" and self.tb is None and os.environ.get("WANDB_PROJECT")):
            try:
                import wandb

                self.wandb = wandb.init(project=os.environ.get("WANDB_PROJECT", "instructvla"), config=config, dir=str(out))
            except ImportError:
                if kind == "wandb":
                    raise

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(values, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


# ----- model / state -----------------------------------------------------------------------------
def latest_checkpoint(out: Path) -> Path | None:
    pointer = out / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = out / "checkpoints" / pointer.read_text(encoding="utf-8").strip()
    return path if (path / TRAIN_STATE).is_file() else None


def _initial_model(args: TrainArgs, frames: LeRobotFrames) -> InstructVLA:
    """A model for ``args.stage``: from ``init`` (converted stage1 -> stage2 if needed) or fresh."""
    if args.init is not None:
        model, _ = load_checkpoint(args.init)
        if args.stage == "stage2" and model.stage == "stage1":
            model.to_stage2()
        elif model.stage != args.stage:
            raise CheckpointError(f"{args.init}: a {model.stage} checkpoint cannot start {args.stage} training")
    else:
        if args.stage == "stage2" and not args.train_expert:
            raise ValueError("stage 2 starts from a stage-1 checkpoint: pass --init (or --train-expert to train a fresh expert)")
        cfg = get_config(args.config, stage=args.stage, **args.overrides)
        model = build_model(cfg, eagle_dir=args.eagle_dir, dino_dir=args.dino_dir, seed=args.seed)
    name = args.dataset_name or frames.name
    if name not in model.norm_stats:
        model.norm_stats[name] = frames.statistics()
    return model


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _save(model: InstructVLA, args: TrainArgs, step: int, optimizer: Any, streams: dict[str, BatchStream], loss: float) -> Path:
    directory = args.out / "checkpoints" / f"step-{step:06d}"
    save_checkpoint(model, directory, meta={"stage": args.stage, "step": step, "loss": loss, "train_args": args.to_json()})
    torch.save(
        {"step": step, "optimizer": optimizer.state_dict(), "streams": {k: s.state_dict() for k, s in streams.items()}, "rng": _rng_state()},
        directory / TRAIN_STATE,
    )
    (args.out / "checkpoints" / LATEST).write_text(directory.name, encoding="utf-8")
    return directory


# ----- the loop ----------------------------------------------------------------------------------
def train(args: TrainArgs) -> Path:
    """Run (or resume) training; returns the last checkpoint directory."""
    from tqdm import tqdm

    dist = setup_distributed()
    args.out.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    resume_from = latest_checkpoint(args.out) if args.resume else None

    preset = get_config(args.config, **args.overrides)
    num_images, chunk = preset.num_images, preset.chunk_size
    if args.init is not None:
        init_cfg = json.loads((Path(args.init) / "config.json").read_text(encoding="utf-8"))["model_config"]
        num_images, chunk = init_cfg["num_images"], init_cfg["chunk_size"]
    frames = LeRobotFrames(args.data, chunk, num_images, gripper=args.gripper, name=args.dataset_name)
    if resume_from is not None:
        model, _ = load_checkpoint(resume_from)
    else:
        model = _initial_model(args, frames)
    name = args.dataset_name or frames.name
    model.to(dist.device)
    params = model.configure_trainable(args.train_expert)
    if args.gradient_checkpointing:
        model.set_gradient_checkpointing(True)
    model.train()

    sampler = PromptSampler(args.stage, model.cfg.system_message, model.cfg.num_meta_queries)
    annotations = VLAITAnnotations.from_file(args.annotations) if args.annotations else None
    dataset = ActionDataset(frames, model.processor, model.norm_stats[name], sampler, annotations, args.image_aug, seed=args.seed)
    streams = {"vla": BatchStream(len(dataset), args.batch_size, args.seed, dist)}
    chat = None
    if args.mm_data is not None:
        chat = ChatDataset(args.mm_data, args.mm_image_root, model.processor)
        streams["mm"] = BatchStream(len(chat), args.mm_batch_size, args.seed + 1, dist)

    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    step = 0
    if resume_from is not None:
        state = torch.load(resume_from / TRAIN_STATE, map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        for key, stream_state in state["streams"].items():
            if key in streams:
                streams[key].load_state_dict(stream_state)
        _set_rng_state(state["rng"])
        step = int(state["step"])

    network: Any = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        network = DistributedDataParallel(model, find_unused_parameters=True)

    logger = MetricLogger(args.out, args.logger, args.to_json(), dist.main)
    vla_batches = _batches(dataset, streams["vla"], model.processor.collate, args.num_workers)
    mm_batches = _batches(chat, streams["mm"], model.processor.collate, args.num_workers) if chat is not None else None
    generator = torch.Generator().manual_seed(args.seed * 1000 + step)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if dist.device.type == "cuda" else contextlib.nullcontext

    def optimize(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            losses = network(batch, generator=generator)
        losses["loss"].backward()
        losses["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        optimizer.step()
        return losses

    last = resume_from
    loss_value = float("nan")
    progress = tqdm(total=args.steps, initial=step, disable=not dist.main, desc=f"instructvla {args.stage}")
    while step < args.steps:
        start = time.perf_counter()
        losses = optimize(next(vla_batches))
        values = {k: float(v.detach()) for k, v in losses.items()}
        if mm_batches is not None:
            values["mm_loss"] = float(optimize(next(mm_batches))["loss"].detach())
        step += 1
        loss_value = values["loss"]
        values["lr"] = args.lr
        values["step_s"] = time.perf_counter() - start
        if step % args.log_every == 0:
            logger.log(step, values)
        progress.update(1)
        progress.set_postfix(loss=f"{loss_value:.4f}")
        if dist.main and ((args.save_every and step % args.save_every == 0) or step == args.steps):
            last = _save(model, args, step, optimizer, streams, loss_value)
    progress.close()
    logger.close()
    if dist.world > 1:
        torch.distributed.barrier()
    if last is None:
        raise RuntimeError("no checkpoint written (nothing to train?)")
    return last

"""Full-size InstructVLA with random weights: parameter counts and action-chunk latency.

Builds the ``base`` preset (Eagle2-2B-sized VLM + 541M action expert) with random weights
directly on the device, counts parameters per component against the sizes documented in
../shared/docs/instructvla.md (section 1.6.1 and the stage-1/2 trainable counts), then times
inference in bf16 at batch 1 and 8:

- ``vlm``: prompt (256 image tokens + instruction + 64 meta queries) -> meta-query latents,
- ``expert``: latents -> one action chunk (10 Euler steps of flow matching, cached latents),
- ``chunk``: both, on an already-collated batch (what one policy call costs on the GPU),
- ``end to end``: ``predict_action`` from uint8 frames (adds CPU preprocessing/tokenizing).

Precisions: ``bf16`` (everything bf16) and ``upstream`` (VLM bf16, action expert fp32, as the
upstream deployment code casts it). Stage 2 adds the X-LoRA two-pass language model.

    python benchmarks/instructvla_gpu.py --report docs/results/instructvla_gpu.md
    python benchmarks/instructvla_gpu.py --counts-only      # no GPU: counts on the meta device
    python benchmarks/instructvla_gpu.py --preset tiny --device cpu --iters 2   # smoke run
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vlaeval.models.instructvla.config import get_config
from vlaeval.models.instructvla.model import InstructVLA
from vlaeval.models.instructvla.sizes import DOCUMENTED_M, component_millions

INSTRUCTION = "put the black bowl on the plate"


def build(preset: str, stage: str, device: str, seed: int = 0) -> InstructVLA:
    torch.manual_seed(seed)
    cfg = get_config(preset, stage=stage)
    stats = {"bench": {"action": {"q01": [-1.0] * cfg.action_dim, "q99": [1.0] * cfg.action_dim}}}
    with torch.device(device):
        return InstructVLA(cfg, norm_stats=stats)


def cast(model: InstructVLA, precision: str) -> InstructVLA:
    if precision == "fp32":
        return model.float()
    model.to(torch.bfloat16)
    if precision == "upstream":
        model.action_model.float()
    return model


@dataclass
class Timing:
    name: str
    batch: int
    ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)


def timed(fn: Callable[[], object], device: str, warmup: int, iters: int) -> list[float]:
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def frames(model: InstructVLA, batch: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return [[rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(model.cfg.num_images)] for _ in range(batch)]


def latency(model: InstructVLA, batch: int, device: str, warmup: int, iters: int) -> list[Timing]:
    images = frames(model, batch)
    samples = [model.processor.action_sample(f, INSTRUCTION, "atomic", None) for f in images]
    collated = {k: v.to(device) for k, v in model.processor.collate(samples).items()}
    noise = model.draw_noise(batch, None)
    _, latents = model.predict_normalized(collated, noise)

    @torch.no_grad()
    def vlm() -> None:
        hidden, _ = model.vlm(collated["input_ids"], collated["attention_mask"], collated["pixel_values"])
        model.latents_from_hidden(collated["input_ids"], hidden)

    return [
        Timing("vlm", batch, timed(vlm, device, warmup, iters)),
        Timing("expert", batch, timed(lambda: model.predict_normalized(collated, noise, cached_latents=latents), device, warmup, iters)),
        Timing("chunk", batch, timed(lambda: model.predict_normalized(collated, noise), device, warmup, iters)),
        Timing("end to end", batch, timed(lambda: model.predict_action(images, [INSTRUCTION] * batch), device, warmup, iters)),
    ]


def counts_table(counts: dict[str, float]) -> list[str]:
    lines = ["| component | ours (M) | documented (M) | ratio |", "| --- | ---: | ---: | ---: |"]
    for name, value in counts.items():
        doc = DOCUMENTED_M.get(name)
        ratio = f"{value / doc:.3f}" if doc else ""
        lines.append(f"| {name} | {value:.2f} | {doc if doc is not None else ''} | {ratio} |")
    return lines


def latency_table(rows: list[tuple[str, str, Timing]]) -> list[str]:
    lines = [
        "| stage | precision | part | batch | median ms | p90 ms | chunks/s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for stage, precision, t in rows:
        p90 = sorted(t.ms)[int(0.9 * (len(t.ms) - 1))]
        lines.append(f"| {stage} | {precision} | {t.name} | {t.batch} | {t.median:.1f} | {p90:.1f} | {1e3 * t.batch / t.median:.1f} |")
    return lines


def environment(device: str) -> str:
    import transformers

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or "cpu"
    return f"{gpu}; torch {torch.__version__}; transformers {transformers.__version__}; Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--precisions", default="bf16,upstream")
    parser.add_argument("--stages", default="stage1,stage2")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--counts-only", action="store_true", help="count parameters on the meta device; no timing")
    parser.add_argument("--report", type=Path, help="write the Markdown tables here")
    args = parser.parse_args()

    stages = args.stages.split(",")
    lines = [f"# InstructVLA `{args.preset}` with random weights: parameters and latency", ""]
    count_device = "meta" if args.counts_only else args.device
    for stage in stages:
        model = build(args.preset, stage, count_device)
        lines += [f"## Parameters, {stage}", "", *counts_table(component_millions(model)), ""]
        del model
    print("\n".join(lines), flush=True)
    if not args.counts_only:
        rows: list[tuple[str, str, Timing]] = []
        for stage in stages:
            model = build(args.preset, stage, args.device).eval()
            for precision in args.precisions.split(","):
                cast(model, precision)
                for batch in (int(b) for b in args.batches.split(",")):
                    for t in latency(model, batch, args.device, args.warmup, args.iters):
                        rows.append((stage, precision, t))
                        print(latency_table([rows[-1]])[-1], flush=True)
            del model
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
        lines += [
            "## Latency (one action chunk per call)", "",
            f"Device: {environment(args.device)}. {args.warmup} warm-up calls, then {args.iters} timed; "
            "`chunks/s` = batch / median.", "", *latency_table(rows), "",
        ]
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()

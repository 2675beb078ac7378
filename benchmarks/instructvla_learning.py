"""Does the InstructVLA training path learn? An honest CPU-sized check, end to end.

1. record oracle demonstrations on one LIBERO task (``vlaeval run --model oracle --record-demos``),
2. train the ``tiny`` preset, stage 1, on them (``vlaeval train stage1``),
3. evaluate the trained checkpoint and ``random`` on the same task through the harness,
4. write the loss curve and both success rates to ``docs/results/instructvla_learning.md``.

Every step is the product's own command line, so this also proves the pipeline
demos -> LeRobot dataset -> training -> checkpoint -> evaluation. Run with the harness venv:

    .venv/bin/python benchmarks/instructvla_learning.py --task 0 --demos 20 --steps 2000

The trained checkpoint is evaluated on init states it was trained on (in-distribution) and on
held-out init states (``--held-out``, never demonstrated); ``random`` on the held-out ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vlaeval.harness.store import read_episodes

REPO = Path(__file__).resolve().parent.parent


def vlaeval(*args: str) -> None:
    cmd = [sys.executable, "-m", "vlaeval.cli", *args]
    print("$ vlaeval " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def success_rate(run_dir: Path) -> tuple[int, int]:
    rows = read_episodes(run_dir)
    return sum(r["success"] for r in rows), len(rows)


def loss_curve(metrics: Path, points: int = 10) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "loss" in r and "step" in r]
    if not rows:
        return []
    stride = max(1, len(rows) // points)
    picked = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
    return [(int(r["step"]), float(r["loss"])) for r in picked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="libero-spatial")
    parser.add_argument("--task", default="0", help="task index or name pattern")
    parser.add_argument("--demos", type=int, default=10, help="oracle episodes (init states 0..N-1)")
    parser.add_argument("--steps", type=int, default=400, help="training iterations")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seen", default="0-4", help="init states (demonstrated) the trained model is also tested on")
    parser.add_argument("--held-out", default="40-49", help="init states never demonstrated: trained and random")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "instructvla_learning")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "results" / "instructvla_learning.md")
    args = parser.parse_args()

    work = args.work
    dataset = work / f"{args.suite.replace('-', '_')}_no_noops"  # the statistics key the adapter looks up
    started = time.monotonic()
    common = ["--suite", args.suite, "--tasks", args.task, "--workers", str(args.workers)]
    info = dataset / "meta" / "info.json"
    if info.exists() and json.loads(info.read_text())["total_episodes"] >= args.demos:
        print(f"using the {args.demos}+ demonstrations already in {dataset}", flush=True)
    else:  # (a changed oracle fingerprint would otherwise record every demonstration again)
        vlaeval("run", *common, "--model", "oracle", "--episodes-per-task", str(args.demos),
                "--record-demos", str(dataset), "--out", str(work / "oracle"))
    vlaeval("train", "stage1", "--data", str(dataset), "--config", "tiny", "--out", str(work / "train"),
            "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--gripper", "libero", "--log-every", "10")
    checkpoint = work / "train" / "checkpoints" / (work / "train" / "checkpoints" / "latest").read_text().strip()
    vlaeval("run", *common, "--model", str(checkpoint), "--episodes", args.seen, "--out", str(work / "eval_seen"))
    vlaeval("run", *common, "--model", str(checkpoint), "--episodes", args.held_out,
            "--out", str(work / "eval_held_out"))
    vlaeval("run", *common, "--model", "random", "--episodes", args.held_out, "--out", str(work / "eval_random"))

    oracle = success_rate(work / "oracle")
    seen = success_rate(work / "eval_seen")
    held_out = success_rate(work / "eval_held_out")
    rand = success_rate(work / "eval_random")
    curve = loss_curve(work / "train" / "metrics.jsonl")
    size_mb = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file()) / 1e6
    lines = [
        "# InstructVLA (tiny preset) learning check on CPU",
        "",
        f"Produced by `benchmarks/instructvla_learning.py` in {(time.monotonic() - started) / 60:.0f} min on a",
        "shared 2-core CPU machine. Suite `" + args.suite + f"`, task `{args.task}`.",
        "",
        "| model | episodes | successes | success rate |",
        "|---|---:|---:|---:|",
        f"| oracle (demonstrations, init states 0..{args.demos - 1}) | {oracle[1]} | {oracle[0]} | "
        f"{oracle[0] / max(oracle[1], 1):.0%} |",
        f"| tiny InstructVLA, stage 1, {args.steps} steps, demonstrated init states {args.seen} | {seen[1]} | "
        f"{seen[0]} | {seen[0] / max(seen[1], 1):.0%} |",
        f"| tiny InstructVLA, stage 1, {args.steps} steps, held-out init states {args.held_out} | {held_out[1]} | "
        f"{held_out[0]} | {held_out[0] / max(held_out[1], 1):.0%} |",
        f"| random, held-out init states {args.held_out} | {rand[1]} | {rand[0]} | {rand[0] / max(rand[1], 1):.0%} |",
        "",
        f"Checkpoint: {size_mb:.1f} MB.",
        "",
        "## Training loss (flow matching)",
        "",
        "| step | loss |",
        "|---:|---:|",
        *[f"| {step} | {loss:.4f} |" for step, loss in curve],
    ]
    if len(curve) >= 2:
        first = statistics.mean(loss for _, loss in curve[:2])
        last = statistics.mean(loss for _, loss in curve[-2:])
        lines += ["", f"Loss fell from {first:.4f} to {last:.4f} ({last / first:.0%} of the start)."]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()

"""Episode throughput of ``vlaeval run --workers 2`` against ``--workers 1`` on LIBERO.

Both runs evaluate the same slice (``--tasks``, one init state each, a fixed step limit
so that every episode costs the same) with the same model, each into a fresh run
directory, and are timed from the command's start to its end (worker start-up and env
creation included, as a user sees it). Per run it prints the episodes per minute and
the mean episode time the store recorded, then the throughput ratio.

    .venv/bin/python benchmarks/parallel.py                 # zero policy, 4 tasks x 60 steps
    .venv/bin/python benchmarks/parallel.py --model oracle --max-steps 220

On a 2-core CPU-only machine the two sim workers share the cores with MuJoCo's
renderer, so expect well under 2x (see docs/libero_cpu.md: ~1.6x in raw steps/s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vlaeval.harness.store import read_episodes


def timed_run(out: Path, workers: int, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, "-m", "vlaeval.cli", "run", "--suite", args.suite, "--model", args.model,
           "--episodes-per-task", "1", "--workers", str(workers), "--out", str(out),
           "--protocol", f"max_steps={args.max_steps}"]
    for task in args.tasks:
        cmd += ["--tasks", task]
    env = {**os.environ, "LP_NUM_THREADS": "1"}
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"workers={workers} failed:\n{done.stderr[-3000:]}")
    episodes = read_episodes(out)
    n = len(episodes)
    return {
        "workers": workers, "episodes": n, "wall_s": round(wall, 1),
        "episodes_per_min": round(60 * n / wall, 2),
        "mean_episode_s": round(sum(e["duration_s"] for e in episodes) / max(n, 1), 1),
        "steps": sum(e["steps"] for e in episodes),
        "successes": sum(bool(e["success"]) for e in episodes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="libero-spatial")
    parser.add_argument("--model", default="zero")
    parser.add_argument("--tasks", action="append", default=None, help="task patterns [default: 0 1 2 3]")
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--out", default=None, help="keep the two run directories here")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    args.tasks = args.tasks or ["0", "1", "2", "3"]
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vlaeval-parallel-"))
    results = []
    for workers in (1, 2):
        out = root / f"workers{workers}"
        if out.exists():
            raise SystemExit(f"{out} exists; use a fresh --out (a resumed run would skip its episodes)")
        result = timed_run(out, workers, args)
        results.append(result)
        print(f"--workers {workers}: {result['episodes']} episodes ({result['steps']} steps, "
              f"{result['successes']} successes) in {result['wall_s']} s -> {result['episodes_per_min']} episodes/min "
              f"(mean episode {result['mean_episode_s']} s)", flush=True)
    ratio = results[1]["episodes_per_min"] / results[0]["episodes_per_min"]
    print(f"throughput ratio workers=2 / workers=1: {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "ratio": round(ratio, 3), "suite": args.suite,
                                               "model": args.model, "tasks": args.tasks,
                                               "max_steps": args.max_steps}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

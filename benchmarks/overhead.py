"""Harness overhead: harness step time / raw simulator step time (LIBERO or SimplerEnv).

Measured side by side in one run, alternating (raw, harness) ``--rounds`` times; the headline is
the median of the per-round ratios (each pair ran back to back, so slow drifts of a shared
machine cancel):

* raw: the bare simulator stepped with the action ``--model zero`` sends (no motion, gripper
  open) in its own venv, rendering the policy
  images each step -- LIBERO's ``OffScreenRenderEnv`` (same task, init state, camera size
  and settle steps as the harness), or our SimplerEnv scene env (``env.step`` + ``env.render``
  on the same episode as the harness);
* harness: ``vlaeval run --model zero`` on the same episode through the real path
  (sim worker process, policy server over WebSocket + msgpack, episode loop, store);
  its per-step time is the episode's loop time divided by its steps.

Run with the harness venv: ``.venv/bin/python benchmarks/overhead.py [--suite simpler] [--steps 100]``.
Targets: ratio <= 1.03 (LIBERO), <= 1.05 (SimplerEnv).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vlaeval.harness.envs import backend_python
from vlaeval.harness.store import read_episodes

RAW_SCRIPT = r"""
import json, os, sys, time
os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np
from libero.libero import benchmark, get_libero_path
from libero.libero.envs import OffScreenRenderEnv
steps, size = int(sys.argv[1]), int(sys.argv[2])
suite = benchmark.get_benchmark_dict()["libero_spatial"]()
task = suite.get_task(0)
bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=size, camera_widths=size)
env.seed(0); env.reset(); env.set_init_state(suite.get_task_init_states(0)[0])
noop = np.zeros(7); noop[-1] = -1.0
for _ in range(10):
    env.step(noop)
t0 = time.monotonic()
for _ in range(steps):
    obs, reward, done, info = env.step(noop)
    agent = np.ascontiguousarray(obs["agentview_image"][::-1, ::-1])
    wrist = np.ascontiguousarray(obs["robot0_eye_in_hand_image"][::-1, ::-1])
print(json.dumps({"step_s": (time.monotonic() - t0) / steps}))
env.close()
"""


SIMPLER_RAW_SCRIPT = r"""
import json, sys, time
import numpy as np
from vlaeval.harness.suite import Selection
from vlaeval.suites.simpler import SimplerSuite
from vlaeval.suites.simpler.backend import SimplerBackend
steps, suite, task = int(sys.argv[1]), sys.argv[2], sys.argv[3]
[episode] = SimplerSuite(suite).episodes(Selection(tasks=[task], episodes_per_task=1,
                                                   protocol_overrides={"max_steps": steps}))
backend = SimplerBackend({})
backend.reset(episode)  # builds the scene and renders the first frame (shader compile), as the harness does
# the action `--model zero` sends: no motion, gripper open, in this robot's gripper convention
from vlaeval.adapters.basic import ZeroPolicy
from vlaeval.harness.policy import convert_gripper
zero = ZeroPolicy()
action = convert_gripper(zero.act(None, {})[None], zero.spec(), backend.gripper, backend.gripper_range)[0]
env = backend.env
t0 = time.monotonic()
for _ in range(steps):
    env.step(action)
    image = env.render()
print(json.dumps({"step_s": (time.monotonic() - t0) / steps}))
backend.close()
"""


@dataclass(frozen=True)
class Target:
    backend: str
    raw_script: str
    raw_args: tuple[str, ...]
    run_args: tuple[str, ...]
    label: str
    goal: float


def target(suite: str, size: int) -> Target:
    if suite == "libero":
        return Target("libero", RAW_SCRIPT, (str(size),),
                      ("--suite", "libero-spatial", "--tasks", "0", "--protocol", f"camera_size={size}"),
                      f"LIBERO libero_spatial task 0, {size}px", 1.03)
    task = "vm/google/pick_coke_can/horizontal/urdf-base"
    return Target("simpler", SIMPLER_RAW_SCRIPT, ("simpler-google-vm", task),
                  ("--suite", "simpler-google-vm", "--tasks", task), f"SimplerEnv google VM {task}, 640x512", 1.05)


def raw_step_s(t: Target, steps: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([backend_python(t.backend), "-c", t.raw_script, str(steps), *t.raw_args],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["step_s"]


def harness_step_s(t: Target, steps: int, workdir: Path, round_index: int) -> tuple[float, float]:
    """(loop seconds per step, loop time / time inside env.step) of one harness episode."""
    out = workdir / f"run{round_index}"
    subprocess.run(
        [sys.executable, "-m", "vlaeval.cli", "run", *t.run_args, "--model", "zero", "--episodes-per-task", "1",
         "--out", str(out), "--protocol", f"max_steps={steps}"],
        check=True, capture_output=True,
    )
    [episode] = read_episodes(out)
    timing = episode["timing"]
    return timing["loop_s"] / episode["steps"], timing["loop_s"] / timing["sim_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="steps per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating raw/harness rounds")
    parser.add_argument("--camera-size", type=int, default=256, help="LIBERO camera size")
    parser.add_argument("--suite", choices=("libero", "simpler"), default="libero")
    parser.add_argument("--report", type=Path, help="also write the result as Markdown here "
                        "(e.g. docs/results/overhead_simpler.md)")
    args = parser.parse_args()
    t = target(args.suite, args.camera_size)
    raw, harness, within = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            raw.append(raw_step_s(t, args.steps))
            step_s, loop_over_sim = harness_step_s(t, args.steps, Path(tmp), r)
            harness.append(step_s)
            within.append(loop_over_sim)
            print(f"round {r}: raw {raw[-1] * 1e3:.1f} ms/step, harness {harness[-1] * 1e3:.1f} ms/step", flush=True)
    lines = summary(t, args, raw, harness, within)
    print("\n".join(lines))
    if args.report:
        write_report(args.report, t, args, raw, harness, lines)


def summary(t: Target, args: argparse.Namespace, raw: list[float], harness: list[float],
            within: list[float]) -> list[str]:
    paired = statistics.median(h / r for r, h in zip(raw, harness))
    return [
        f"{t.label}, {args.steps} steps, {args.rounds} rounds",
        f"raw step     {statistics.median(raw) * 1e3:8.1f} ms (median)",
        f"harness step {statistics.median(harness) * 1e3:8.1f} ms (median)",
        f"overhead ratio harness/raw = {paired:.3f}  (median of the per-round ratios; target <= {t.goal})",
        f"ratio of the medians       = {statistics.median(harness) / statistics.median(raw):.3f}  "
        "(also feels the machine's drift between rounds)",
        f"within the harness episode: loop time / env.step time = {statistics.median(within):.3f} "
        "(the same ratio, immune to load changes between rounds)",
    ]


def write_report(path: Path, t: Target, args: argparse.Namespace, raw: list[float], harness: list[float],
                 lines: list[str]) -> None:
    rounds = [f"| {i} | {r * 1e3:.1f} | {h * 1e3:.1f} | {h / r:.3f} |" for i, (r, h) in enumerate(zip(raw, harness))]
    text = [
        f"# Harness overhead: {t.backend}",
        "",
        f"Generated by `benchmarks/overhead.py --suite {args.suite} --steps {args.steps} --rounds {args.rounds}` "
        f"on {time.strftime('%Y-%m-%d')} (CPU only, {os.cpu_count()} cores, nothing else running).",
        "Raw = the bare simulator stepped and rendered in its own venv; harness = `vlaeval run --model zero` on the "
        "same episode (sim worker process, policy server over WebSocket + msgpack, episode loop, result store).",
        "",
        "| round | raw ms/step | harness ms/step | ratio |",
        "|---:|---:|---:|---:|",
        *rounds,
        "",
        "```",
        *lines,
        "```",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

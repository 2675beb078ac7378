"""Harness overhead: harness step time / raw simulator step time (LIBERO or SimplerEnv).

Both sides run at the same time, warmed up, and take turns in short blocks, so a shared
machine's load changes (seconds to minutes long on a cloud VM) hit both alike:

* raw: the bare simulator in its own venv and process, stepped with the action ``--model zero``
  sends (no motion, gripper open) and rendering the policy images each step -- LIBERO's
  ``OffScreenRenderEnv`` (same task, init state, camera size and settle steps as the harness)
  or our SimplerEnv scene env (``env.step`` + ``env.render`` on the same episode);
* harness: ``vlaeval run --model ws://...`` on the same episode through the real path (sim
  worker process, WebSocket + msgpack with frames in shared memory, episode loop, store),
  against a zero policy this script serves with vlaeval's own :class:`PolicyServer`.

The served policy paces the run: after every ``--block`` harness steps it holds its reply
while the raw process steps ``--block`` times (the harness worker waits idle on its socket).
A harness step is the time from one reply leaving the policy to the next observation reaching
it: env step, frame transport both ways, episode loop. The headline is the median over blocks
of (harness block time / the raw block right after it).

Run with the harness venv: ``.venv/bin/python benchmarks/overhead.py [--suite simpler]``.
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
from typing import IO, Any

import numpy as np

from vlaeval.adapters.basic import ZeroPolicy
from vlaeval.harness.envs import backend_python
from vlaeval.harness.protocol import PolicyServer
from vlaeval.harness.store import read_episodes
from vlaeval.harness.worker.supervisor import apply_sim_process_defaults

CONTROL = r"""
import json, os, sys, time
control = os.fdopen(os.dup(1), "w", buffering=1)  # stray prints of the simulator go to stderr
os.dup2(2, 1)
"""

LIBERO_SETUP = r"""
os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np
from libero.libero import benchmark, get_libero_path
from libero.libero.envs import OffScreenRenderEnv
size = int(sys.argv[1])
suite = benchmark.get_benchmark_dict()["libero_spatial"]()
task = suite.get_task(0)
bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=size, camera_widths=size)
env.seed(0); env.reset(); env.set_init_state(suite.get_task_init_states(0)[0])
noop = np.zeros(7); noop[-1] = -1.0
for _ in range(10):
    env.step(noop)

def step():
    obs, reward, done, info = env.step(noop)
    np.ascontiguousarray(obs["agentview_image"][::-1, ::-1])
    np.ascontiguousarray(obs["robot0_eye_in_hand_image"][::-1, ::-1])
"""

SIMPLER_SETUP = r"""
from vlaeval.harness.suite import Selection
from vlaeval.suites.simpler import SimplerSuite
from vlaeval.suites.simpler.backend import SimplerBackend
from vlaeval.adapters.basic import ZeroPolicy
from vlaeval.harness.policy import convert_gripper
suite, task = sys.argv[1], sys.argv[2]
[episode] = SimplerSuite(suite).episodes(Selection(tasks=[task], episodes_per_task=1,
                                                   protocol_overrides={"max_steps": 10**6}))
backend = SimplerBackend({})
backend.reset(episode)  # builds the scene and renders the first frame (shader compile), as the harness does
zero = ZeroPolicy()  # the action `--model zero` sends, in this robot's gripper convention
action = convert_gripper(zero.act(None, {})[None], zero.spec(), backend.gripper, backend.gripper_range)[0]
env = backend.env

def step():
    env.step(action)
    env.render()
"""

STEP_LOOP = r"""
for _ in range(5):
    step()
control.write(json.dumps({"ready": True}) + "\n")
for line in sys.stdin:
    n = int(line)
    t0 = time.monotonic()
    for _ in range(n):
        step()
    control.write(json.dumps({"s": time.monotonic() - t0}) + "\n")
"""


@dataclass(frozen=True)
class Target:
    backend: str
    raw_setup: str
    raw_args: tuple[str, ...]
    run_args: tuple[str, ...]
    label: str
    goal: float


def target(suite: str, size: int) -> Target:
    if suite == "libero":
        return Target("libero", LIBERO_SETUP, (str(size),),
                      ("--suite", "libero-spatial", "--tasks", "0", "--protocol", f"camera_size={size}"),
                      f"LIBERO libero_spatial task 0, {size}px", 1.03)
    task = "vm/google/pick_coke_can/horizontal/urdf-base"
    return Target("simpler", SIMPLER_SETUP, ("simpler-google-vm", task),
                  ("--suite", "simpler-google-vm", "--tasks", task), f"SimplerEnv google VM {task}, 640x512", 1.05)


class RawSim:
    """The bare simulator in its own process, stepping ``n`` times on request."""

    def __init__(self, t: Target, log: IO[str]):
        # the same process settings a sim worker gets, so the ratio measures the harness, not the settings
        env = apply_sim_process_defaults({**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
        script = CONTROL + t.raw_setup + STEP_LOOP
        self.process = subprocess.Popen([backend_python(t.backend), "-c", script, *t.raw_args], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self._read()  # ready

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"raw simulator exited with {self.process.wait()} (see its log)")
        return json.loads(line)

    def steps(self, n: int) -> float:
        """Seconds for ``n`` steps."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{n}\n")
        self.process.stdin.flush()
        return float(self._read()["s"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


class PacedZero(ZeroPolicy):
    """``zero``, timing the harness between its calls and handing the machine to the raw sim every ``block`` steps."""

    def __init__(self, raw: RawSim, warmup: int, block: int, rounds: int):
        super().__init__()
        self.raw, self.warmup, self.block, self.rounds = raw, warmup, block, rounds
        self.arrived: list[float] = []
        self.replied: list[float] = []
        self.raw_blocks: list[float] = []

    def act(self, state: Any, obs: Any) -> np.ndarray:
        self.arrived.append(time.monotonic())
        calls = len(self.arrived) - 1  # harness steps completed so far
        if calls > self.warmup and (calls - self.warmup) % self.block == 0 and len(self.raw_blocks) < self.rounds:
            self.raw_blocks.append(self.raw.steps(self.block))
        action = super().act(state, obs)
        self.replied.append(time.monotonic())
        return action

    def harness_blocks(self) -> list[float]:
        """Seconds of each harness block: its steps' intervals from a reply to the next observation."""
        steps = [self.arrived[i + 1] - self.replied[i] for i in range(len(self.arrived) - 1)]
        start = self.warmup
        return [sum(steps[start + j * self.block: start + (j + 1) * self.block]) for j in range(len(self.raw_blocks))]


@dataclass
class Measurement:
    raw: list[float]  # seconds per step, per block
    harness: list[float]
    env_step: float  # the harness episode's seconds per step inside env.step (SimBackend.step)


def measure(t: Target, warmup: int, block: int, rounds: int, workdir: Path) -> Measurement:
    with open(workdir / "raw.log", "w") as log:
        raw = RawSim(t, log)
        try:
            policy = PacedZero(raw, warmup, block, rounds)
            server = PolicyServer(policy)
            server.start_in_thread()
            try:
                out = workdir / "run"
                max_steps = warmup + block * (rounds + 1) + 1
                subprocess.run(
                    [sys.executable, "-m", "vlaeval.cli", "run", *t.run_args, "--model", server.url,
                     "--episodes-per-task", "1", "--out", str(out), "--protocol", f"max_steps={max_steps}"],
                    check=True, capture_output=True,
                )
            finally:
                server.stop()
        finally:
            raw.close()
    if len(policy.raw_blocks) < rounds:
        raise RuntimeError(f"the harness episode ended after {len(policy.arrived)} steps, before {rounds} blocks")
    [episode] = read_episodes(out)
    return Measurement(
        raw=[s / block for s in policy.raw_blocks],
        harness=[s / block for s in policy.harness_blocks()],
        env_step=episode["timing"]["sim_s"] / episode["steps"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--block", type=int, default=20, help="steps per turn of each side")
    parser.add_argument("--rounds", type=int, default=15, help="pairs of (harness, raw) blocks")
    parser.add_argument("--warmup", type=int, default=10, help="harness steps before the first block")
    parser.add_argument("--camera-size", type=int, default=256, help="LIBERO camera size")
    parser.add_argument("--suite", choices=("libero", "simpler"), default="libero")
    parser.add_argument("--report", type=Path, help="also write the result as Markdown here "
                        "(e.g. docs/results/overhead_simpler.md)")
    args = parser.parse_args()
    t = target(args.suite, args.camera_size)
    with tempfile.TemporaryDirectory() as tmp:
        m = measure(t, args.warmup, args.block, args.rounds, Path(tmp))
    lines = summary(t, args, m)
    print("\n".join(lines))
    if args.report:
        write_report(args.report, t, args, m, lines)


def summary(t: Target, args: argparse.Namespace, m: Measurement) -> list[str]:
    ratios = [h / r for r, h in zip(m.raw, m.harness)]
    paired = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    harness = statistics.median(m.harness)
    return [
        f"{t.label}; {args.rounds} rounds of {args.block} harness steps, then {args.block} raw steps",
        f"raw step          {statistics.median(m.raw) * 1e3:8.1f} ms (median over blocks)",
        f"harness step      {harness * 1e3:8.1f} ms (median over blocks), of which env.step "
        f"{m.env_step * 1e3:.1f} ms (episode mean)",
        f"overhead ratio harness/raw = {paired:.3f}  (median over blocks; quartiles {q1:.3f} .. {q3:.3f}; "
        f"target <= {t.goal})",
    ]


def write_report(path: Path, t: Target, args: argparse.Namespace, m: Measurement, lines: list[str]) -> None:
    rounds = [f"| {i} | {h * 1e3:.1f} | {r * 1e3:.1f} | {h / r:.3f} |" for i, (r, h) in enumerate(zip(m.raw, m.harness))]
    text = [
        f"# Harness overhead: {t.backend}",
        "",
        f"Generated by `benchmarks/overhead.py --suite {args.suite} --block {args.block} --rounds {args.rounds}` "
        f"on {time.strftime('%Y-%m-%d')} (CPU only, {os.cpu_count()} cores, nothing else running).",
        "Raw = the bare simulator stepped and rendered in its own venv and process; harness = `vlaeval run` on the "
        "same episode (sim worker process, WebSocket + msgpack with frames in shared memory, episode loop, "
        "result store) against a zero policy. The two take turns, block by block, in one run.",
        "",
        "| block | harness ms/step | raw ms/step (next block) | ratio |",
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

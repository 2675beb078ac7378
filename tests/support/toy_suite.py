"""A tiny deterministic suite for testing harness logic (not a benchmark).

A point moves in the plane by the first two action components; the episode succeeds
when it is within ``tolerance`` of the goal. With ``subtasks: 2`` the task has a second
subtask ("return to the start", goal at the origin) that begins when the policy signals
terminate or, with ``force_advance_step``, at that step; only the last subtask can succeed. Protocol knobs let tests make the worker
crash, hang or slow down on purpose; ``*_once_dir`` variants fail only on the first
attempt (a marker file remembers), which is how retries are exercised.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from vlaeval.harness import registry
from vlaeval.harness.backend import SimBackend, StepOutcome
from vlaeval.harness.policy import Observation, Policy, PolicySpec
from vlaeval.harness.specs import EpisodeResult, EpisodeSpec, SuiteSpec, TaskSpec
from vlaeval.harness.suite import Suite
from vlaeval.harness.text import DatasetSuite, Sample, TextModel, TextRequest

GOALS = [(0.5, 0.0), (0.0, 0.5), (-0.5, -0.5)]


class ToySuite(Suite):
    backend_env = "toy"
    backend_class = "toy_suite:ToyBackend"

    def __init__(self) -> None:
        self.spec = SuiteSpec(
            name="toy",
            version="1",
            backend="toy",
            protocol={
                "max_steps": 30,
                "tolerance": 0.05,
                "step_sleep_s": 0.0,
                "crash_once_dir": "",
                "crash_always": False,
                "hang_once_dir": "",
                "fail_at_step": 3,
                "replan_steps": 0,
                "ensemble": "none",
                "subtasks": 1,
                "force_advance_step": 0,
            },
        )

    def tasks(self) -> list[TaskSpec]:
        return [
            TaskSpec(suite="toy", task_id=f"reach_{i}", instruction=f"reach goal {i}", index=i, n_init_states=4, max_steps=30)
            for i in range(len(GOALS))
        ]


class ToyBackend(SimBackend):
    def reset(self, episode: EpisodeSpec) -> Observation:
        self.episode = episode
        self.protocol = episode.protocol
        rng = np.random.default_rng([episode.seed, episode.task_index, episode.episode_index])
        self.pos = rng.uniform(-0.2, 0.2, size=2)
        self.goal = np.array(GOALS[episode.task_index])
        self.t = 0
        self.subtask = 0
        return self._obs()

    def _instruction(self) -> str:
        return self.episode.instruction if self.subtask == 0 else "return to the start"

    def _obs(self) -> Observation:
        image = np.zeros((8, 8, 3), dtype=np.uint8)
        image[..., 0] = int((self.pos[0] + 1) * 100)
        return {"agentview": image, "state": np.concatenate([self.pos, self.goal]).astype(np.float32),
                "instruction": self._instruction()}

    def advance_subtask(self) -> str | None:
        if self.subtask + 1 >= int(self.protocol["subtasks"]):
            return None
        self.subtask += 1
        self.goal = np.zeros(2)
        return self._instruction()

    def _first_time(self, directory: str, what: str) -> bool:
        marker = Path(directory) / f"{what}-{self.episode.task_id}-{self.episode.episode_index}-{self.episode.seed}"
        if marker.exists():
            return False
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return True

    def step(self, action: np.ndarray) -> StepOutcome:
        self.t += 1
        p = self.protocol
        if self.t == p["fail_at_step"] and self.episode.episode_index == 0 and self.episode.task_index == 0:
            if p["crash_always"] or (p["crash_once_dir"] and self._first_time(p["crash_once_dir"], "crash")):
                os.kill(os.getpid(), signal.SIGKILL)
            if p["hang_once_dir"] and self._first_time(p["hang_once_dir"], "hang"):
                time.sleep(3600)
        if p["step_sleep_s"]:
            time.sleep(p["step_sleep_s"])
        if p["force_advance_step"] and self.t == p["force_advance_step"]:
            self.advance_subtask()
        self.pos = self.pos + np.clip(action[:2], -1, 1) * 0.1
        last = self.subtask + 1 >= int(p["subtasks"])
        success = last and bool(np.linalg.norm(self.pos - self.goal) < p["tolerance"])
        return StepOutcome(obs=self._obs(), success=success)


class GreedyPolicy(Policy):
    """Moves toward the goal it reads from the state; solves every toy task."""

    name = "toy-greedy"

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, name=self.name)

    def act(self, state: Any, obs: Observation) -> np.ndarray:
        pos, goal = obs["state"][:2], obs["state"][2:4]
        action = np.zeros(7)
        action[:2] = np.clip((goal - pos) / 0.1, -1, 1)
        return action


class TerminatingPolicy(GreedyPolicy):
    """Greedy, plus an RT-1 style terminate flag: raised at the goal, or from call ``terminate_at`` on."""

    name = "toy-terminating"

    def __init__(self, terminate_at: int = 0):
        self.terminate_at = terminate_at
        self.starts: list[tuple[str, dict[str, Any]]] = []
        self.ends: list[str] = []

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, name=self.name, terminate=True)

    def start_episode(self, instruction: str, info: dict[str, Any]) -> Any:
        self.starts.append((instruction, info))
        return {"calls": 0}

    def act(self, state: Any, obs: Observation) -> np.ndarray:
        state["calls"] += 1
        pos, goal = obs["state"][:2], obs["state"][2:4]
        # not on the first call of a (sub)episode: the frame it gets is the one from before the switch
        at_goal = state["calls"] > 1 and bool(np.linalg.norm(goal - pos) < 0.03)
        done = at_goal or 0 < self.terminate_at <= state["calls"]
        return np.append(super().act(state, obs), 1.0 if done else 0.0)

    def end_episode(self, state: Any, result: dict[str, Any]) -> None:
        self.ends.append(result["status"])


class NanPolicy(Policy):
    name = "toy-nan"

    def act(self, state: Any, obs: Observation) -> np.ndarray:
        return np.full(7, np.nan)


class NeedsWristPolicy(GreedyPolicy):
    name = "toy-needs-wrist"

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, name=self.name, observation_keys=("agentview", "wrist"))


COLORS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


class ToyQASuite(DatasetSuite):
    """Name the colour of a flat image: exact-match scoring, 3 subsets x 5 items."""

    batch_size = 4

    def __init__(self) -> None:
        self.spec = SuiteSpec(name="toy-qa", version="1", backend="dataset",
                              protocol={"max_new_tokens": 8, "max_steps": 1})

    def tasks(self) -> list[TaskSpec]:
        return [TaskSpec(suite="toy-qa", task_id=f"subset_{i}", instruction="What colour is this image?",
                         index=i, n_init_states=5, max_steps=1) for i in range(3)]

    def sample(self, episode: EpisodeSpec) -> Sample:
        name = list(COLORS)[(episode.task_index + episode.episode_index) % 3]
        image = np.zeros((16, 16, 3), dtype=np.uint8) + np.array(COLORS[name], dtype=np.uint8)
        return Sample(TextRequest(episode.instruction, [image], dict(episode.protocol)), references=[name])

    def score(self, sample: Sample, answer: str, episode: EpisodeSpec) -> EpisodeResult:
        correct = answer.strip().lower() == sample.references[0]
        return EpisodeResult(status="success" if correct else "failure", success=correct, steps=1,
                             metrics={"exact_match": float(correct)},
                             outputs={"answer": answer, "references": sample.references})


class PixelReader(TextModel):
    """Answers correctly except for green, which it calls 'lime'."""

    name = "toy-pixel-reader"

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.calls = 0

    def generate(self, requests: list[TextRequest]) -> list[str]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("model exploded")
        out = []
        for request in requests:
            rgb = tuple(int(v) for v in request.images[0][0, 0])
            name = next(k for k, v in COLORS.items() if v == rgb)
            out.append("lime" if name == "green" else name)
        return out


registry.suites.register("toy", ToySuite)
registry.suites.register("toy-qa", ToyQASuite)
registry.adapters.register("toy-pixel-reader", PixelReader)
registry.adapters.register("toy-needs-wrist", NeedsWristPolicy)
registry.adapters.register("toy-greedy", GreedyPolicy)
registry.adapters.register("toy-nan", NanPolicy)
registry.adapters.register("toy-terminating", TerminatingPolicy)

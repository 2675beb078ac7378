"""Synthetic run directories with known success rates (tests, demos, power checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from vlaeval.harness.specs import EpisodeResult, EpisodeSpec, canonical_json
from vlaeval.harness.store import RunStore
from vlaeval.reports.load import prepare

FIXED_METADATA: dict[str, Any] = {
    "vlaeval_version": "0.1.0",
    "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
    "packages": {"numpy": "1.26.4", "pandas": "2.2.2", "vlaeval": "0.1.0"},
    "host": {"hostname": "testhost", "platform": "Linux-x86_64", "python": "3.11.9", "cpus": 8},
    "argv": ["vlaeval", "run"],
    "started": "2025-01-01T00:00:00+0000",
}


@dataclass(frozen=True)
class Outcome:
    """One synthetic episode."""

    suite: str
    task_id: str
    episode_index: int
    seed: int
    success: bool
    status: str = ""
    task_index: int = 0
    steps: int = 10
    metrics: dict[str, Any] = field(default_factory=dict)
    video: str | None = None
    instruction: str = ""


def simulate(
    rates: dict[str, dict[str, float]], seeds: Iterable[int], episodes_per_task: int, rng: np.random.Generator
) -> list[Outcome]:
    """Bernoulli outcomes: ``rates[suite][task]`` is the success probability."""
    return [
        Outcome(suite, task, index, int(seed), bool(rng.random() < p), task_index=t)
        for suite, tasks in rates.items()
        for seed in seeds
        for index in range(episodes_per_task)
        for t, (task, p) in enumerate(tasks.items())
    ]


def write_run(
    run_dir: str | Path,
    outcomes: Iterable[Outcome],
    model: str = "model-a",
    fingerprint: str | None = None,
    protocol: dict[str, Any] | None = None,
    suite_versions: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str = "run-0",
) -> Path:
    """Write a run directory whose ``runs`` rows are deterministic (fixed ids and metadata)."""
    outcomes = list(outcomes)
    fingerprint = fingerprint or f"fp-{model}"
    protocol = protocol or {"max_steps": 100}
    versions = suite_versions or {}
    store = RunStore(run_dir)
    try:  # runs rows are inserted directly: start_run would stamp a random id and the clock
        for suite in sorted({o.suite for o in outcomes}):
            meta = {**FIXED_METADATA, **(metadata or {}),
                    "suite": {"name": suite, "version": versions.get(suite, "1"), "backend": "synthetic",
                              "protocol": protocol},
                    "model": {"name": model, "fingerprint": fingerprint, "spec": {}}}
            store._db.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, config_json, metadata_json) VALUES (?, 0, 0, ?, ?)",
                (f"{run_id}-{suite}", canonical_json({"suite": suite, "model": model}), canonical_json(meta)),
            )
        for o in outcomes:
            spec = EpisodeSpec(suite=o.suite, suite_version=versions.get(o.suite, "1"), task_id=o.task_id,
                               episode_index=o.episode_index, seed=o.seed,
                               max_steps=int(protocol.get("max_steps", 100)),
                               instruction=o.instruction or o.task_id.replace("_", " "), protocol=protocol,
                               task_index=o.task_index)
            status = o.status or ("success" if o.success else "failure")
            result = EpisodeResult(status=status, success=o.success and status == "success", steps=o.steps,
                                   metrics=o.metrics, video=o.video, error="boom" if status == "error" else None,
                                   duration_s=1.0)
            store.write_episode(f"{run_id}-{o.suite}", spec.key(fingerprint), spec, model, fingerprint, result, 1)
    finally:
        store.close()
    return Path(run_dir)


def episode_frame(
    outcomes: Iterable[Outcome], model: str = "model-a", protocol: dict[str, Any] | None = None
) -> pd.DataFrame:
    """The episode table :func:`~vlaeval.reports.load.read_runs` would return, without a store (fast)."""

    protocol = protocol or {"max_steps": 100}
    fingerprint = f"fp-{model}"
    rows = [
        {"run_dir": model, "key": f"{fingerprint}/{o.suite}/{o.task_id}/{o.episode_index}/{o.seed}", "run_id": "run-0",
         "suite": o.suite, "suite_version": "1", "task_id": o.task_id, "task_index": o.task_index,
         "episode_index": o.episode_index, "seed": o.seed, "instruction": o.instruction, "model": model,
         "model_fingerprint": fingerprint, "protocol": protocol,
         "status": o.status or ("success" if o.success else "failure"),
         "success": o.success, "steps": o.steps, "metrics": o.metrics, "video": o.video, "error": None,
         "attempts": 1, "duration_s": 1.0, "finished_at": 0.0}
        for o in outcomes
    ]
    return prepare(pd.DataFrame(rows))

"""``vlaeval run``: plan episodes, skip finished ones, execute, store every result.

The driver owns the store and (for adapters that live in this process) a policy
server the workers connect to. Each result is committed the moment it arrives, so a
crash loses at most the episodes in flight; running the same command again resumes.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from vlaeval.harness import registry
from vlaeval.harness.config import ConfigError, RunConfig
from vlaeval.harness.envs import backend_python
from vlaeval.harness.executors.base import EpisodeJob, Executor, JobOutcome
from vlaeval.harness.metadata import run_metadata
from vlaeval.harness.model_source import ModelError, ModelSource, resolve_model
from vlaeval.harness.policy import LocalPolicyHandle
from vlaeval.harness.progress import RunProgress
from vlaeval.harness.recording import Recording
from vlaeval.harness.specs import EpisodeSpec
from vlaeval.harness.store import RunStore
from vlaeval.harness.suite import Selection, Suite
from vlaeval.harness.worker.supervisor import WorkerConfig


@dataclass
class RunSummary:
    run_dir: Path
    planned: int
    skipped: int
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def ran(self) -> int:
        return sum(self.counts.values())


def plan_episodes(suite: Suite, config: RunConfig) -> list[EpisodeSpec]:
    """Every episode the run's selection asks for (validates tasks and protocol overrides)."""
    selection = Selection(
        seeds=config.seeds,
        episodes_per_task=config.episodes_per_task,
        episode_indices=config.episodes,
        tasks=config.tasks,
        limit=config.limit,
        protocol_overrides=config.protocol,
    )
    return suite.episodes(selection)


def plan_jobs(
    episodes: list[EpisodeSpec], config: RunConfig, model: ModelSource, store: RunStore
) -> tuple[int, list[EpisodeJob]]:
    """The planned episodes minus those whose key is already in the store."""
    finished = store.finished_keys()
    jobs = []
    for episode in episodes:
        key = episode.key(model.fingerprint)
        if key not in finished:
            jobs.append(EpisodeJob(key=key, episode=episode, recording=_recording(config, store.run_dir, key)))
    return len(episodes), jobs


def _recording(config: RunConfig, run_dir: Path, key: str) -> Recording:
    return Recording(
        video_path=str(run_dir / "videos" / f"{key}.mp4") if config.record_video else None,
        demo_path=str(run_dir / "demos" / "raw" / f"{key}.npz") if config.record_demos else None,
    )


def make_executor(config: RunConfig, worker: WorkerConfig, model: ModelSource) -> Executor:
    if config.executor == "inprocess":
        from vlaeval.harness.executors.inprocess import InProcessExecutor
        from vlaeval.harness.protocol.client import connect_policy

        def handle_factory():
            return connect_policy(model.url) if model.url else LocalPolicyHandle(model.policy)

        return InProcessExecutor(worker, handle_factory, retries=config.retries)
    if config.executor == "ray":
        from vlaeval.harness.executors.ray_executor import RayExecutor

        return RayExecutor(worker, workers=config.workers, retries=config.retries, address=config.address)
    from vlaeval.harness.executors.local import LocalPoolExecutor

    return LocalPoolExecutor(worker, workers=config.workers, retries=config.retries)


def run_evaluation(config: RunConfig, console: Console | None = None) -> RunSummary:
    console = console or Console(stderr=True, soft_wrap=True)
    suite: Suite = registry.suites.create(config.suite)
    model = resolve_model(config.model, config.model_args)
    if suite.kind == "sim" and model.spec.action_dim != suite.action_dim:
        raise ConfigError(
            f"{model.name} declares {model.spec.action_dim}-d actions but {suite.spec.name} executes "
            f"{suite.action_dim}-d actions"
        )
    episodes = plan_episodes(suite, config)  # bad selections fail before anything is written
    run_dir = config.output_dir()
    store = RunStore(run_dir)
    try:
        planned, jobs = plan_jobs(episodes, config, model, store)
        summary = RunSummary(run_dir=run_dir, planned=planned, skipped=planned - len(jobs))
        if summary.skipped:
            console.print(f"resuming {run_dir}: {summary.skipped} of {planned} episodes already finished")
        if not jobs:
            console.print(f"nothing to run: all {planned} episodes are in {store.path}")
            return summary
        _run_jobs(config, suite, model, store, jobs, summary, console)
        return summary
    finally:
        store.close()


def _run_jobs(
    config: RunConfig,
    suite: Suite,
    model: ModelSource,
    store: RunStore,
    jobs: list[EpisodeJob],
    summary: RunSummary,
    console: Console,
) -> None:
    if suite.kind == "dataset":
        from vlaeval.harness.executors.dataset import DatasetExecutor
        from vlaeval.harness.text import TextModel

        if not isinstance(model.policy, TextModel):
            raise ModelError(f"{model.name} does not answer text; {suite.spec.name} needs a text model")
        run_id = store.start_run(config.model_dump(), _metadata(suite, model, config))
        _execute(DatasetExecutor(suite, model.policy), store, run_id, model, jobs, summary, console, suite)
        return
    python = sys.executable if config.executor == "inprocess" else backend_python(suite.backend_env)
    run_id = store.start_run(config.model_dump(), _metadata(suite, model, config))
    server = None
    policy_url = model.url
    if policy_url is None and config.executor != "inprocess":
        from vlaeval.harness.protocol.server import PolicyServer

        server = PolicyServer(model.policy, host=config.policy_host, port=0,
                              max_batch=config.max_batch, max_wait_ms=config.max_wait_ms)
        server.start_in_thread()
        policy_url = server.url
    worker = WorkerConfig(
        python=python,
        backend=suite.backend_class,
        policy_url=policy_url or "",
        options=suite.backend_options(),
        watchdog_s=config.watchdog_s,
        log_dir=str(store.run_dir / "logs"),
    )
    demos = None
    if config.record_demos:
        from vlaeval.harness.demos import DemoWriter

        demos = DemoWriter(config.record_demos, suite=suite.spec.name)
    try:
        _execute(make_executor(config, worker, model), store, run_id, model, jobs, summary, console, suite, demos)
    finally:
        if server is not None:
            server.stop()
        if demos is not None:
            demos.close()


def _execute(
    executor: Executor,
    store: RunStore,
    run_id: str,
    model: ModelSource,
    jobs: list[EpisodeJob],
    summary: RunSummary,
    console: Console,
    suite: Suite,
    demos: Any = None,
) -> None:
    """Run ``jobs`` on ``executor``, committing each outcome to the store as it arrives.

    ``demos`` (a :class:`~vlaeval.harness.demos.DemoWriter`) receives every episode that
    left a demonstration file.
    """
    progress = RunProgress(total=len(jobs), console=console, title=suite.spec.name)

    def on_result(outcome: JobOutcome) -> None:
        store.write_episode(run_id, outcome.job.key, outcome.job.episode, model.name, model.fingerprint,
                            outcome.result, outcome.attempts)
        summary.counts[outcome.result.status] += 1
        if demos is not None and outcome.result.outputs.get("demo"):
            demos.add_episode(outcome.result.outputs["demo"], outcome.job.episode, outcome.result)
        progress.episode_done(outcome)

    def on_attempt_failed(job: EpisodeJob, attempt: int, reason: str) -> None:
        store.record_attempt(run_id, job.key, attempt, reason)
        progress.attempt_failed()

    try:
        with progress:
            executor.run(jobs, on_result, on_attempt_failed)
    finally:
        executor.stop()
        store.finish_run(run_id, {"backend": executor.backend_info})


def _metadata(suite: Suite, model: ModelSource, config: RunConfig) -> dict[str, Any]:
    meta = run_metadata()
    meta.update(
        suite={"name": suite.spec.name, "version": suite.spec.version, "backend": suite.spec.backend,
               "protocol": suite.protocol(config.protocol)},
        model={"name": model.name, "fingerprint": model.fingerprint,
               "spec": model.spec.to_dict() if suite.kind == "sim" else {}},
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    return meta

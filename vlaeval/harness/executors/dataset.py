"""Executor for dataset suites: batches of samples answered by a text model in the driver."""

from __future__ import annotations

import time

from vlaeval.harness.executors.base import AttemptSink, EpisodeJob, Executor, JobOutcome, ResultSink
from vlaeval.harness.specs import EpisodeResult
from vlaeval.harness.text import DatasetSuite, TextModel
from vlaeval.harness.worker.supervisor import WorkerConfig


class DatasetExecutor(Executor):
    """Answer ``batch_size`` samples per model call; a failed batch errors only its samples."""

    def __init__(self, suite: DatasetSuite, model: TextModel, batch_size: int | None = None):
        super().__init__(WorkerConfig(python="", backend="", policy_url=""), workers=1, retries=0)
        self.suite = suite
        self.model = model
        self.batch_size = max(1, batch_size or suite.batch_size)

    def run(self, jobs: list[EpisodeJob], on_result: ResultSink, on_attempt_failed: AttemptSink) -> None:
        for start in range(0, len(jobs), self.batch_size):
            if self.stop_event.is_set():
                return
            batch = jobs[start : start + self.batch_size]
            began = time.monotonic()
            samples = [self.suite.sample(job.episode) for job in batch]
            try:
                answers = self.model.generate([s.request for s in samples])
                if len(answers) != len(batch):
                    raise RuntimeError(f"model returned {len(answers)} answers for {len(batch)} requests")
            except Exception as exc:  # the model failed this batch: record, keep going
                reason = f"{type(exc).__name__}: {exc}"
                for job in batch:
                    on_result(JobOutcome(job, EpisodeResult.failed(reason), attempts=1))
                continue
            elapsed = (time.monotonic() - began) / len(batch)
            for job, sample, answer in zip(batch, samples, answers):
                result = self.suite.score(sample, answer, job.episode)
                result.duration_s = round(elapsed, 4)
                on_result(JobOutcome(job, result, attempts=1))

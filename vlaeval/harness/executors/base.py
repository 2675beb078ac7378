"""What every executor shares: jobs, outcomes, and the retry rule."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

from vlaeval.harness.recording import Recording
from vlaeval.harness.specs import EpisodeResult, EpisodeSpec
from vlaeval.harness.worker.supervisor import WorkerConfig, WorkerDied


@dataclass
class EpisodeJob:
    key: str
    episode: EpisodeSpec
    recording: Recording = field(default_factory=Recording)


@dataclass
class JobOutcome:
    job: EpisodeJob
    result: EpisodeResult
    attempts: int
    attempt_errors: list[str] = field(default_factory=list)


ResultSink = Callable[[JobOutcome], None]
AttemptSink = Callable[[EpisodeJob, int, str], None]
"""Called for every failed attempt: (job, attempt number from 1, reason)."""


class Executor(ABC):
    """Runs episode jobs and hands each outcome to ``on_result`` as soon as it exists."""

    def __init__(self, worker: WorkerConfig, workers: int = 1, retries: int = 1):
        self.worker = worker
        self.workers = max(1, int(workers))
        self.retries = max(0, int(retries))
        self.stop_event = threading.Event()
        self.backend_info: dict[str, Any] = {}
        """What the first started backend reported (versions, renderer): run metadata."""

    @abstractmethod
    def run(self, jobs: list[EpisodeJob], on_result: ResultSink, on_attempt_failed: AttemptSink) -> None: ...

    def stop(self) -> None:
        self.stop_event.set()


Attempt = Callable[[EpisodeJob], EpisodeResult]
"""Runs one attempt of a job; raises :class:`WorkerDied` when the attempt is lost."""


class RetryTracker:
    """Runs a job until it yields a result or its retries are used up."""

    def __init__(self, retries: int, on_attempt_failed: AttemptSink, stop_event: threading.Event):
        self.retries = retries
        self.on_attempt_failed = on_attempt_failed
        self.stop_event = stop_event

    def failure(self, job: EpisodeJob, errors: list[str], reason: str) -> JobOutcome | None:
        """Record a lost attempt; the final ``error`` outcome once retries are used up."""
        errors.append(reason)
        self.on_attempt_failed(job, len(errors), reason)
        if len(errors) > self.retries:
            failed = EpisodeResult.failed(f"gave up after {len(errors)} attempts: {reason}")
            return JobOutcome(job, failed, attempts=len(errors), attempt_errors=list(errors))
        return None

    @staticmethod
    def success(job: EpisodeJob, result: EpisodeResult, errors: list[str]) -> JobOutcome:
        return JobOutcome(job, result, attempts=len(errors) + 1, attempt_errors=list(errors))

    def run(self, job: EpisodeJob, attempt: Attempt) -> JobOutcome | None:
        """The job's outcome (an ``error`` result after the last retry); None if stopped."""
        errors: list[str] = []
        while not self.stop_event.is_set():
            try:
                result = attempt(job)
            except WorkerDied as exc:
                outcome = self.failure(job, errors, str(exc))
                if outcome is not None:
                    return outcome
                continue
            return self.success(job, result, errors)
        return None

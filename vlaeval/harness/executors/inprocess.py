"""In-process executor for debugging: the backend runs in the driver's own interpreter.

Breakpoints and tracebacks work directly; there is no isolation, so the simulator must
be importable in the driver's environment.
"""

from __future__ import annotations

from typing import Callable

from vlaeval.harness.backend import SimBackend, make_backend
from vlaeval.harness.episode import run_recorded_episode
from vlaeval.harness.executors.base import AttemptSink, EpisodeJob, Executor, ResultSink, RetryTracker
from vlaeval.harness.policy import PolicyHandle
from vlaeval.harness.specs import EpisodeResult
from vlaeval.harness.worker.supervisor import WorkerConfig, WorkerDied


class InProcessExecutor(Executor):
    def __init__(self, worker: WorkerConfig, handle_factory: Callable[[], PolicyHandle], retries: int = 1):
        super().__init__(worker, workers=1, retries=retries)
        self.handle_factory = handle_factory
        self._backend: SimBackend | None = None

    def run(self, jobs: list[EpisodeJob], on_result: ResultSink, on_attempt_failed: AttemptSink) -> None:
        tracker = RetryTracker(self.retries, on_attempt_failed, self.stop_event)
        handle = self.handle_factory()

        def attempt(job: EpisodeJob) -> EpisodeResult:
            if self._backend is None:
                self._backend = make_backend(self.worker.backend, self.worker.options)
                self.backend_info = self.backend_info or self._backend.describe()
            try:
                return run_recorded_episode(self._backend, handle, job.episode, job.recording)
            except Exception as exc:  # a simulator exception: fresh backend next attempt
                self._close_backend()
                raise WorkerDied(f"simulator error: {type(exc).__name__}: {exc}") from exc

        try:
            for job in jobs:
                outcome = tracker.run(job, attempt)
                if outcome is None:
                    break
                on_result(outcome)
        finally:
            handle.close()
            self._close_backend()

    def _close_backend(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

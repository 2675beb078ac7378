"""The default executor: a pool of sim worker processes on this machine.

Each slot is a driver thread that owns one :class:`WorkerProcess`; a worker that dies
is replaced by a fresh one and its episode retried.
"""

from __future__ import annotations

import logging
import queue
import threading

from vlaeval.harness.executors.base import AttemptSink, EpisodeJob, Executor, ResultSink, RetryTracker
from vlaeval.harness.specs import EpisodeResult
from vlaeval.harness.worker.supervisor import WorkerDied, WorkerProcess

log = logging.getLogger(__name__)


class LocalPoolExecutor(Executor):
    def run(self, jobs: list[EpisodeJob], on_result: ResultSink, on_attempt_failed: AttemptSink) -> None:
        pending: queue.Queue[EpisodeJob] = queue.Queue()
        for job in jobs:
            pending.put(job)
        tracker = RetryTracker(self.retries, on_attempt_failed, self.stop_event)
        failures: list[BaseException] = []
        threads = [
            threading.Thread(
                target=self._slot, args=(i, pending, tracker, on_result, failures), name=f"vlaeval-worker-{i}", daemon=True
            )
            for i in range(min(self.workers, max(1, len(jobs))))
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.2)
        except KeyboardInterrupt:
            self.stop()
            raise
        if failures:
            raise failures[0]

    def _slot(
        self,
        index: int,
        pending: queue.Queue[EpisodeJob],
        tracker: RetryTracker,
        on_result: ResultSink,
        failures: list[BaseException],
    ) -> None:
        worker = WorkerProcess(self.worker, name=f"worker-{index}")

        def attempt(job: EpisodeJob) -> EpisodeResult:
            try:
                result = worker.run_episode(job.episode, job.recording)
            except WorkerDied as exc:
                worker.kill()
                log.warning("%s: %s (episode %s)", worker.name, exc, job.key)
                raise
            self.backend_info = self.backend_info or worker.info.get("backend", {})
            return result

        try:
            while not self.stop_event.is_set():
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return
                outcome = tracker.run(job, attempt)
                if outcome is not None:
                    on_result(outcome)
        except BaseException as exc:  # surface driver-side bugs instead of hanging
            failures.append(exc)
            self.stop()
        finally:
            worker.stop()

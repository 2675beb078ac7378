"""Ray executor: each Ray actor holds one sim worker (and so one simulator environment).

The actor supervises a :class:`WorkerProcess` in the backend's own environment on
whichever node Ray places it; results stream back to the driver, which alone writes
the store. Works with a local Ray instance (``address=None``) or a cluster
(``address="auto"`` or ``ray://...``); the policy server URL must then be reachable
from the nodes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vlaeval.harness.executors.base import (
    AttemptSink,
    EpisodeJob,
    Executor,
    JobOutcome,
    ResultSink,
    RetryTracker,
)
from vlaeval.harness.recording import Recording
from vlaeval.harness.specs import EpisodeResult, EpisodeSpec
from vlaeval.harness.worker.supervisor import WorkerConfig, WorkerDied, WorkerProcess


class SimWorkerActor:
    """Body of the Ray actor (wrapped with ``ray.remote`` at run time)."""

    def __init__(self, config: dict[str, Any], name: str):
        self.worker = WorkerProcess(WorkerConfig(**config), name=name)

    def run(self, episode: dict[str, Any], recording: dict[str, Any]) -> dict[str, Any]:
        try:
            result = self.worker.run_episode(EpisodeSpec.from_dict(episode), Recording.from_dict(recording))
        except WorkerDied as exc:
            self.worker.kill()
            return {"died": str(exc)}
        return {"result": result.to_dict(), "backend": self.worker.info.get("backend", {})}

    def stop(self) -> None:
        self.worker.stop()


class RayExecutor(Executor):
    def __init__(self, worker: WorkerConfig, workers: int = 1, retries: int = 1, address: str | None = None,
                 init_kwargs: dict[str, Any] | None = None):
        super().__init__(worker, workers=workers, retries=retries)
        self.address = address
        self.init_kwargs = init_kwargs or {}

    def run(self, jobs: list[EpisodeJob], on_result: ResultSink, on_attempt_failed: AttemptSink) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError("--executor ray needs Ray: pip install 'vlaeval[ray]'") from None
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, **self.init_kwargs)
        actor_cls = ray.remote(num_cpus=1, max_restarts=0)(SimWorkerActor)
        config = dataclasses.asdict(self.worker)
        actors = [actor_cls.remote(config, f"ray-worker-{i}") for i in range(min(self.workers, max(1, len(jobs))))]
        tracker = RetryTracker(self.retries, on_attempt_failed, self.stop_event)
        pending = list(reversed(jobs))
        idle = list(range(len(actors)))
        inflight: dict[Any, tuple[int, EpisodeJob, list[str]]] = {}
        attempt_errors: dict[str, list[str]] = {}
        try:
            while (pending or inflight) and not self.stop_event.is_set():
                while pending and idle:
                    slot, job = idle.pop(), pending.pop()
                    ref = actors[slot].run.remote(job.episode.to_dict(), job.recording.to_dict())
                    inflight[ref] = (slot, job, attempt_errors.setdefault(job.key, []))
                done, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
                for ref in done:
                    slot, job, errors = inflight.pop(ref)
                    idle.append(slot)
                    try:
                        reply = ray.get(ref)
                    except ray.exceptions.RayActorError as exc:
                        actors[slot] = actor_cls.remote(config, f"ray-worker-{slot}")
                        reply = {"died": f"ray actor died: {exc}"}
                    self.backend_info = self.backend_info or reply.get("backend", {})
                    outcome = self._settle(tracker, job, errors, reply)
                    if outcome is None:
                        pending.append(job)  # retry next, on whichever actor frees up
                    else:
                        on_result(outcome)
        finally:
            for actor in actors:
                try:
                    ray.get(actor.stop.remote(), timeout=30)
                except Exception:  # an actor that is already gone needs no stopping
                    pass
            if started_here:
                ray.shutdown()

    @staticmethod
    def _settle(tracker: RetryTracker, job: EpisodeJob, errors: list[str], reply: dict[str, Any]) -> JobOutcome | None:
        """Turn an actor reply into an outcome, or None when the job must run again."""
        if "result" in reply:
            return tracker.success(job, EpisodeResult.from_dict(reply["result"]), errors)
        return tracker.failure(job, errors, reply["died"])

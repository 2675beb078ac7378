"""Executors: where episodes run (in-process, local worker pool, Ray)."""

from vlaeval.harness.executors.base import EpisodeJob, Executor, JobOutcome

EXECUTORS = ("local", "inprocess", "ray")

__all__ = ["EXECUTORS", "EpisodeJob", "Executor", "JobOutcome"]

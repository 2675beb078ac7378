"""Models that answer (captioning, QA, multiple choice) and suites made of samples.

Multimodal suites take the same path as robot suites up to the executor: episodes are
planned, keyed and stored the same way, but an "episode" is one dataset sample and no
sim worker is involved. The model answers batches of :class:`TextRequest` and the suite
scores each answer; corpus-level metrics (BLEU, CIDEr, ...) are computed from the
stored outputs by :meth:`DatasetSuite.corpus_metrics`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlaeval.harness.specs import EpisodeResult, EpisodeSpec
from vlaeval.harness.suite import Suite


@dataclass
class TextRequest:
    """One prompt with its images (HWC uint8), as a model sees it."""

    prompt: str
    images: list[np.ndarray] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    """Generation options from the suite protocol (max_new_tokens, system prompt...)."""


class TextModel(ABC):
    """Anything that answers: Hugging Face VLMs, remote chat endpoints, InstructVLA's chat path."""

    name: str = "text-model"

    def fingerprint(self) -> str:
        return self.name

    @abstractmethod
    def generate(self, requests: list[TextRequest]) -> list[str]:
        """One answer per request, in order."""

    def close(self) -> None:
        pass


@dataclass
class Sample:
    """A dataset item: the request to send plus what scoring needs."""

    request: TextRequest
    references: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class DatasetSuite(Suite):
    """Base class for suites whose episodes are dataset samples scored in the driver."""

    kind = "dataset"
    batch_size: int = 8

    @abstractmethod
    def sample(self, episode: EpisodeSpec) -> Sample:
        """Load the sample an episode refers to (task = subset, episode_index = item)."""

    @abstractmethod
    def score(self, sample: Sample, answer: str, episode: EpisodeSpec) -> EpisodeResult:
        """Per-sample result; put the answer and references in ``outputs``."""

    def corpus_metrics(self, episodes: list[dict[str, Any]]) -> dict[str, float]:
        """Metrics over all stored episodes of a run (e.g. CIDEr); none by default."""
        return {}

    def headline(self) -> tuple[str, str] | None:
        """``(leaderboard column, corpus metric)`` of the number papers report for this suite
        (e.g. ``("mme-p", "perception")``); ``None`` leaves the success rate as its cell."""
        return None

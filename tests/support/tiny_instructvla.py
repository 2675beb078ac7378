"""A tiny random-weight InstructVLA checkpoint on disk, for end-to-end tests of the real loading path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def tiny_checkpoint(directory: Path, stats_key: str, **config: Any) -> Path:
    """Save a ``tiny``-preset model with random normalisation statistics under ``stats_key``."""
    from vlaeval.models.instructvla.checkpoint import save_checkpoint
    from vlaeval.models.instructvla.config import get_config
    from vlaeval.models.instructvla.model import build_model
    from vlaeval.models.instructvla.normalization import dataset_statistics

    rng = np.random.default_rng(0)
    stats = {stats_key: dataset_statistics(rng.normal(size=(100, 7)), rng.normal(size=(100, 8)), 3)}
    return save_checkpoint(build_model(get_config("tiny", **config), norm_stats=stats, seed=0), directory)

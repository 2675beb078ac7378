"""BOUNDS_Q99 action/proprio normalization (OpenVLA/InstructVLA convention).

Statistics follow upstream ``dataset_statistics.json``: ``{dataset_name: {"action": {q01, q99,
mask, min, max, mean, std}, "proprio": {...}, "num_transitions", "num_trajectories"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-8
GRIPPER_MASK = (True, True, True, True, True, True, False)
"""Default action mask: the absolute gripper dimension is not normalized."""


@dataclass(frozen=True)
class BoundsStats:
    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray
    constant: np.ndarray
    """Dimensions whose min == max (normalized to 0)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], default_mask: bool = True) -> "BoundsStats":
        q01 = np.asarray(data["q01"], dtype=np.float64)
        q99 = np.asarray(data["q99"], dtype=np.float64)
        mask = np.asarray(data.get("mask", np.full(q01.shape, default_mask)), dtype=bool)
        lo = np.asarray(data.get("min", q01), dtype=np.float64)
        hi = np.asarray(data.get("max", q99), dtype=np.float64)
        return cls(q01=q01, q99=q99, mask=mask, constant=lo == hi)


def normalize(values: np.ndarray, stats: BoundsStats) -> np.ndarray:
    """``clip(2 (x - q01) / (q99 - q01 + eps) - 1, -1, 1)`` on masked dims; constant dims -> 0."""
    values = np.asarray(values, dtype=np.float64)
    scaled = np.clip(2.0 * (values - stats.q01) / (stats.q99 - stats.q01 + EPS) - 1.0, -1.0, 1.0)
    out = np.where(stats.mask, scaled, values)
    return np.where(stats.constant & stats.mask, 0.0, out)


def unnormalize_actions(normalized: np.ndarray, stats: BoundsStats, binarize_gripper: bool = True) -> np.ndarray:
    """Inverse of :func:`normalize` after clipping to [-1, 1]; the gripper becomes {0, 1} (>= 0.5 -> 1)."""
    actions = np.clip(np.asarray(normalized, dtype=np.float64), -1.0, 1.0)
    if binarize_gripper:
        actions[..., -1] = np.where(actions[..., -1] < 0.5, 0.0, 1.0)
    restored = 0.5 * (actions + 1.0) * (stats.q99 - stats.q01) + stats.q01
    return np.where(stats.mask, restored, actions)


def neutral_padding(stats: BoundsStats) -> np.ndarray:
    """Normalized value of an all-zero action (used to pad relative dims past an episode's end)."""
    return normalize(np.zeros_like(stats.q01), stats)


def pad_chunk(normalized_chunk: np.ndarray, valid: np.ndarray, stats: BoundsStats) -> np.ndarray:
    """Fill invalid steps: masked (relative) dims get the neutral value, others repeat the last valid step."""
    chunk = np.array(normalized_chunk, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if valid.all():
        return chunk
    last = chunk[np.flatnonzero(valid)[-1]] if valid.any() else np.zeros(chunk.shape[-1])
    neutral = neutral_padding(stats)
    chunk[~valid] = np.where(stats.mask, neutral, last)
    return chunk


def compute_stats(values: np.ndarray, mask: tuple[bool, ...] | None = None) -> dict[str, Any]:
    """Statistics of one array ``(N, D)`` in the upstream JSON layout."""
    values = np.asarray(values, dtype=np.float64)
    dim = values.shape[-1]
    return {
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
        "q01": np.quantile(values, 0.01, axis=0).tolist(),
        "q99": np.quantile(values, 0.99, axis=0).tolist(),
        "mask": list(mask) if mask is not None else [True] * dim,
    }


def dataset_statistics(actions: np.ndarray, proprio: np.ndarray | None, num_trajectories: int) -> dict[str, Any]:
    """One dataset's entry of ``dataset_statistics.json``."""
    action_mask = GRIPPER_MASK if actions.shape[-1] == len(GRIPPER_MASK) else None
    entry: dict[str, Any] = {
        "action": compute_stats(actions, action_mask),
        "num_transitions": int(len(actions)),
        "num_trajectories": int(num_trajectories),
    }
    if proprio is not None:
        entry["proprio"] = compute_stats(proprio)
    return entry


def select_key(norm_stats: dict[str, Any], unnorm_key: str | None) -> str:
    """Resolve which dataset's statistics to use; a clear error if ambiguous or unknown."""
    if not norm_stats:
        raise KeyError("checkpoint has no normalization statistics (dataset_statistics.json); actions cannot be unnormalized")
    if unnorm_key is None:
        if len(norm_stats) != 1:
            raise KeyError(f"checkpoint has statistics for several datasets; pass unnorm_key (one of {sorted(norm_stats)})")
        return next(iter(norm_stats))
    if unnorm_key not in norm_stats:
        raise KeyError(f"unnorm_key {unnorm_key!r} not in checkpoint statistics (known: {sorted(norm_stats)})")
    return unnorm_key

"""Dataset suites' own benchmark scores (MMStar Overall, MME perception, CIDEr, ...) for reports.

A dataset suite scores every item into the store and computes the benchmark's corpus
metrics from the stored episodes (:meth:`~vlaeval.harness.text.DatasetSuite.corpus_metrics`).
Here they are recomputed per model and seed, so they appear in reports and leaderboards
beside robot success rates: mean across seeds ± SE across seeds, like every other cell.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import pandas as pd

from vlaeval.harness import registry
from vlaeval.reports import stats

SCORE_COLUMNS = ("model", "model_fingerprint", "suite", "metric", "mean", "se", "n_seeds")
RECORD_FIELDS = ("key", "suite", "task_id", "task_index", "episode_index", "seed", "status", "success",
                 "protocol", "metrics", "outputs")


@lru_cache(maxsize=None)
def dataset_suite(name: str) -> Any | None:
    """The registered dataset suite called ``name``; ``None`` for robot suites and unknown names."""
    try:
        suite = registry.suites.create(name)
    except Exception:  # noqa: BLE001 - a suite this install cannot build is simply not a dataset suite here
        return None
    return suite if getattr(suite, "kind", "sim") == "dataset" else None


def headline_of(name: str) -> tuple[str, str] | None:
    """``(leaderboard column, corpus metric)`` of a dataset suite, or ``None``."""
    suite = dataset_suite(name)
    return suite.headline() if suite is not None else None


def benchmark_scores(episodes: pd.DataFrame) -> pd.DataFrame:
    """One row per model, dataset suite and corpus metric: mean across seeds ± SE across seeds."""
    rows: list[dict[str, Any]] = []
    for (fingerprint, suite_name), frame in episodes.groupby(["model_fingerprint", "suite"], sort=True):
        suite = dataset_suite(str(suite_name))
        if suite is None:
            continue
        per_seed: dict[str, list[float]] = {}
        for _, seed_frame in frame.groupby("seed", sort=True):
            records = [{k: r.get(k) for k in RECORD_FIELDS} for r in seed_frame.to_dict(orient="records")]
            for metric, value in suite.corpus_metrics(records).items():
                per_seed.setdefault(metric, []).append(float(value) if value is not None else math.nan)
        model = str(frame["model"].iloc[0])
        for metric, values in per_seed.items():
            mean, se, n = stats.seed_se(values)
            rows.append({"model": model, "model_fingerprint": fingerprint, "suite": suite_name, "metric": metric,
                         "mean": mean, "se": se, "n_seeds": n})
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def headline_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The headline metric's row of each (model, dataset suite), with its leaderboard ``column``."""
    picked = []
    for row in scores.itertuples(index=False):
        headline = headline_of(row.suite)
        if headline is not None and row.metric == headline[1]:
            picked.append({**row._asdict(), "column": headline[0]})
    return pd.DataFrame(picked, columns=[*SCORE_COLUMNS, "column"])

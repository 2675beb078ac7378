"""Statistics for episode outcomes: standard errors, intervals, paired tests.

Everything here is a pure function of arrays, so each one can be checked against
scipy/statsmodels on fixed data (see ``tests/test_reports_stats.py``).

Definitions (``y`` = per-episode outcomes, ``n`` = their count):

- ``seed_se``: mean of the per-seed values ``m_s`` and their standard error
  ``sd(m_s, ddof=1) / sqrt(S)`` (``scipy.stats.sem``).
- ``clustered_se``: the cluster-robust (CR1 / sandwich) SE of the pooled mean,
  ``sqrt(C/(C-1) * sum_c (sum_{i in c} (y_i - ybar))^2) / n`` with ``C`` clusters.
  This is statsmodels ``OLS(y, 1).fit(cov_type="cluster")`` with its default
  ``use_correction=True``, whose factor ``C/(C-1) * (n-1)/(n-k)`` reduces to
  ``C/(C-1)`` for the intercept-only model (``k = 1``), and inspect_ai's
  ``stderr(cluster=...)``.
- ``wilson_interval``: the Wilson score interval of ``k`` successes in ``n`` trials.
- ``mcnemar_exact``: two-sided exact McNemar test, a binomial test of the discordant
  pairs ``b`` (base only) against ``b + c`` trials with p = 1/2.
- ``holm``: Holm's step-down adjusted p-values.
- ``bootstrap_se`` / ``paired_bootstrap``: seeded (reproducible) bootstraps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps

DEFAULT_BOOTSTRAP = 2000


def seed_se(per_seed: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, se, n_seeds)`` of per-seed values; ``se`` is NaN for fewer than two seeds."""
    values = np.asarray(per_seed, dtype=float)
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(values.mean()), se, n


def clustered_se(values: Sequence[float], clusters: Sequence[object]) -> tuple[float, int]:
    """``(se, n_clusters)``: CR1 cluster-robust SE of the mean (NaN with fewer than two clusters)."""
    y = np.asarray(values, dtype=float)
    if len(y) == 0:
        return math.nan, 0
    codes, n_clusters = _codes(clusters)
    if n_clusters < 2:
        return math.nan, n_clusters
    residual_sums = np.bincount(codes, weights=y - y.mean(), minlength=n_clusters)
    variance = n_clusters / (n_clusters - 1) * float(np.sum(residual_sums**2)) / len(y) ** 2
    return math.sqrt(variance), n_clusters


def _codes(labels: Sequence[object]) -> tuple[np.ndarray, int]:
    mapping: dict[object, int] = {}
    codes = np.fromiter((mapping.setdefault(label, len(mapping)) for label in labels), dtype=int)
    return codes, len(mapping)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (NaNs when ``n == 0``)."""
    if n == 0:
        return math.nan, math.nan
    z = float(sps.norm.ppf(0.5 + level / 2))
    p = successes / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(mean: float, se: float, df: int, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval ``mean ± t_{df} · se`` (NaNs when undefined)."""
    if df < 1 or not math.isfinite(se):
        return math.nan, math.nan
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return mean - half, mean + half


def mcnemar_exact(base_only: int, new_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 with none)."""
    discordant = base_only + new_only
    if discordant == 0:
        return 1.0
    return float(sps.binomtest(base_only, discordant, 0.5, alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm step-down: ``(reject, adjusted p-values)`` in the input order."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted <= alpha, adjusted


def bootstrap_se(values: Sequence[float], n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> float:
    """Bootstrap SE of the mean (i.i.d. resampling, fixed seed; NaN below two values)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    return float(means.std(ddof=1))


@dataclass(frozen=True)
class PairedBootstrap:
    """Mean paired difference ``new - base`` with its bootstrap SE, 95% CI and p-value."""

    delta: float
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    n: int


def paired_bootstrap(
    base: Sequence[float], new: Sequence[float], n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> PairedBootstrap:
    """Paired bootstrap of the mean difference.

    Pairs are resampled together. The CI is the percentile interval of the resampled
    mean differences; the two-sided p-value resamples the *centred* differences (the
    null of no mean difference) and is ``(1 + #{|mean*| >= |delta|}) / (B + 1)``.
    """
    d = np.asarray(new, dtype=float) - np.asarray(base, dtype=float)
    n = len(d)
    if n == 0:
        return PairedBootstrap(math.nan, math.nan, math.nan, math.nan, 1.0, 0)
    delta = float(d.mean())
    if n < 2:
        return PairedBootstrap(delta, math.nan, math.nan, math.nan, 1.0, n)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(n_boot, n))
    means = d[index].mean(axis=1)
    null_means = (d - delta)[index].mean(axis=1)
    exceed = int(np.sum(np.abs(null_means) >= abs(delta) - 1e-12))
    low, high = np.percentile(means, [2.5, 97.5])
    return PairedBootstrap(delta, float(means.std(ddof=1)), float(low), float(high), (1 + exceed) / (n_boot + 1), n)

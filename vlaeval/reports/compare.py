"""``vlaeval compare``: paired regression test of NEW against BASE.

Episodes are matched on (suite, suite_version, task_id, episode_index, seed, protocol);
model fingerprints differ by design. Pairs where either side errored are dropped (and
counted). Success is tested per task and overall with the exact McNemar test on the
discordant pairs; the per-task tests and the overall test form one Holm family, so the
chance of any false flag stays at ``alpha``. A row is a *regression* when its
Holm-adjusted p-value is ≤ ``alpha`` and the success rate dropped by at least
``min_effect``. Numeric metrics get a paired bootstrap of the mean difference (Holm over
metrics); they are reported, not gated on (their direction of "better" is unknown).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlaeval.harness.specs import stable_hash
from vlaeval.reports import stats, tables
from vlaeval.reports.aggregate import numeric_metrics
from vlaeval.reports.load import ReportInputError, read_runs

MATCH_KEYS = ["suite", "suite_version", "task_id", "episode_index", "seed", "protocol_json"]
WORSE, BETTER, SMALL, SAME = "WORSE", "better", "changed < min effect", "no significant change"
COMPARE_COLUMNS = ["scope", "suite", "task_id", "pairs", "base_rate", "new_rate", "delta", "base_only",
                   "new_only", "p", "p_holm", "verdict"]
METRIC_COLUMNS = ["suite", "metric", "pairs", "base_mean", "new_mean", "delta", "se", "ci_low", "ci_high",
                  "p", "p_holm"]


@dataclass
class Comparison:
    """Per-task and overall success tests, metric tests, and the gate's outcome."""

    table: pd.DataFrame
    metrics: pd.DataFrame
    pairs: int
    unmatched_base: int
    unmatched_new: int
    error_pairs: int
    alpha: float
    min_effect: float
    base_model: str = ""
    new_model: str = ""

    @property
    def regression(self) -> bool:
        return bool((self.table["verdict"] == WORSE).any())

    @property
    def exit_code(self) -> int:
        return 1 if self.regression else 0

    def summary_line(self) -> str:
        verdict = "REGRESSION" if self.regression else "no significant regression"
        return (f"{verdict}: {self.pairs} matched pairs (alpha={self.alpha:g}, Holm; min effect "
                f"{100 * self.min_effect:g} pp); unmatched BASE {self.unmatched_base}, NEW {self.unmatched_new}; "
                f"pairs with an error episode excluded: {self.error_pairs}")

    def to_markdown(self) -> str:
        parts = [f"## {self.new_model} (NEW) vs {self.base_model} (BASE)\n",
                 tables.markdown_table(render_comparison(self))]
        if not self.metrics.empty:
            parts += ["\n### Metrics (paired bootstrap, not gated)\n", tables.markdown_table(render_metrics(self))]
        return "\n".join(parts) + f"\n{self.summary_line()}\n"

    def to_json(self) -> str:
        clean = lambda t: t.astype(object).where(t.notna(), None).to_dict(orient="records")  # noqa: E731
        return json.dumps({"base_model": self.base_model, "new_model": self.new_model, "alpha": self.alpha,
                           "min_effect": self.min_effect, "regression": self.regression, "pairs": self.pairs,
                           "unmatched_base": self.unmatched_base, "unmatched_new": self.unmatched_new,
                           "error_pairs": self.error_pairs, "success": clean(self.table),
                           "metrics": clean(self.metrics)}, indent=2, default=float) + "\n"


def render_comparison(result: Comparison) -> pd.DataFrame:
    """Display strings of the success table (percentages, percentage points, p-values)."""
    t = result.table
    return pd.DataFrame({
        "scope": t["scope"], "suite": t["suite"], "task": t["task_id"], "pairs": t["pairs"],
        "base %": [tables.pct(v) for v in t["base_rate"]], "new %": [tables.pct(v) for v in t["new_rate"]],
        "Δ pp": [f"{100 * d:+.1f}" for d in t["delta"]],
        "b/c": [f"{b}/{c}" for b, c in zip(t["base_only"], t["new_only"])],
        "p": [f"{p:.3g}" for p in t["p"]], "p (Holm)": [f"{p:.3g}" for p in t["p_holm"]], "verdict": t["verdict"],
    })


def compare_runs(base_dir: str | Path, new_dir: str | Path, alpha: float = 0.05, min_effect: float = 0.05,
                 n_boot: int = stats.DEFAULT_BOOTSTRAP) -> Comparison:
    base = read_runs([base_dir]).episodes
    new = read_runs([new_dir]).episodes
    for name, frame in (("BASE", base), ("NEW", new)):
        if frame["model_fingerprint"].nunique() > 1:
            raise ReportInputError(f"{name} holds episodes of {frame['model_fingerprint'].nunique()} models; "
                                   "compare needs one model per run directory")
    result = compare_episodes(base, new, alpha=alpha, min_effect=min_effect, n_boot=n_boot)
    result.base_model, result.new_model = str(base["model"].iloc[0]), str(new["model"].iloc[0])
    return result


def compare_episodes(base: pd.DataFrame, new: pd.DataFrame, alpha: float = 0.05, min_effect: float = 0.05,
                     n_boot: int = stats.DEFAULT_BOOTSTRAP) -> Comparison:
    """Compare two episode tables (as from :func:`read_runs`); see the module docstring."""
    if not 0 < alpha < 1 or not 0 <= min_effect <= 1:
        raise ReportInputError("--alpha must be in (0, 1) and --min-effect in [0, 1]")
    merged = base.merge(new, on=MATCH_KEYS, suffixes=("_base", "_new"))
    if merged.empty:
        raise ReportInputError(_why_no_overlap(base, new))
    both_valid = merged["valid_base"] & merged["valid_new"]
    pairs = merged[both_valid]
    if pairs.empty:
        raise ReportInputError(f"all {len(merged)} matched episode pairs contain an error episode")
    table = _success_tests(pairs, alpha, min_effect)
    return Comparison(
        table=table, metrics=_metric_tests(base, new, pairs, alpha, n_boot), pairs=len(pairs),
        unmatched_base=len(base) - len(merged), unmatched_new=len(new) - len(merged),
        error_pairs=int((~both_valid).sum()), alpha=alpha, min_effect=min_effect,
    )


def render_metrics(result: Comparison) -> pd.DataFrame:
    """Display strings of the metric table (means, difference ± SE, 95% CI, p-values)."""
    m = result.metrics
    return pd.DataFrame({
        "suite": m["suite"], "metric": m["metric"], "pairs": m["pairs"],
        "base": [f"{v:.4g}" for v in m["base_mean"]], "new": [f"{v:.4g}" for v in m["new_mean"]],
        "Δ ± SE": [tables.number_pm(d, se, 4) for d, se in zip(m["delta"], m["se"])],
        "95% CI": [f"[{lo:.4g}, {hi:.4g}]" for lo, hi in zip(m["ci_low"], m["ci_high"])],
        "p": [f"{p:.3g}" for p in m["p"]], "p (Holm)": [f"{p:.3g}" for p in m["p_holm"]],
    })


def _success_tests(pairs: pd.DataFrame, alpha: float, min_effect: float) -> pd.DataFrame:
    rows = [_mcnemar_row("task", frame, suite=suite, task_id=task)
            for (suite, task), frame in pairs.groupby(["suite", "task_id"], sort=True)]
    overall = _mcnemar_row("overall", pairs, suite="", task_id="")
    rows = [overall] if len(rows) == 1 else rows + [overall]
    table = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    _, table["p_holm"] = stats.holm(table["p"].to_numpy(), alpha)
    table["verdict"] = [_verdict(p, d, alpha, min_effect) for p, d in zip(table["p_holm"], table["delta"])]
    return table


def _mcnemar_row(scope: str, frame: pd.DataFrame, **where: str) -> dict[str, Any]:
    base, new = frame["success_base"].to_numpy(bool), frame["success_new"].to_numpy(bool)
    base_only, new_only = int(np.sum(base & ~new)), int(np.sum(new & ~base))
    return {"scope": scope, **where, "pairs": len(frame), "base_rate": base.mean(), "new_rate": new.mean(),
            "delta": new.mean() - base.mean(), "base_only": base_only, "new_only": new_only,
            "p": stats.mcnemar_exact(base_only, new_only), "p_holm": math.nan, "verdict": ""}


def _verdict(p_holm: float, delta: float, alpha: float, min_effect: float) -> str:
    if p_holm > alpha:
        return SAME
    if abs(delta) < min_effect - 1e-12:
        return SMALL
    return WORSE if delta < 0 else BETTER


def _metric_tests(base: pd.DataFrame, new: pd.DataFrame, pairs: pd.DataFrame, alpha: float,
                  n_boot: int) -> pd.DataFrame:
    keys = pairs[["key_base", "key_new", "suite"]]
    long_base, long_new = numeric_metrics(base), numeric_metrics(new)
    if long_base.empty or long_new.empty:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    joined = (keys.merge(long_base[["key", "metric", "value"]], left_on="key_base", right_on="key")
              .drop(columns="key")
              .merge(long_new[["key", "metric", "value"]], left_on=["key_new", "metric"],
                     right_on=["key", "metric"], suffixes=("_base", "_new")))
    rows = []
    for (suite, metric), frame in joined.groupby(["suite", "metric"], sort=True):
        boot = stats.paired_bootstrap(frame["value_base"].to_numpy(), frame["value_new"].to_numpy(), n_boot=n_boot,
                                      seed=int(stable_hash([suite, metric], length=8), 16))
        rows.append({"suite": suite, "metric": metric, "pairs": boot.n, "base_mean": frame["value_base"].mean(),
                     "new_mean": frame["value_new"].mean(), "delta": boot.delta, "se": boot.se,
                     "ci_low": boot.ci_low, "ci_high": boot.ci_high, "p": boot.pvalue, "p_holm": math.nan})
    table = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    if not table.empty:
        _, table["p_holm"] = stats.holm(table["p"].to_numpy(), alpha)
    return table


def _why_no_overlap(base: pd.DataFrame, new: pd.DataFrame) -> str:
    """One line that says why no episode matched (suite, version, protocol or nothing in common)."""
    loose = ["suite", "task_id", "episode_index", "seed"]
    common = base.merge(new, on=loose, suffixes=("_base", "_new"))
    if common.empty:
        return (f"no matched episodes: BASE has suites {_names(base['suite'])}, NEW has {_names(new['suite'])} "
                "and no (suite, task, episode, seed) in common")
    versions = common[common["suite_version_base"] != common["suite_version_new"]]
    if not versions.empty:
        row = versions.iloc[0]
        return (f"suite versions differ for {row['suite']}: BASE {row['suite_version_base']}, "
                f"NEW {row['suite_version_new']}")
    row = common.iloc[0]
    diff = _protocol_diff(row["protocol_base"], row["protocol_new"])
    return f"protocol parameters differ for {row['suite']}: {diff}"


def _protocol_diff(base: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(base) | set(new) if base.get(k, "<unset>") != new.get(k, "<unset>"))
    return ", ".join(f"{k} {base.get(k, '<unset>')!r} (BASE) vs {new.get(k, '<unset>')!r} (NEW)" for k in keys)


def _names(values: pd.Series) -> str:
    return ", ".join(sorted(set(values))) or "none"

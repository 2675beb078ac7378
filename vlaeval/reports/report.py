"""``vlaeval report``: per-task, per-group, per-suite and overall results of run directories."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from vlaeval.reports import tables
from vlaeval.reports.aggregate import metric_table, model_labels, summarize
from vlaeval.reports.benchmark import benchmark_scores, headline_of
from vlaeval.reports.families import Families, load_families
from vlaeval.reports.load import read_runs
from vlaeval.reports.repro import protocol_table, repro_dict, repro_table
from vlaeval.reports.tables import Section

FORMATS = ("md", "latex", "html", "csv", "json")
DEFINITIONS = (
    "success = mean over seeds ± SE across seeds (n seeds); a group/suite/average is the unweighted mean "
    "of its members. pooled = successes / valid episodes ± cluster-robust SE (CR1, C/(C-1); clustered by "
    "task, or by init state in a single-task cell). Wilson = 95% score interval of the pooled rate. Error episodes "
    "are excluded from rates and counted under errors."
)


@dataclass
class Report:
    summary: pd.DataFrame
    metrics: pd.DataFrame
    episodes: pd.DataFrame
    runs: list[dict[str, Any]]
    benchmarks: pd.DataFrame | None = None
    """Dataset suites' corpus metrics per model (see :mod:`vlaeval.reports.benchmark`)."""

    @property
    def multi_model(self) -> bool:
        return self.summary["model_fingerprint"].nunique() > 1


def build_report(run_dirs: Iterable[str | Path], families: Families | None = None) -> Report:
    families = families or load_families()
    loaded = read_runs(run_dirs, families)
    benchmarks = benchmark_scores(loaded.episodes)
    benchmarks["model"] = benchmarks["model_fingerprint"].map(model_labels(loaded.episodes))
    return Report(summarize(loaded.episodes, families), metric_table(loaded.episodes), loaded.episodes,
                  loaded.runs, benchmarks)


def display_cells(summary: pd.DataFrame, task_level: bool, with_model: bool) -> pd.DataFrame:
    """Human-readable rows: task cells, or every other level."""
    rows = summary[(summary["level"] == "task") == task_level]
    out = pd.DataFrame(index=rows.index)
    if with_model:
        out["model"] = rows["model"]
    if task_level:
        out["suite"] = rows["suite"]
        out["task"] = rows["task_id"]
    else:
        out["cell"] = rows["name"]
        out["level"] = rows["level"]
    out["success % (± SE)"] = [tables.pct_pm(m, s) for m, s in zip(rows["mean"], rows["se"])]
    out["seeds"] = rows["n_seeds"].astype(int)
    out["pooled % (± cluster SE)"] = [tables.pct_pm(m, s) for m, s in zip(rows["pooled"], rows["se_cluster"])]
    out["Wilson 95%"] = [tables.interval(lo, hi) for lo, hi in zip(rows["ci_low"], rows["ci_high"])]
    out["episodes"] = rows["n"].astype(int)
    out["errors"] = rows["errors"].astype(int)
    return out.reset_index(drop=True)


def display_metrics(metrics: pd.DataFrame, with_model: bool) -> pd.DataFrame:
    out = pd.DataFrame(index=metrics.index)
    if with_model:
        out["model"] = metrics["model"]
    out["suite"] = metrics["suite"]
    out["task"] = [t or "(all)" for t in metrics["task_id"]]
    out["metric"] = metrics["metric"]
    out["mean (± bootstrap SE)"] = [tables.number_pm(m, s) for m, s in zip(metrics["mean"], metrics["se_boot"])]
    out["episodes"] = metrics["n"].astype(int)
    return out.reset_index(drop=True)


BENCHMARK_NOTE = ("The benchmarks' own metrics, computed from the stored answers as the suite scores them "
                  "(mean across seeds ± SE across seeds); ★ marks the headline number papers report. "
                  "For these suites 'success' above is the share of items scored at least 0.5.")


def display_benchmarks(scores: pd.DataFrame, with_model: bool) -> pd.DataFrame:
    out = pd.DataFrame(index=scores.index)
    if with_model:
        out["model"] = scores["model"]
    out["suite"] = scores["suite"]
    out["metric"] = [m + (" ★" if (headline_of(s) or ("", ""))[1] == m else "")
                     for s, m in zip(scores["suite"], scores["metric"])]
    out["value (± SE)"] = [tables.number_pm(m, s, digits=2) for m, s in zip(scores["mean"], scores["se"])]
    out["seeds"] = scores["n_seeds"].astype(int)
    return out.reset_index(drop=True)


def sections(report: Report) -> list[Section]:
    multi = report.multi_model
    parts = [
        Section("Summary", display_cells(report.summary, task_level=False, with_model=multi), DEFINITIONS),
    ]
    if report.benchmarks is not None and not report.benchmarks.empty:
        parts.append(Section("Benchmark scores", display_benchmarks(report.benchmarks, multi), BENCHMARK_NOTE))
    parts.append(Section("Per task", display_cells(report.summary, task_level=True, with_model=multi)))
    if not report.metrics.empty:
        parts.append(Section("Metrics", display_metrics(report.metrics, multi),
                             "Numeric per-episode metrics of valid episodes: mean ± seeded bootstrap SE."))
    parts += [
        Section("Reproducibility", repro_table(report.runs).drop(columns=["started"])),
        Section("Protocol", protocol_table(report.runs)),
    ]
    return parts


def render_report(report: Report, fmt: str, link_base: str | Path | None = None) -> str:
    """Render in ``fmt``; ``link_base`` is the folder HTML video links are made relative to."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (choose from {', '.join(FORMATS)})")
    title = "vlaeval report"
    if fmt == "md":
        return tables.render_markdown(title, sections(report))
    if fmt == "latex":
        return tables.render_latex(title, sections(report))
    if fmt == "csv":
        header = [title, DEFINITIONS, "reproducibility: " + _compact_repro(report)]
        return tables.render_csv(report.summary, header)
    if fmt == "json":
        return json.dumps(report_dict(report), indent=2, sort_keys=False, allow_nan=False) + "\n"
    from vlaeval.reports.html import render_html

    return render_html(report, link_base)


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "definitions": DEFINITIONS,
        "summary": _records(report.summary),
        "metrics": _records(report.metrics),
        "benchmarks": _records(report.benchmarks) if report.benchmarks is not None else [],
        "reproducibility": repro_dict(report.runs),
    }


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Records with NaN as null and numpy scalars as Python numbers."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v)
         for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


def _compact_repro(report: Report) -> str:
    rows = repro_table(report.runs).drop(columns=["started"])
    return json.dumps(rows.to_dict(orient="records"), sort_keys=True, separators=(",", ":"))

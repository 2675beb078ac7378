"""``vlaeval leaderboard``: one row per model, one column per suite, group and average.

Runs are grouped by model fingerprint. A robot suite's cell is the report's success mean
across seeds ± its SE across seeds. A dataset suite with a headline metric (MMStar's
Overall, MME's perception score, ...) shows that metric instead, under the benchmark's
column name in published tables (``mme-p``, ``mmmu-val``), and stays out of ``overall``.
``overall`` is the unweighted mean of the robot suite columns (the report's overall row
for runs); rows are ranked by it, and rows without one come last, unranked.
Published rows (``--reference published``) are reported numbers with citations, shown
only where they fill at least one of the measured columns.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from vlaeval.reports import tables
from vlaeval.reports.aggregate import SUMMARY_COLUMNS, model_labels, summarize
from vlaeval.reports.benchmark import benchmark_scores, headline_scores
from vlaeval.reports.families import Families, load_families
from vlaeval.reports.load import read_runs
from vlaeval.reports.published import Published, load_published
from vlaeval.reports.repro import repro_table
from vlaeval.reports.tables import Section

FORMATS = ("md", "latex", "html", "csv", "json")
NOTE = ("success % (mean across seeds ± SE across seeds). overall = unweighted mean of the robot suite columns "
        "(± SE across seeds for runs). Multimodal benchmark columns show the benchmark's own headline metric "
        "(accuracy %, MME-P and OCRBench scores, CIDEr) and are not part of overall. "
        "Rows marked 'reported' are published numbers (± as printed), not vlaeval runs; † = derived here "
        "as the unweighted mean of reported cells.")


@dataclass
class Leaderboard:
    """Long table (one row per model × column) plus the order of columns and rows."""

    cells: pd.DataFrame  # row, model, kind, source, column, value, se, n_seeds, derived
    columns: list[str]
    suite_columns: list[str]
    rows: pd.DataFrame  # row, rank, model, kind, source, overall, overall_se
    runs: list[dict[str, Any]]
    citations: dict[str, str]


def build_leaderboard(run_dirs: Iterable[str | Path], reference: str | None = None,
                      families: Families | None = None) -> Leaderboard:
    families = families or load_families()
    loaded = read_runs(run_dirs, families)
    labels = model_labels(loaded.episodes)
    headlines = headline_scores(benchmark_scores(loaded.episodes))
    headlines["model"] = headlines["model_fingerprint"].map(labels)
    robot = loaded.episodes[~loaded.episodes["suite"].isin(set(headlines["suite"]))]
    summary = summarize(robot, families) if not robot.empty else pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    summary["model"] = summary["model_fingerprint"].map(labels)
    published = load_published() if reference == "published" else None
    if reference not in (None, "published"):
        raise ValueError(f"unknown reference {reference!r} (choose: published)")
    return leaderboard(summary, families, published, loaded.runs, _run_dirs(loaded.episodes), headlines)


def _run_dirs(episodes: pd.DataFrame) -> dict[str, str]:
    return {fp: ", ".join(sorted(set(frame["run_dir"]))) for fp, frame in episodes.groupby("model_fingerprint")}


def leaderboard(summary: pd.DataFrame, families: Families, published: Published | None = None,
                runs: list[dict[str, Any]] | None = None, sources: dict[str, str] | None = None,
                headlines: pd.DataFrame | None = None) -> Leaderboard:
    sources = sources or {}
    cells = _measured_cells(summary, families, sources)
    suite_columns = families.suite_order(summary.loc[summary["level"] == "suite", "suite"])
    benchmark_columns: list[str] = []
    if headlines is not None and not headlines.empty:
        cells = pd.concat([cells, _headline_cells(headlines, sources)], ignore_index=True)
        order = families.suite_order(headlines["suite"])
        column_of = dict(zip(headlines["suite"], headlines["column"]))
        benchmark_columns = list(dict.fromkeys(column_of[suite] for suite in order))
    columns = _column_order(cells["column"].unique(), suite_columns, families, benchmark_columns)
    citations: dict[str, str] = {}
    if published is not None:
        reported = _reported_cells(published, set(columns))
        citations = dict(sorted({(r.source, r.citation) for r in published.rows
                                 if r.source in set(reported["source"])}))
        cells = pd.concat([cells, reported], ignore_index=True)
    rows = _rank(cells, suite_columns)
    return Leaderboard(cells, columns, suite_columns, rows, runs or [], citations)


def _measured_cells(summary: pd.DataFrame, families: Families, sources: dict[str, str]) -> pd.DataFrame:
    records = []
    for r in summary.itertuples():
        if r.level == "suite":
            column = r.suite
        elif r.level == "group" and families.rule(r.suite).show_groups:
            column = f"{r.suite}/{r.group}"
        elif r.level in ("aggregate", "overall"):
            column = r.name
        else:
            continue
        records.append({"row": f"run:{r.model_fingerprint}", "model": r.model, "kind": "measured",
                        "source": sources.get(r.model_fingerprint, ""), "column": column, "value": r.mean,
                        "se": r.se, "n_seeds": r.n_seeds, "derived": False})
    return pd.DataFrame.from_records(records, columns=_CELL_COLUMNS)


_CELL_COLUMNS = ["row", "model", "kind", "source", "column", "value", "se", "n_seeds", "derived"]


def _headline_cells(headlines: pd.DataFrame, sources: dict[str, str]) -> pd.DataFrame:
    """Benchmark headline metrics as cells; like published numbers, stored as fractions of 100."""
    records = [{"row": f"run:{h.model_fingerprint}", "model": h.model, "kind": "measured",
                "source": sources.get(h.model_fingerprint, ""), "column": h.column, "value": h.mean / 100,
                "se": h.se / 100, "n_seeds": h.n_seeds, "derived": False} for h in headlines.itertuples()]
    return pd.DataFrame.from_records(records, columns=_CELL_COLUMNS)


def _reported_cells(published: Published, columns: set[str]) -> pd.DataFrame:
    records = [
        {"row": f"ref:{i}", "model": r.model, "kind": "reported", "source": r.source, "column": column,
         "value": value, "se": r.pm.get(column, math.nan), "n_seeds": 0, "derived": column in r.derived}
        for i, r in enumerate(published.rows)
        if columns & set(r.values)
        for column, value in r.values.items() if column in columns
    ]
    return pd.DataFrame.from_records(records, columns=_CELL_COLUMNS)


def _column_order(present: Iterable[str], suites: list[str], families: Families,
                  benchmarks: list[str] = ()) -> list[str]:
    """Robot suites (each followed by its groups), benchmark columns, then the cross-suite aggregates."""
    present = set(present)
    ordered = [c for s in suites for c in [s] + sorted(p for p in present if p.startswith(f"{s}/"))]
    return ordered + list(benchmarks) + [a.name for a in families.aggregates if a.name in present]


def _rank(cells: pd.DataFrame, suite_columns: list[str]) -> pd.DataFrame:
    """Order rows by overall: the report's overall row for runs, the mean of suite columns for reported rows."""
    rows = []
    for row_id, frame in cells.groupby("row", sort=False):
        by_column = frame.set_index("column")
        if "overall" in by_column.index:
            overall, se = float(by_column.at["overall", "value"]), float(by_column.at["overall", "se"])
        else:
            suites = by_column.reindex(suite_columns)["value"]
            overall, se = (float(suites.mean()) if suites.notna().all() else math.nan), math.nan
        first = frame.iloc[0]
        rows.append({"row": row_id, "model": first["model"], "kind": first["kind"], "source": first["source"],
                     "overall": overall, "overall_se": se})
    table = pd.DataFrame(rows, columns=["row", "model", "kind", "source", "overall", "overall_se"])
    table = table.sort_values(["overall", "kind", "source", "model"], ascending=[False, True, True, True],
                              na_position="last", kind="stable").reset_index(drop=True)
    ranks = table["overall"].rank(ascending=False, method="min")
    table.insert(0, "rank", [str(int(r)) if np.isfinite(r) else "" for r in ranks])
    return table


def wide_numeric(board: Leaderboard) -> pd.DataFrame:
    """CSV/JSON form: rank, model, kind, source, overall, then ``<column>`` and ``<column>_se`` pairs."""
    out = board.rows[["rank", "model", "kind", "source", "overall", "overall_se"]].copy()
    for column in board.columns:
        cell = board.cells[board.cells["column"] == column].set_index("row")
        out[column] = board.rows["row"].map(cell["value"]).to_numpy()
        out[f"{column}_se"] = board.rows["row"].map(cell["se"]).to_numpy()
    return out


def wide_display(board: Leaderboard) -> pd.DataFrame:
    out = board.rows[["rank", "model", "kind", "source"]].copy()
    out["overall"] = [tables.pct_pm(v, se) for v, se in zip(board.rows["overall"], board.rows["overall_se"])]
    for column in board.columns:
        cell = board.cells[board.cells["column"] == column].set_index("row")
        texts = []
        for row_id in board.rows["row"]:
            if row_id not in cell.index:
                texts.append("")
                continue
            c = cell.loc[row_id]
            texts.append(tables.pct_pm(c["value"], c["se"]) + ("†" if c["derived"] else ""))
        out[column] = texts
    return out


def citation_table(board: Leaderboard) -> pd.DataFrame:
    return pd.DataFrame({"source": list(board.citations), "citation": list(board.citations.values())})


def sections(board: Leaderboard) -> list[Section]:
    parts = [Section("Leaderboard", wide_display(board), NOTE)]
    if board.citations:
        parts.append(Section("Sources of reported rows", citation_table(board)))
    parts.append(Section("Reproducibility", repro_table(board.runs).drop(columns=["started"])))
    return parts


def render_leaderboard(board: Leaderboard, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown leaderboard format {fmt!r} (choose from {', '.join(FORMATS)})")
    title = "vlaeval leaderboard"
    if fmt == "md":
        return tables.render_markdown(title, sections(board))
    if fmt == "latex":
        return tables.render_latex(title, sections(board))
    if fmt == "csv":
        header = [title, NOTE] + [f"source {k}: {v}" for k, v in board.citations.items()]
        return tables.render_csv(wide_numeric(board), header)
    if fmt == "json":
        numeric = wide_numeric(board).astype(object).where(lambda t: t.notna(), None)
        return json.dumps({"note": NOTE, "rows": numeric.to_dict(orient="records"), "citations": board.citations,
                           "runs": [r.get("run_dir", "") for r in board.runs]}, indent=2) + "\n"
    from vlaeval.reports.html import render_leaderboard_html

    return render_leaderboard_html(board)

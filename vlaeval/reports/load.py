"""Read run directories into one episode table plus their run metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from vlaeval.harness.specs import canonical_json
from vlaeval.harness.store import DB_NAME, RunStore
from vlaeval.reports.families import Families, load_families

EPISODE_COLUMNS = (  # what reports use; other store columns pass through
    "run_dir", "key", "run_id", "suite", "suite_version", "task_id", "task_index", "episode_index", "seed",
    "instruction", "model", "model_fingerprint", "protocol", "status", "success", "steps", "metrics",
    "video", "error", "attempts", "duration_s", "finished_at",
)


class ReportInputError(ValueError):
    """Input a report cannot use (not a run directory, no episodes, mismatched runs)."""


@dataclass
class Runs:
    """Episodes of one or more run directories (one row each) and their ``runs`` rows."""

    episodes: pd.DataFrame
    runs: list[dict[str, Any]]


def read_runs(run_dirs: Iterable[str | Path], families: Families | None = None) -> Runs:
    """Load run directories; adds ``group``, ``protocol_json`` and ``valid`` (status != error)."""
    run_dirs = list(run_dirs)
    families = families or load_families()
    frames: list[pd.DataFrame] = []
    runs: list[dict[str, Any]] = []
    for run_dir in run_dirs:
        path = Path(run_dir)
        if not (path / DB_NAME).is_file():
            raise ReportInputError(f"{run_dir} is not a run directory (no {DB_NAME})")
        store = RunStore(path)
        try:
            rows = store.episodes()
            runs.extend({**run, "run_dir": path.name} for run in store.runs())
        finally:
            store.close()
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(EPISODE_COLUMNS[1:]))
        frame.insert(0, "run_dir", path.name)
        frames.append(frame)
    if not frames:
        raise ReportInputError("no run directories given")
    table = pd.concat(frames, ignore_index=True).drop_duplicates("key", keep="first")
    if table.empty:
        raise ReportInputError(f"no episodes in {', '.join(str(d) for d in run_dirs)}")
    return Runs(prepare(table, families), runs)


def prepare(table: pd.DataFrame, families: Families | None = None) -> pd.DataFrame:
    """Add the derived columns reports use (``protocol_json``, ``group``, ``valid``) and sort."""
    families = families or load_families()
    table = table.copy()
    table["protocol_json"] = table["protocol"].map(canonical_json)
    table["group"] = [
        families.group(suite, task, protocol or {}, metrics or {})
        for suite, task, protocol, metrics in zip(table["suite"], table["task_id"], table["protocol"], table["metrics"])
    ]
    table["valid"] = table["status"] != "error"
    table["success"] = table["success"].astype(bool)
    return (table.sort_values(["suite", "task_index", "task_id", "seed", "episode_index"], kind="stable")
            .reset_index(drop=True))

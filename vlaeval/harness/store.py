"""The results store: one SQLite database (WAL) per run directory.

Only the driver writes. One row per finished episode, keyed by
:meth:`EpisodeSpec.key`; resume means "skip keys that are already here". Every
attempt that died (worker crash, hang) is kept in ``attempts`` so retries are visible.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

from vlaeval.harness.specs import EpisodeResult, EpisodeSpec, canonical_json

DB_NAME = "results.sqlite"
SCHEMA_VERSION = 1


class StoreError(ValueError):
    """A results database this version of vlaeval cannot use."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    config_json TEXT NOT NULL,
    metadata_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_index INTEGER NOT NULL,
    episode_index INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    instruction TEXT NOT NULL,
    model TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL,
    protocol_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('success', 'failure', 'error')),
    success INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    metrics_json TEXT NOT NULL,
    outputs_json TEXT NOT NULL,
    timing_json TEXT NOT NULL,
    video TEXT,
    error TEXT,
    attempts INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    error TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS episodes_by_task ON episodes (suite, task_id);
"""


class RunStore:
    """Thread-safe writer/reader of one run directory's database."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / DB_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._check_schema()
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _check_schema(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        has_tables = self._db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'episodes'").fetchone()[0]
        if has_tables and version != SCHEMA_VERSION:
            self._db.close()
            raise StoreError(
                f"{self.path} uses results schema {version}, this vlaeval reads schema {SCHEMA_VERSION}: "
                "use the vlaeval version that wrote it, or a new --out directory"
            )

    # -- runs ------------------------------------------------------------
    def start_run(self, config: dict[str, Any], metadata: dict[str, Any]) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (run_id, started_at, config_json, metadata_json) VALUES (?, ?, ?, ?)",
                (run_id, time.time(), canonical_json(config), canonical_json(metadata)),
            )
        return run_id

    def finish_run(self, run_id: str, extra_metadata: dict[str, Any] | None = None) -> None:
        """Mark the run finished, merging ``extra_metadata`` (e.g. the backend's renderer)."""
        with self._lock:
            (current,) = self._db.execute("SELECT metadata_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            merged = {**json.loads(current), **(extra_metadata or {})}
            self._db.execute(
                "UPDATE runs SET finished_at = ?, metadata_json = ? WHERE run_id = ?",
                (time.time(), canonical_json(merged), run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY started_at").fetchall()
        return [
            {**dict(r), "config": json.loads(r["config_json"]), "metadata": json.loads(r["metadata_json"])}
            for r in rows
        ]

    # -- episodes -----------------------------------------------------------
    def finished_keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM episodes")}

    def record_attempt(self, run_id: str, key: str, attempt: int, error: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO attempts (key, run_id, attempt, error, at) VALUES (?, ?, ?, ?, ?)",
                (key, run_id, attempt, error, time.time()),
            )

    def write_episode(
        self,
        run_id: str,
        key: str,
        episode: EpisodeSpec,
        model: str,
        model_fingerprint: str,
        result: EpisodeResult,
        attempts: int,
    ) -> bool:
        """Insert a finished episode; returns False if the key was already stored."""
        values = (
            key, run_id, episode.suite, episode.suite_version, episode.task_id, episode.task_index,
            episode.episode_index, episode.seed, episode.instruction, model, model_fingerprint,
            canonical_json(episode.protocol), result.status, int(result.success), result.steps,
            canonical_json(result.metrics), canonical_json(result.outputs), canonical_json(result.timing), result.video, result.error, attempts, result.duration_s,
            time.time(),
        )
        placeholders = ", ".join("?" * len(values))
        with self._lock:
            cursor = self._db.execute(f"INSERT OR IGNORE INTO episodes VALUES ({placeholders})", values)
        return cursor.rowcount == 1

    def episodes(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM episodes ORDER BY finished_at").fetchall()
        return [_decode_episode(r) for r in rows]

    def attempts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute("SELECT * FROM attempts ORDER BY at").fetchall()]

    def dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.episodes())

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_episodes(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every stored episode of a run directory (none when it holds no store yet)."""
    if not (Path(run_dir) / DB_NAME).is_file():
        return []
    with RunStore(run_dir) as store:
        return store.episodes()


def _decode_episode(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["success"] = bool(data["success"])
    data["protocol"] = json.loads(data.pop("protocol_json"))
    data["metrics"] = json.loads(data.pop("metrics_json"))
    data["outputs"] = json.loads(data.pop("outputs_json"))
    data["timing"] = json.loads(data.pop("timing_json"))
    return data


EXPORT_FORMATS = ("parquet", "csv", "jsonl")


def export_runs(run_dirs: Iterable[str | Path], path: str | Path, fmt: str | None = None) -> Path:
    """Write the episodes of one or more run directories to Parquet, CSV or JSONL."""
    import pandas as pd

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(EXPORT_FORMATS)})")
    frames = []
    for run_dir in run_dirs:
        db = Path(run_dir) / DB_NAME
        if not db.exists():
            raise FileNotFoundError(f"{run_dir} is not a run directory (no {DB_NAME})")
        store = RunStore(run_dir)
        frame = store.dataframe()
        frame.insert(0, "run_dir", str(run_dir))
        frames.append(frame)
        store.close()
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for column in ("protocol", "metrics", "outputs", "timing"):  # nested dicts become JSON text for flat formats
        if column in table and fmt != "jsonl":
            table[column] = table[column].map(canonical_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        table.to_parquet(path, index=False)
    elif fmt == "csv":
        table.to_csv(path, index=False)
    else:
        table.to_json(path, orient="records", lines=True)
    return path

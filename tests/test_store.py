"""The SQLite results store and its exports."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vlaeval.harness.specs import EpisodeResult, EpisodeSpec
from vlaeval.harness.store import RunStore, export_runs, read_episodes


def _episode(i: int) -> EpisodeSpec:
    return EpisodeSpec(suite="toy", suite_version="1", task_id=f"t{i % 2}", episode_index=i, seed=0,
                       max_steps=10, instruction="go", protocol={"max_steps": 10})


def test_store_round_trip_resume_keys_and_no_duplicates(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.start_run({"suite": "toy"}, {"git": {"commit": "abc", "dirty": False}})
    ep = _episode(0)
    result = EpisodeResult(status="success", success=True, steps=4, metrics={"dist": 0.01}, duration_s=0.5)
    assert store.write_episode(run_id, ep.key("m"), ep, "m", "m", result, attempts=2)
    assert not store.write_episode(run_id, ep.key("m"), ep, "m", "m", result, attempts=1)
    store.record_attempt(run_id, ep.key("m"), 1, "worker killed by SIGKILL")
    store.finish_run(run_id)
    store.close()

    reopened = RunStore(tmp_path)
    assert reopened.finished_keys() == {ep.key("m")}
    [row] = reopened.episodes()
    assert row["success"] is True and row["attempts"] == 2 and row["metrics"] == {"dist": 0.01}
    assert row["protocol"] == {"max_steps": 10}
    [attempt] = reopened.attempts()
    assert attempt["error"] == "worker killed by SIGKILL"
    [run] = reopened.runs()
    assert run["finished_at"] is not None and run["metadata"]["git"]["commit"] == "abc"
    assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_formats(tmp_path, fmt):
    store = RunStore(tmp_path / "run")
    run_id = store.start_run({}, {})
    for i in range(3):
        ep = _episode(i)
        store.write_episode(run_id, ep.key("m"), ep, "m", "m",
                            EpisodeResult(status="failure", success=False, steps=10), attempts=1)
    store.close()
    path = export_runs([tmp_path / "run"], tmp_path / f"out.{fmt}")
    frame = {"parquet": pd.read_parquet, "csv": pd.read_csv}.get(fmt, lambda p: pd.read_json(p, lines=True))(path)
    assert len(frame) == 3
    assert set(frame["episode_index"]) == {0, 1, 2}
    protocol = frame["protocol"].iloc[0]
    assert (protocol if isinstance(protocol, dict) else json.loads(protocol)) == {"max_steps": 10}


def test_export_refuses_non_run_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        export_runs([tmp_path], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="unknown export format"):
        export_runs([], tmp_path / "x.xlsx")


def test_a_database_from_another_schema_is_refused_with_one_line(tmp_path):
    import sqlite3

    from vlaeval.harness.store import StoreError

    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute("CREATE TABLE episodes (key TEXT)")
    db.execute("PRAGMA user_version=0")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="uses results schema 0, this vlaeval reads schema 1"):
        RunStore(tmp_path)


def test_read_episodes_of_a_missing_or_filled_run_directory(tmp_path):
    assert read_episodes(tmp_path / "nothing here") == []
    with RunStore(tmp_path / "run") as store:
        run_id = store.start_run({}, {})
    assert read_episodes(tmp_path / "run") == []
    with pytest.raises(Exception):
        store.episodes()  # the context manager closed it
    assert run_id

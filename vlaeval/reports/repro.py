"""The reproducibility block every report carries, built from the store's ``runs`` rows."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vlaeval.harness.specs import canonical_json

REPRO_COLUMNS = ("run_dir", "run_id", "model", "model_fingerprint", "suite", "suite_version", "git_commit",
                 "git_dirty", "vlaeval", "packages", "host", "environment", "started")
_SHOWN = {"git", "suite", "model", "host", "vlaeval_version", "packages", "started", "argv"}


def repro_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: code revision, versions, suite, model and host."""
    rows = []
    for run in runs:
        meta = run.get("metadata") or {}
        git, suite, model, host = (meta.get(k) or {} for k in ("git", "suite", "model", "host"))
        rows.append({
            "run_dir": run.get("run_dir", ""),
            "run_id": run.get("run_id", ""),
            "model": model.get("name", ""),
            "model_fingerprint": model.get("fingerprint", ""),
            "suite": suite.get("name", ""),
            "suite_version": str(suite.get("version", "")),
            "git_commit": git.get("commit") or "unknown",
            "git_dirty": {True: "dirty", False: "clean"}.get(git.get("dirty"), "unknown"),
            "vlaeval": str(meta.get("vlaeval_version", "")),
            "packages": ", ".join(f"{k} {v}" for k, v in sorted((meta.get("packages") or {}).items())),
            "host": " / ".join(str(host[k]) for k in ("hostname", "platform", "python") if host.get(k)),
            "environment": "; ".join(f"{k}={canonical_json(v)}" for k, v in sorted(meta.items()) if k not in _SHOWN),
            "started": str(meta.get("started", "")),
        })
    return pd.DataFrame(rows, columns=list(REPRO_COLUMNS))


def protocol_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Protocol parameters per distinct (suite, version): one row per parameter."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        suite = (run.get("metadata") or {}).get("suite") or {}
        seen.setdefault((str(suite.get("name", "")), str(suite.get("version", ""))), suite.get("protocol") or {})
    rows = [
        {"suite": name, "suite_version": version, "parameter": key, "value": canonical_json(value)}
        for (name, version), protocol in sorted(seen.items())
        for key, value in sorted(protocol.items())
    ]
    return pd.DataFrame(rows, columns=["suite", "suite_version", "parameter", "value"])


def repro_dict(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON form: the runs' metadata and config as stored (minus store timestamps)."""
    return {
        "runs": [
            {"run_dir": r.get("run_dir", ""), "run_id": r.get("run_id", ""),
             "metadata": r.get("metadata") or {}, "config": r.get("config") or {}}
            for r in runs
        ]
    }

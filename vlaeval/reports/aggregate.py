"""Aggregate episodes into report cells: task, group, suite, cross-suite average, overall.

Every cell of one model carries two views of its success rate:

- **Across seeds.** A task's value in seed ``s`` is its success rate over the valid
  (non-error) episodes of that seed. A composite cell (group, suite, average, overall)
  is the unweighted mean of its members (tasks, groups, suites; see ``families.yaml``).
  ``mean`` is that mean of the members' means; ``se`` is the standard error across
  seeds of the same statistic computed per seed (over the seeds where every member has
  episodes; ``n_seeds`` of them).
- **Pooled episodes.** ``pooled`` = successes / valid episodes of the cell, with a
  cluster-robust SE (``se_cluster``) clustered by task, or by init state
  (``episode_index``) in a single-task cell, and a Wilson 95% interval (``ci_low``, ``ci_high``).

Error episodes never enter a rate; they are counted in ``errors``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

from vlaeval.harness.specs import stable_hash
from vlaeval.reports import stats
from vlaeval.reports.families import Families, load_families
from vlaeval.reports.load import ReportInputError

LEVELS = ("task", "group", "suite", "aggregate", "overall")
SUMMARY_COLUMNS = (
    "model", "model_fingerprint", "level", "suite", "group", "task_id", "name",
    "mean", "se", "n_seeds", "t_low", "t_high",
    "pooled", "se_cluster", "n_clusters", "ci_low", "ci_high", "successes", "n", "errors",
)
METRIC_COLUMNS = ("model", "model_fingerprint", "level", "suite", "task_id", "metric", "mean", "se_boot", "n")


@dataclass(frozen=True)
class Node:
    """A cell's per-seed values (NaN where incomplete) and its mean."""

    per_seed: pd.Series
    mean: float

    @staticmethod
    def combine(nodes: Iterable["Node"]) -> "Node":
        nodes = list(nodes)
        matrix = pd.concat([n.per_seed for n in nodes], axis=1)
        per_seed = matrix.mean(axis=1).where(matrix.notna().all(axis=1))
        return Node(per_seed, float(np.mean([n.mean for n in nodes])))


def model_labels(episodes: pd.DataFrame) -> dict[str, str]:
    """Display name per model fingerprint (name, plus a short fingerprint when names clash)."""
    names = episodes.groupby("model_fingerprint", sort=True)["model"].first()
    clashes = names[names.duplicated(keep=False)].index
    return {fp: f"{name} [{stable_hash(fp)[:8]}]" if fp in clashes else name for fp, name in names.items()}


def summarize(episodes: pd.DataFrame, families: Families | None = None) -> pd.DataFrame:
    """One row per cell and model, in display order (see the module docstring)."""
    families = families or load_families()
    _check_consistent(episodes)
    labels = model_labels(episodes)
    rows: list[dict[str, Any]] = []
    for fingerprint, frame in episodes.groupby("model_fingerprint", sort=True):
        rows.extend(_model_rows(frame, families, labels[fingerprint], fingerprint))
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _check_consistent(episodes: pd.DataFrame) -> None:
    """One model's episodes of a task must share the suite version and protocol, or their rates would mix.

    (Per task, not per suite: suites such as ``libero`` or SimplerEnv give each task its own protocol.)
    """
    keys = ["model", "model_fingerprint", "suite", "task_id"]
    mixed = episodes.groupby(keys)[["suite_version", "protocol_json"]].nunique()
    mixed = mixed[(mixed > 1).any(axis=1)]
    versions = episodes.groupby(keys[:3])["suite_version"].nunique()
    if not mixed.empty or (versions > 1).any():
        model, _, suite = (mixed.index[0][:3] if not mixed.empty else versions[versions > 1].index[0])
        raise ReportInputError(f"{model} has episodes of {suite} with different suite versions or protocol "
                               "parameters; report those runs separately")


def _model_rows(frame: pd.DataFrame, families: Families, model: str, fingerprint: str) -> list[dict[str, Any]]:
    seeds = sorted(frame["seed"].unique())
    valid = frame[frame["valid"]]
    rates = valid.groupby(["suite", "task_id", "seed"])["success"].mean().unstack("seed").reindex(columns=seeds)
    base = {"model": model, "model_fingerprint": fingerprint}
    rows: list[dict[str, Any]] = []
    suite_nodes: dict[str, Node] = {}
    unit_nodes: dict[str, list[Node]] = {}

    def task_node(suite: str, task: str) -> Node:
        if (suite, task) in rates.index:
            per_seed = rates.loc[(suite, task)].astype(float)
            return Node(per_seed, float(per_seed.mean()))
        return Node(pd.Series(np.nan, index=seeds), math.nan)

    def add(level: str, node: Node, cell: pd.DataFrame, **where: str) -> None:
        rows.append({**base, "level": level, "suite": "", "group": "", "task_id": "", **where,
                     **_cell_stats(node, cell)})

    for suite in families.suite_order(frame["suite"]):
        suite_frame = frame[frame["suite"] == suite]
        rule = families.rule(suite)
        tasks = suite_frame.drop_duplicates("task_id").sort_values(["task_index", "task_id"])
        nodes = {t: task_node(suite, t) for t in tasks["task_id"]}
        for task in nodes:
            add("task", nodes[task], suite_frame[suite_frame["task_id"] == task], suite=suite, task_id=task, name=task)
        task_groups = tasks.set_index("task_id")["group"]
        groups = {g: Node.combine(nodes[t] for t in members.index)
                  for g, members in task_groups.groupby(task_groups, sort=True) if g != ""}
        units = list(groups.values()) + [nodes[t] for t, g in task_groups.items() if g == ""]
        unit_nodes[suite] = units
        suite_nodes[suite] = Node.combine(units if rule.value == "groups" else nodes.values())
        add("suite", suite_nodes[suite], suite_frame, suite=suite, name=suite)
        for group, node in groups.items():
            add("group", node, suite_frame[suite_frame["group"] == group], suite=suite, group=group,
                name=f"{suite} / {families.label(suite, group)}")

    present = list(suite_nodes)
    for agg in families.aggregates:
        members = agg.members(present)
        if not members:
            continue
        node = Node.combine(suite_nodes[s] for s in members) if agg.over == "suites" else \
            Node.combine(u for s in members for u in unit_nodes[s])
        add("aggregate", node, frame[frame["suite"].isin(members)], name=agg.name)
    add("overall", Node.combine(suite_nodes.values()), frame, name="overall")
    return rows


def _cell_stats(node: Node, cell: pd.DataFrame) -> dict[str, Any]:
    """Seed statistics of ``node`` and pooled statistics of the cell's episodes.

    Pooled episodes are clustered by task; a cell with a single task is clustered by
    init state (``episode_index``) instead.
    """
    _, se, n_seeds = stats.seed_se(node.per_seed.to_numpy())
    t_low, t_high = stats.t_interval(node.mean, se, n_seeds - 1)
    valid = cell[cell["valid"]]
    y = valid["success"].to_numpy(dtype=float)
    tasks = list(zip(valid["suite"], valid["task_id"]))
    labels = tasks if len(set(tasks)) > 1 else valid["episode_index"].tolist()
    se_cluster, n_clusters = stats.clustered_se(y, labels)
    successes, n = int(y.sum()), len(y)
    ci_low, ci_high = stats.wilson_interval(successes, n)
    return {
        "mean": node.mean, "se": se, "n_seeds": n_seeds, "t_low": t_low, "t_high": t_high,
        "pooled": successes / n if n else math.nan, "se_cluster": se_cluster, "n_clusters": n_clusters,
        "ci_low": ci_low, "ci_high": ci_high, "successes": successes, "n": n,
        "errors": int((cell["status"] == "error").sum()),
    }


def metric_table(episodes: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOTSTRAP) -> pd.DataFrame:
    """Mean ± bootstrap SE of every numeric per-episode metric, per task and per suite.

    Only valid episodes count; booleans count as 0/1. Each cell's bootstrap is seeded
    from a hash of (model, suite, task, metric), so the numbers are reproducible.
    """
    long = numeric_metrics(episodes)
    if long.empty:
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
    labels = model_labels(episodes)
    rows: list[dict[str, Any]] = []
    for level, keys in (("task", ["model_fingerprint", "suite", "task_id", "metric"]),
                        ("suite", ["model_fingerprint", "suite", "metric"])):
        for key, values in long.groupby(keys, sort=True):
            cell = dict(zip(keys, key))
            seed = int(stable_hash([level, *key], length=8), 16)
            rows.append({
                "model": labels[cell["model_fingerprint"]], "level": level, "task_id": "", **cell,
                "mean": float(values["value"].mean()),
                "se_boot": stats.bootstrap_se(values["value"].to_numpy(), n_boot=n_boot, seed=seed),
                "n": len(values),
            })
    table = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    order = table["level"].map({"task": 0, "suite": 1})
    return (table.assign(_order=order)
            .sort_values(["model_fingerprint", "suite", "metric", "_order", "task_id"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def numeric_metrics(episodes: pd.DataFrame) -> pd.DataFrame:
    """Long table (episode key, model, suite, task, seed, episode_index, metric, value) of numeric metrics."""
    records = [
        {"key": ep.key, "model_fingerprint": ep.model_fingerprint, "suite": ep.suite, "task_id": ep.task_id,
         "metric": name, "value": float(value)}
        for ep in episodes[episodes["valid"]].itertuples()
        for name, value in sorted((ep.metrics or {}).items())
        if isinstance(value, (int, float)) and math.isfinite(float(value))
    ]
    return pd.DataFrame(records, columns=["key", "model_fingerprint", "suite", "task_id", "metric", "value"])

"""The SimplerEnv scripted oracle against the random policy, per task (not CI).

For each suite (default: ``simpler-instruct``; add ``simpler-google-vm``, ``simpler-google-va``,
``simpler-widowx`` with ``--suites``) it runs ``vlaeval run --model oracle`` and
``vlaeval run --model random`` on the first ``--episodes-per-task`` episodes of every task
(``--workers 2``; the suite's published protocol: raster shader, last-step outcome), then
writes ``docs/results/simpler_oracle.md``: per task its group, instruction, oracle and random
successes/trials, the oracle's own failure reasons (from ``VLAEVAL_ORACLE_LOG``) and whether
the task's assets are complete or approximate (a stage or object mesh missing from the pack).

Slow on a CPU-only machine (an Instruct episode takes 10-60 s; 80 tasks x 2 episodes x 2
models is hours): run it in the background. Runs resume (same ``--out``), the table is
rewritten after every run and can be rebuilt from what is stored with ``--table-only``::

    nohup .venv/bin/python benchmarks/simpler_oracle.py > /tmp/simpler_oracle.log 2>&1 &
    .venv/bin/python benchmarks/simpler_oracle.py --suites simpler-widowx,simpler-google-vm --episodes-per-task 3
    .venv/bin/python benchmarks/simpler_oracle.py --table-only
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from libero_oracle import oracle_reasons, run_model  # noqa: E402  (the same adapter, the same run)
from results_io import rate  # noqa: E402

from vlaeval.harness.store import read_episodes  # noqa: E402
from vlaeval.suites.simpler import SUITES, SimplerSuite  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("oracle", "random")


def suite_rows(suite: str, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per task of the suite: both models' results and the oracle's reasons."""
    by_model: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for model in MODELS:
        grouped: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for ep in read_episodes(out / model):
            grouped[ep["task_id"]].append(ep)
        by_model[model] = grouped
    reasons = oracle_reasons(out / "oracle")
    rows = []
    for task in SimplerSuite(suite).tasks():
        row: dict[str, Any] = {"task": task.task_id, "group": task.group, "instruction": task.instruction,
                               "assets": "complete" if task.extra.get("assets_complete") else "approximate"}
        for model in MODELS:
            eps = sorted(by_model[model].get(task.task_id, []), key=lambda e: e["episode_index"])
            row[model] = (sum(bool(e["success"]) for e in eps), len(eps))
            if model == "oracle":
                why: collections.Counter[str] = collections.Counter()
                for e in eps:
                    if not e["success"]:
                        why[e.get("error") or reasons.get((task.task_id, e["episode_index"]), "no oracle log")] += 1
                row["failed"] = [e["episode_index"] for e in eps if not e["success"]]
                row["reasons"] = "; ".join(f"{r} (x{n})" if n > 1 else r for r, n in why.most_common())
                row["seconds"] = sum(e.get("duration_s") or 0 for e in eps)
        rows.append(row)
    total = {m: (sum(r[m][0] for r in rows), sum(r[m][1] for r in rows)) for m in MODELS}
    for assets in ("complete", "approximate"):  # the oracle target counts tasks whose assets are complete
        picked = [r["oracle"] for r in rows if r["assets"] == assets]
        total[f"oracle_{assets}"] = (sum(w for w, _ in picked), sum(n for _, n in picked))
    total["tasks_run"] = sum(1 for r in rows if r["oracle"][1])
    return rows, total


def group_means(rows: list[dict[str, Any]], model: str) -> dict[str, float]:
    """Unweighted mean over the tasks of each group that ran (the Instruct aggregation rule)."""
    groups: dict[str, list[float]] = collections.defaultdict(list)
    for r in rows:
        wins, trials = r[model]
        if trials:
            groups[r["group"]].append(wins / trials)
    return {g: sum(v) / len(v) for g, v in groups.items()}


NOTES = """
## Notes

* The oracle reads privileged simulator state (`SimplerBackend.privileged()`: actor poses and
  collision boxes, the task's source/target names, the drawer links, the arm controller's
  target) and drives the real controllers (`vlaeval/suites/simpler/oracle.py`). Outcome is the
  suite's published rule: success at the last step (the episode always runs to its step limit).
* Failure reasons come from the oracle's log: the primitive that gave up, or "plan completed but
  the goal did not hold" when the scene's final state failed the success rule.
* `random` is `--model random`: uniform actions in [-1, 1] (unnormalised SimplerEnv deltas: up to
  1 m and 1 rad per step; the gripper flips every step) — a floor, not a baseline policy.
* `approximate` assets: a stage mesh (and with it the table collision) or an object's visual mesh
  is missing from the asset pack and a placeholder stands in (see the pack's MISSING.tsv).
* Two-phase drawer tasks: upstream advances to the second instruction when the policy predicts
  "terminate"; neither model here predicts it, so the backend's forced advance at step 100 does
  it (upstream does the same when the policy never terminates).
""".strip()


def write_table(path: Path, results: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]], episodes: int) -> None:
    lines = [
        "# SimplerEnv scripted oracle vs random (`--model oracle` / `--model random`)",
        "",
        f"Generated by `benchmarks/simpler_oracle.py` on {time.strftime('%Y-%m-%d %H:%M')} (target: the first "
        f"{episodes} episodes of every task; `vlaeval run --workers 2`, real SAPIEN backend on CPU, the suites' "
        "published protocol: raster shader, success at the last step).",
        "",
        "| suite | tasks run | oracle | oracle, complete assets | oracle, approximate assets | random "
        "| oracle group means (unweighted over tasks) |",
        "|---|---|---|---|---|---|---|",
    ]
    for suite, (rows, total) in results.items():
        means = ", ".join(f"{g} {100 * m:.0f} %" for g, m in sorted(group_means(rows, "oracle").items()))
        lines.append(f"| {suite} | {total['tasks_run']}/{len(rows)} | {rate(total['oracle'])} | "
                     f"{rate(total['oracle_complete'])} | {rate(total['oracle_approximate'])} | "
                     f"{rate(total['random'])} | {means} |")
    for suite, (rows, _) in results.items():
        lines += ["", f"## {suite}", "",
                  "| task | group | instruction | oracle | random | assets | oracle failures: episodes and reason |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows:
            why = f"{r['failed']}: {r['reasons']}" if r.get("failed") else ""
            instruction = r["instruction"].replace("|", "/")
            lines.append(f"| {r['task']} | {r['group']} | {instruction} | {rate(r['oracle'])} | "
                         f"{rate(r['random'])} | {r['assets']} | {why} |")
    lines += ["", NOTES]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", default="simpler-instruct",
                        help=f"comma-separated (known: {', '.join(SUITES)}); default: simpler-instruct")
    parser.add_argument("--episodes-per-task", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--models", default=",".join(MODELS), help="subset of oracle,random to run")
    parser.add_argument("--tasks", action="append", default=[], help="task pattern(s) passed to vlaeval run")
    parser.add_argument("--out", default=str(ROOT / "runs" / "simpler_oracle"),
                        help="runs go to <out>/<suite>/<model>")
    parser.add_argument("--table", default=str(ROOT / "docs" / "results" / "simpler_oracle.md"))
    parser.add_argument("--timeout", type=float, default=None, help="seconds per (suite, model) run")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table from stored runs")
    args = parser.parse_args()
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if unknown:
        parser.error(f"unknown suites {unknown} (known: {', '.join(SUITES)})")
    if set(models) - set(MODELS):
        parser.error(f"--models must be a subset of {','.join(MODELS)}")
    out = Path(args.out)

    def table() -> None:  # every suite with stored results, in the standard order
        shown = [s for s in SUITES if s in suites or any((out / s / m / "results.sqlite").exists() for m in MODELS)]
        write_table(Path(args.table), {s: suite_rows(s, out / s) for s in shown}, args.episodes_per_task)

    for suite in suites:
        if not args.table_only:
            for model in models:
                run_model(suite, model, out / suite / model, args.episodes_per_task, args.workers, args.tasks,
                          args.timeout)
                table()
        else:
            table()
        _, total = suite_rows(suite, out / suite)
        print(f"{suite}: oracle {rate(total['oracle'])}, random {rate(total['random'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

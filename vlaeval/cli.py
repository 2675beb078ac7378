"""The ``vlaeval`` command line."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from vlaeval import __version__

# Pipes and CI logs get wide tables instead of rich's 80-column default.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

EXAMPLES = """
\b
Examples:
  vlaeval list suites
  vlaeval run --suite libero-spatial --model random --episodes-per-task 1 --limit 2
  vlaeval run --suite libero-spatial --model oracle --seeds 0,1,2 --episodes-per-task 2 --workers 2 --out runs/x
  vlaeval run --suite libero-spatial --model ws://gpu-box:8000 --config eval.yaml
  vlaeval serve --model random --port 8000
  vlaeval export runs/x --to results.parquet
"""


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print expected failures as one line (exit 2) instead of a traceback."""
    from vlaeval.harness.config import ConfigError
    from vlaeval.harness.envs import BackendEnvMissing
    from vlaeval.harness.model_source import ModelError
    from vlaeval.harness.policy import PolicyFailure
    from vlaeval.harness.registry import UnknownNameError
    from vlaeval.harness.suite import SelectionError

    expected = (ConfigError, BackendEnvMissing, ModelError, UnknownNameError, SelectionError, PolicyFailure,
                FileNotFoundError, ValueError)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except expected as exc:
            err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
            sys.exit(2)

    return wrapper


@click.group(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vlaeval")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Evaluate vision-language-action policies and multimodal models, honestly and reproducibly.

    Every episode runs in an isolated simulator worker, every result is stored the moment it
    finishes (re-run the same command to resume), and every number carries its protocol.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


# -- list ---------------------------------------------------------------------
@main.command("list")
@click.argument("what", type=click.Choice(["suites", "tasks", "adapters"]))
@click.option("--suite", help="Suite whose tasks to list (for `list tasks`).")
@user_errors
def list_cmd(what: str, suite: str | None) -> None:
    """List registered suites, the tasks of a suite, or adapters."""
    from vlaeval.harness import registry

    if what == "adapters":
        for name in registry.adapters.names():
            console.print(name)
        return
    if what == "suites":
        table = Table("suite", "version", "backend", "tasks", "description")
        for name in registry.suites.names():
            try:
                s = registry.suites.create(name)
                n_tasks = str(len(s.tasks()))
            except Exception as exc:  # a broken or data-less suite must not hide the others
                table.add_row(name, "?", "?", "?", f"[red]{exc}[/red]")
                continue
            table.add_row(name, s.spec.version, s.spec.backend, n_tasks, s.spec.description)
        console.print(table)
        return
    if not suite:
        raise click.UsageError("`vlaeval list tasks` needs --suite NAME")
    s = registry.suites.create(suite)
    table = Table("#", "task", "instruction", "episodes", "max steps", title=f"{s.spec.name} v{s.spec.version}")
    for t in s.tasks():
        table.add_row(str(t.index), t.task_id, t.instruction, str(t.n_init_states), str(t.max_steps))
    console.print(table)


# -- run ----------------------------------------------------------------------
@main.command()
@click.option("--suite", help="Suite to evaluate (see `vlaeval list suites`).")
@click.option("--model", help="Adapter name, checkpoint path, or policy server URL (ws://host:port, openpi://host:port).")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Adapter constructor argument; repeatable.")
@click.option("--seeds", help="Seeds, e.g. 0,1,2 or 0-4 [default: 0].")
@click.option("--episodes-per-task", type=int, help="First N init states of each task [default: all].")
@click.option("--episodes", help="These init states of each task instead, e.g. 20-29 (held-out) or 0,5,7.")
@click.option("--tasks", "tasks", multiple=True, metavar="PATTERN", help="Task name/index/instruction glob; repeatable.")
@click.option("--limit", type=int, help="Run at most N episodes in total (first in plan order).")
@click.option("--protocol", "protocol", multiple=True, metavar="KEY=VALUE",
              help="Override a protocol parameter (recorded with the results; changes episode keys).")
@click.option("--out", help="Run directory [default: runs/<suite>__<model>]. Re-running with the same one resumes.")
@click.option("--workers", type=int, help="Parallel sim workers [default: 1].")
@click.option("--executor", type=click.Choice(["local", "inprocess", "ray"]), help="Where episodes run [default: local].")
@click.option("--address", help="Ray cluster address for --executor ray (e.g. auto); local Ray if omitted.")
@click.option("--retries", type=int, help="Retries of an episode whose worker crashed or hung [default: 1].")
@click.option("--watchdog", "watchdog_s", type=float, help="Seconds of worker silence before it is killed [default: 300].")
@click.option("--record-video/--no-record-video", default=None, help="Write an mp4 per episode into <out>/videos.")
@click.option("--record-demos", type=click.Path(file_okay=False),
              help="Append every episode (images, state, action, instruction, success) to a LeRobot dataset here.")
@click.option("--max-batch", type=int, help="Batch up to N concurrent requests per forward call [default: 1].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file with any of these options; flags override it.")
@user_errors
def run(config_file: str | None, model_args: tuple[str, ...], protocol: tuple[str, ...], tasks: tuple[str, ...], **flags: Any) -> None:
    """Evaluate a model on a suite and store every episode.

    Results go to <out>/results.sqlite (one row per episode); summarise them with
    `vlaeval export`. Interrupt at any time: the same command resumes where it stopped.
    """
    from vlaeval.harness.config import load_config, parse_assignments
    from vlaeval.harness.run import run_evaluation

    overrides = {k: v for k, v in flags.items() if v is not None}
    if model_args:
        overrides["model_args"] = parse_assignments(model_args, "--model-arg")
    if protocol:
        overrides["protocol"] = parse_assignments(protocol, "--protocol")
    if tasks:
        overrides["tasks"] = list(tasks)
    config = load_config(config_file, overrides)
    summary = run_evaluation(config, console=err_console)
    done = summary.counts
    total = summary.ran
    rate = f"{done['success'] / total:.1%}" if total else "n/a"
    console.print(
        f"ran {total} episodes ({done['success']} success, {done['failure']} failure, {done['error']} error; "
        f"success rate {rate}), skipped {summary.skipped} already finished -> {summary.run_dir}",
        highlight=False,
    )
    if total or summary.skipped:
        _print_summary(summary.run_dir)


def _print_summary(run_dir: Any) -> None:
    """The report's summary table for this run directory, and how to get the full report."""
    from vlaeval.reports.report import build_report, sections

    parts = sections(build_report([run_dir]))
    shown = [parts[0]] + [p for p in parts if p.title == "Benchmark scores"]  # a dataset suite's own metrics
    for part in shown:
        title = f"{run_dir} (all episodes stored there)" if part is parts[0] else part.title
        table = Table(*part.table.columns, title=title)
        for row in part.table.itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        console.print(table)
    console.print(f"full report: vlaeval report {run_dir} --format html --out {run_dir}/report.html", highlight=False)


# -- serve --------------------------------------------------------------------
@main.command()
@click.option("--model", required=True, help="Adapter name, checkpoint path or upstream server URL to expose.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Adapter constructor argument; repeatable.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--mode", type=click.Choice(["vlaeval", "openpi"]), default="vlaeval", show_default=True,
              help="Wire protocol: vlaeval's, or openpi's (for openpi clients).")
@click.option("--max-batch", default=1, show_default=True, type=int, help="Batch concurrent requests into one forward call.")
@click.option("--max-wait-ms", default=2.0, show_default=True, type=float, help="How long to wait to fill a batch.")
@user_errors
def serve(model: str, model_args: tuple[str, ...], host: str, port: int, mode: str, max_batch: int, max_wait_ms: float) -> None:
    """Expose any adapter as a policy server (WebSocket + msgpack, /health)."""
    import asyncio

    from vlaeval.harness.config import parse_assignments
    from vlaeval.harness.model_source import resolve_model
    from vlaeval.harness.protocol.server import PolicyServer

    source = resolve_model(model, parse_assignments(model_args, "--model-arg"))
    server = PolicyServer(source.policy, host=host, port=port, max_batch=max_batch, max_wait_ms=max_wait_ms, mode=mode)
    err_console.print(f"serving {source.name} ({mode} protocol) on ws://{host}:{port}  health: http://{host}:{port}/health")
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        pass


# -- doctor -------------------------------------------------------------------
@main.command()
def doctor() -> None:
    """Show what is installed: backends, renderers, assets, GPU, versions."""
    from vlaeval.harness.doctor import collect

    table = Table("check", "status", "details")
    for row in collect():
        style = {"ok": "green", "missing": "yellow", "incomplete": "yellow", "error": "red"}.get(row.status, "")
        table.add_row(row.name, f"[{style}]{row.status}[/{style}]", row.details)
    console.print(table)


# -- export -------------------------------------------------------------------
@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--to", "target", required=True, help="Output file: .parquet, .csv or .jsonl.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), help="Override the format implied by --to.")
@user_errors
def export(run_dirs: tuple[str, ...], target: str, fmt: str | None) -> None:
    """Export the episodes of one or more run directories (one row per episode)."""
    from vlaeval.harness.store import export_runs

    path = export_runs(run_dirs, target, fmt)
    console.print(f"wrote {path}")


# -- report -------------------------------------------------------------------
def _emit(text: str, out: str | None) -> None:
    """Write ``text`` to ``out`` (and say so), or to stdout verbatim (no rich markup)."""
    if out is None:
        click.echo(text, nl=False)
        return
    from pathlib import Path

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    err_console.print(f"wrote {path}", highlight=False)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["md", "latex", "html", "csv", "json"]), default="md",
              show_default=True, help="Output format (html is one self-contained file).")
@click.option("--out", help="Write to this file instead of stdout.")
@user_errors
def report(run_dirs: tuple[str, ...], fmt: str, out: str | None) -> None:
    """Success per task, group, suite and overall: mean ± SE across seeds, clustered SE, Wilson CI.

    Also numeric metrics (mean ± bootstrap SE), suite averages as the papers report them,
    and the reproducibility block of every run.
    """
    from pathlib import Path

    from vlaeval.reports.report import build_report, render_report

    text = render_report(build_report(run_dirs), fmt, link_base=Path(out).parent if out else Path.cwd())
    _emit(text, out)


# -- leaderboard --------------------------------------------------------------
@main.command()
@click.argument("run_dirs", nargs=-1, required=True)
@click.option("--reference", type=click.Choice(["published"]), help="Add published (reported) rows with citations.")
@click.option("--format", "fmt", type=click.Choice(["md", "latex", "html", "csv", "json"]), default="md",
              show_default=True)
@click.option("--out", help="Write to this file instead of stdout.")
@user_errors
def leaderboard(run_dirs: tuple[str, ...], reference: str | None, fmt: str, out: str | None) -> None:
    """One row per model (runs grouped by fingerprint), one column per suite and average, ranked."""
    from vlaeval.reports.leaderboard import build_leaderboard, render_leaderboard

    _emit(render_leaderboard(build_leaderboard(run_dirs, reference), fmt), out)


# -- compare ------------------------------------------------------------------
@main.command()
@click.argument("base")
@click.argument("new")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="Family-wise error rate (Holm).")
@click.option("--min-effect", default=0.05, show_default=True, type=float,
              help="Smallest drop in success rate that fails the gate.")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json"]), default="text", show_default=True)
@user_errors
def compare(base: str, new: str, alpha: float, min_effect: float, fmt: str) -> None:
    """Paired regression test of run NEW against run BASE (exit 1 = significantly worse).

    Episodes are matched on suite, version, task, init state, seed and protocol. Success:
    exact McNemar per task and overall, Holm-corrected; metrics: paired bootstrap.
    Exit 0 = no significant drop of at least --min-effect, 1 = regression, 2 = unusable input.
    """
    from rich.markup import escape

    from vlaeval.reports.compare import compare_runs, render_comparison, render_metrics

    result = compare_runs(base, new, alpha=alpha, min_effect=min_effect)
    if fmt != "text":
        click.echo(result.to_markdown() if fmt == "md" else result.to_json(), nl=False)
        sys.exit(result.exit_code)
    wide = console if console.is_terminal else Console(width=160, file=console.file)  # CI logs: no squeezing
    title = escape(f"{result.new_model} (NEW) vs {result.base_model} (BASE)")
    frames = ((render_comparison(result), title), (render_metrics(result), "metrics (paired bootstrap, not gated)"))
    for frame, caption in frames:
        if frame.empty:
            continue
        table = Table(*frame.columns, title=caption)
        for row in frame.astype(str).itertuples(index=False):
            style = {"WORSE": "bold red", "better": "green"}.get(row[-1], "")
            cells = [escape(v) for v in row]
            table.add_row(*cells[:-1], f"[{style}]{cells[-1]}[/{style}]" if style else cells[-1])
        wide.print(table)
    wide.print(result.summary_line(), highlight=False)
    sys.exit(result.exit_code)


# -- power --------------------------------------------------------------------
@main.command()
@click.option("--effect", required=True, type=float, help="Change in success rate to detect (e.g. 0.05).")
@click.option("--baseline", required=True, type=float, help="Expected success rate of the baseline (e.g. 0.6).")
@click.option("--alpha", default=0.05, show_default=True, type=float)
@click.option("--power", "power_", default=0.8, show_default=True, type=float)
@click.option("--paired", is_flag=True, help="Same init states and seeds in both runs (McNemar approximation).")
@click.option("--discordant", type=float,
              help="With --paired: expected share of discordant pairs [default: independence].")
@user_errors
def power(effect: float, baseline: float, alpha: float, power_: float, paired: bool, discordant: float | None) -> None:
    """Episodes per model needed to detect a change in success rate.

    Independent runs: two-proportion z-test (Cohen's h, statsmodels NormalIndPower).
    Paired runs: normal approximation to McNemar's test (Connor 1987).
    """
    from vlaeval.reports.power import episodes_needed

    result = episodes_needed(effect, baseline, alpha=alpha, power=power_, paired=paired, discordant=discordant)
    console.print(
        f"{result.episodes_per_model} episodes per model ({result.design}: {result.method}) to detect "
        f"{result.baseline:.3f} -> {result.alternative:.3f} at alpha={alpha:g}, power={power_:g}"
        + (f", discordant share {result.discordant:.3f}" if result.discordant is not None else ""),
        highlight=False,
    )


def _attach_training() -> None:
    """``vlaeval train`` comes with the model package; torch loads only when it runs."""
    from vlaeval.models.instructvla.cli import train

    main.add_command(train)


_attach_training()

if __name__ == "__main__":
    main()

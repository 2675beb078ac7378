"""Live progress for a run: episodes done/total, running success rate, errors, ETA.

On a terminal it is a rich progress bar; elsewhere (CI logs, pipes) one line per
finished episode, so logs show the same information.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vlaeval.harness.executors.base import JobOutcome


class RunProgress:
    def __init__(self, total: int, console: Console | None = None, title: str = "episodes"):
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.total = total
        self.done = 0
        self.successes = 0
        self.errors = 0
        self.retries = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._bar: Progress | None = None
        self._task = None
        self._title = title

    def __enter__(self) -> "RunProgress":
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._title, total=self.total, stats=self._stats())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _stats(self) -> str:
        rate = f"{self.successes / self.done:.0%}" if self.done else "-"
        text = f"success {rate}"
        if self.errors:
            text += f" errors {self.errors}"
        if self.retries:
            text += f" retries {self.retries}"
        return text

    def attempt_failed(self) -> None:
        with self._lock:
            self.retries += 1

    def eta_s(self) -> float | None:
        if not self.done:
            return None
        return (time.monotonic() - self._started) / self.done * (self.total - self.done)

    def episode_done(self, outcome: JobOutcome) -> None:
        with self._lock:
            self.done += 1
            self.successes += outcome.result.success
            self.errors += outcome.result.status == "error"
            if self._bar is not None and self._task is not None:
                self._bar.update(self._task, advance=1, stats=self._stats())
                return
            episode = outcome.job.episode
            eta = self.eta_s()
            note = f" ({outcome.result.error})" if outcome.result.error else ""
            self.console.print(
                f"[{self.done}/{self.total}] {episode.task_id} ep {episode.episode_index} seed {episode.seed}: "
                f"{outcome.result.status} in {outcome.result.steps} steps, {outcome.result.duration_s:.1f} s{note}"
                f" | {self._stats()} | ETA {_clock(eta)}",
                highlight=False,
                markup=False,
            )


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

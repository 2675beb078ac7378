"""Small helpers the result-table benchmarks share: counting stored successes and formatting rates."""

from __future__ import annotations

from pathlib import Path

from vlaeval.harness.store import read_episodes


def successes(run_dir: Path) -> tuple[int, int]:
    """(successful episodes, episodes) stored in a run directory; (0, 0) when nothing ran."""
    episodes = read_episodes(run_dir)
    return sum(bool(e["success"]) for e in episodes), len(episodes)


def rate(pair: tuple[int, int], empty: str = "–") -> str:
    """``"w/t (p %)"``, or ``empty`` when there were no trials."""
    wins, trials = pair
    return f"{wins}/{trials} ({100 * wins / trials:.0f} %)" if trials else empty

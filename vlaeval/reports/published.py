"""Published (reported) numbers with citations, from the versioned ``published.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

PUBLISHED_FILE = Path(__file__).with_name("published.yaml")


@dataclass(frozen=True)
class Reported:
    """One reported row: values are proportions (the file's percentages / 100)."""

    model: str
    source: str
    citation: str
    values: dict[str, float]
    pm: dict[str, float] = field(default_factory=dict)
    derived: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Published:
    version: str
    rows: tuple[Reported, ...]


def load_published(path: str | Path | None = None) -> Published:
    return _load(str(path or PUBLISHED_FILE))


@lru_cache(maxsize=4)
def _load(path: str) -> Published:
    data = yaml.safe_load(Path(path).read_text())
    sources = data["sources"]
    rows = []
    for entry in data["entries"]:
        source = sources.get(entry["source"])
        if source is None:
            raise ValueError(f"{path}: entry {entry['model']!r} cites unknown source {entry['source']!r}")
        values = {str(k): float(v) for k, v in (entry.get("values") or {}).items()}
        cells = entry.get("cells") or {}
        derived = set()
        for column, members in (source.get("derive") or {}).items():
            if column not in values and all(m in cells for m in members):
                values[column] = round(float(np.mean([cells[m] for m in members])), 1)
                derived.add(column)
        rows.append(Reported(
            model=entry["model"], source=entry["source"], citation=f"{source['paper']}, {source['table']}",
            values={k: v / 100 for k, v in values.items()},
            pm={str(k): float(v) / 100 for k, v in (entry.get("pm") or {}).items()},
            derived=frozenset(derived),
        ))
    return Published(str(data["version"]), tuple(rows))

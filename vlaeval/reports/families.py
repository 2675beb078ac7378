"""Data-driven suite grouping: which group a task belongs to, how suites combine.

The rules live in ``families.yaml`` next to this module (see its header); pass another
file to :func:`load_families` to extend or replace them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml

FAMILIES_FILE = Path(__file__).with_name("families.yaml")
GROUP_KEYS = ("group", "task_group")


@dataclass(frozen=True)
class SuiteRule:
    match: str
    value: Literal["tasks", "groups"] = "tasks"
    groups: tuple[tuple[str, str], ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    show_groups: bool = False

    def group_of(self, task_id: str) -> str:
        return next((group for pattern, group in self.groups if fnmatch.fnmatchcase(task_id, pattern)), "")


@dataclass(frozen=True)
class AggregateRule:
    name: str
    suites: tuple[str, ...]
    over: Literal["suites", "groups"] = "suites"
    require: Literal["all", "any"] = "any"

    def members(self, present: list[str]) -> list[str]:
        """Present suites that belong to this aggregate ([] when ``require: all`` is unmet)."""
        chosen = [s for s in present if any(fnmatch.fnmatchcase(s, p) for p in self.suites)]
        if self.require == "all" and not all(any(fnmatch.fnmatchcase(s, p) for s in present) for p in self.suites):
            return []
        return chosen


@dataclass(frozen=True)
class Families:
    suites: tuple[SuiteRule, ...]
    aggregates: tuple[AggregateRule, ...]

    def rule(self, suite: str) -> SuiteRule:
        return next((r for r in self.suites if fnmatch.fnmatchcase(suite, r.match)), SuiteRule(match="*"))

    def group(self, suite: str, task_id: str, protocol: dict[str, Any], metrics: dict[str, Any]) -> str:
        """The episode's group: its own metadata first, then the suite's task patterns."""
        for source in (protocol, metrics):
            for key in GROUP_KEYS:
                if isinstance(source.get(key), str) and source[key]:
                    return source[key]
        return self.rule(suite).group_of(task_id)

    def label(self, suite: str, group: str) -> str:
        return self.rule(suite).labels.get(group, group)

    def suite_order(self, suites: Iterable[str]) -> list[str]:
        """Suites in the order the aggregates list them (LIBERO spatial, object, goal, 10), others by name."""
        listed = [p for agg in self.aggregates for p in agg.suites]

        def key(suite: str) -> tuple[int, str]:
            index = next((i for i, p in enumerate(listed) if fnmatch.fnmatchcase(suite, p)), len(listed))
            return index, suite

        return sorted(set(suites), key=key)


def load_families(path: str | Path | None = None) -> Families:
    return _load(str(path or FAMILIES_FILE))


@lru_cache(maxsize=8)
def _load(path: str) -> Families:
    data = yaml.safe_load(Path(path).read_text())
    suites = tuple(
        SuiteRule(
            match=item["match"],
            value=item.get("value", "tasks"),
            groups=tuple((str(k), str(v)) for k, v in (item.get("groups") or {}).items()),
            labels=dict(item.get("labels") or {}),
            show_groups=bool(item.get("show_groups", False)),
        )
        for item in data.get("suites", [])
    )
    aggregates = tuple(
        AggregateRule(name=a["name"], suites=tuple(a["suites"]), over=a.get("over", "suites"),
                      require=a.get("require", "any"))
        for a in data.get("aggregates", [])
    )
    for rule in suites:
        if rule.value not in ("tasks", "groups"):
            raise ValueError(f"{path}: suite rule {rule.match!r} has value {rule.value!r} (tasks|groups)")
    for agg in aggregates:
        if agg.over not in ("suites", "groups") or agg.require not in ("all", "any"):
            raise ValueError(f"{path}: aggregate {agg.name!r} needs over: suites|groups and require: all|any")
    return Families(suites, aggregates)

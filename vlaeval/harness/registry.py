"""Name -> factory registries for suites and adapters, filled from entry points.

Third-party packages add suites or adapters by declaring entry points in the groups
``vlaeval.suites`` / ``vlaeval.adapters``; nothing is imported until a name is used.
Modules named in ``VLAEVAL_PLUGINS`` (comma-separated) are imported on first use, so
a local file can call :meth:`Registry.register` without packaging.
Unknown names raise :class:`UnknownNameError` with close matches.
"""

from __future__ import annotations

import difflib
import importlib
import os
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, TypeVar

from vlaeval.harness.backend import load_object

T = TypeVar("T")


class UnknownNameError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry(Generic[T]):
    """A lazy registry: values are dotted ``module:attr`` paths until first use."""

    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._targets: dict[str, str | Callable[..., T]] = {}
        self._aliases: dict[str, str] = {}
        self._loaded_entry_points = False

    def register(self, name: str, target: str | Callable[..., T], aliases: tuple[str, ...] = ()) -> None:
        self._targets[name] = target
        for alias in aliases:
            self._aliases[alias] = name

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self.group):
            self._targets.setdefault(ep.name, ep.value)
        for module in filter(None, os.environ.get("VLAEVAL_PLUGINS", "").split(",")):
            importlib.import_module(module.strip())

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._targets)

    def resolve_name(self, name: str) -> str:
        self._load_entry_points()
        name = self._aliases.get(name, name)
        if name not in self._targets:
            choices = list(self._targets) + list(self._aliases)
            close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._targets))})"
            )
        return name

    def factory(self, name: str) -> Callable[..., T]:
        name = self.resolve_name(name)
        target = self._targets[name]
        if isinstance(target, str):
            target = load_object(target)
            self._targets[name] = target
        return target

    def create(self, name: str, **kwargs: Any) -> T:
        return self.factory(name)(**kwargs)


suites: Registry[Any] = Registry("suite", "vlaeval.suites")
adapters: Registry[Any] = Registry("adapter", "vlaeval.adapters")

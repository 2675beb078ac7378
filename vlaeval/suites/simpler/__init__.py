"""SimplerEnv suites (SAPIEN 2.2.2 real-to-sim evaluation), driver side.

Four suites over the project catalog ``tasks.yaml`` (see :mod:`.catalog`):

* ``simpler-google-vm``: Google robot Visual Matching (coke can, move near, open/close drawer,
  apple in drawer), 864 episodes.
* ``simpler-google-va``: Google robot Variant Aggregation, 1722 aggregated episodes (the
  camera variants, which upstream runs but leaves out of the aggregate, are not included).
* ``simpler-widowx``: the four Bridge (WidowX) visual-matching tasks, 96 episodes.
* ``simpler-instruct``: SimplerEnv-Instruct, 80 tasks (50 Free + 30 Alt), 1138 episodes.

A vlaeval task is one aggregation sub-cell (e.g. coke can / horizontal / one URDF recolour);
its episodes are the upstream grid. Each episode's protocol carries the task config, so the
backend rebuilds exactly what the results record; ``protocol.group`` names the published
cell the task feeds (``pick_coke_can``, ``move_near``, ``drawer``, ...), which is what the
report's group means average over. Nothing here imports SAPIEN.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vlaeval.harness.specs import EpisodeSpec, SuiteSpec, TaskSpec
from vlaeval.harness.suite import Selection, Suite
from vlaeval.suites.simpler import catalog

SUITE_VERSION = "1"

SUITES: dict[str, dict[str, str]] = {
    "simpler-google-vm": {
        "catalog_suite": "simpler-vm",
        "description": "SimplerEnv Google robot visual matching (SAPIEN 2.2.2, real-image overlay)",
    },
    "simpler-google-va": {
        "catalog_suite": "simpler-va",
        "description": "SimplerEnv Google robot variant aggregation (aggregated variants only)",
    },
    "simpler-widowx": {
        "catalog_suite": "simpler-bridge",
        "description": "SimplerEnv WidowX / Bridge visual matching (4 tasks x 24 episodes)",
    },
    "simpler-instruct": {
        "catalog_suite": "simpler-instruct",
        "description": "SimplerEnv-Instruct: 50 instruction-aggregation + 30 situated-reasoning tasks",
    },
}


def default_protocol() -> dict[str, Any]:
    """Every parameter that changes the numbers (frozen per SUITE_VERSION)."""
    return {
        # None: each task's catalog limit (the upstream script's --max-episode-steps).
        "max_steps": None,
        # "last_step": success of the last executed step (upstream truncation semantics; the
        # latched coke-can / drawer-contact rules still hold). "any_step": stop at the first success.
        "outcome": "last_step",
        # "raster": SAPIEN's default rasteriser for every task (CPU-feasible); "catalog":
        # honour shader_dir=rt where upstream ray-traces (drawer tasks; GPU only in practice).
        "shader": "raster",
        # Real-image overlay ("greenscreen") in visual-matching tasks, as upstream.
        "overlay": True,
        # Seed of the env's episode RNG. "upstream": the first episode seed a freshly built
        # upstream env draws (main RNG 2022), as the SE evaluator rebuilds the env per episode.
        "env_seed": "upstream",
    }


class SimplerSuite(Suite):
    """One SimplerEnv suite; tasks are catalog sub-cells, episodes their upstream grids."""

    backend_env = "simpler"
    backend_class = "vlaeval.suites.simpler.backend:SimplerBackend"
    action_dim = 7

    def __init__(self, name: str):
        if name not in SUITES:
            raise ValueError(f"unknown SimplerEnv suite {name!r} (known: {', '.join(SUITES)})")
        info = SUITES[name]
        self.catalog_suite = info["catalog_suite"]
        self.spec = SuiteSpec(
            name=name,
            version=SUITE_VERSION,
            backend="simpler",
            description=info["description"],
            protocol=default_protocol(),
        )
        self._configs: dict[str, dict[str, Any]] | None = None

    def configs(self) -> dict[str, dict[str, Any]]:
        if self._configs is None:
            self._configs = {cfg["id"]: cfg for cfg in catalog.suite_tasks(self.catalog_suite)}
        return self._configs

    def tasks(self) -> list[TaskSpec]:
        out = []
        for index, cfg in enumerate(self.configs().values()):
            out.append(
                TaskSpec(
                    suite=self.spec.name,
                    task_id=cfg["id"],
                    instruction=catalog.instruction_for(cfg),
                    index=index,
                    n_init_states=catalog.n_episodes(cfg),
                    max_steps=int(cfg["max_steps"]),
                    group=cfg["group"],
                    extra={"env_id": cfg["env_id"], "robot": cfg["robot"], "entry": cfg["entry"],
                           "labels": cfg["labels"], "assets_complete": cfg["assets_complete"]},
                )
            )
        return out

    def task_protocol(self, task: TaskSpec, protocol: dict[str, Any]) -> dict[str, Any]:
        cfg = self.configs()[task.task_id]
        return {
            **protocol,
            "max_steps": protocol["max_steps"] or int(cfg["max_steps"]),
            "group": cfg["group"],
            "task_config": cfg,
        }

    def episodes(self, selection: Selection) -> list[EpisodeSpec]:
        """As :meth:`Suite.episodes`, with each episode's own instruction (move-near decodes it)."""
        out = []
        for ep in super().episodes(selection):
            spec = catalog.episode_at(ep.protocol["task_config"], ep.episode_index)
            out.append(dataclasses.replace(ep, instruction=spec["instruction"]))
        return out

    def backend_options(self) -> dict[str, Any]:
        return {}


def make_google_vm() -> SimplerSuite:
    return SimplerSuite("simpler-google-vm")


def make_google_va() -> SimplerSuite:
    return SimplerSuite("simpler-google-va")


def make_widowx() -> SimplerSuite:
    return SimplerSuite("simpler-widowx")


def make_instruct() -> SimplerSuite:
    return SimplerSuite("simpler-instruct")

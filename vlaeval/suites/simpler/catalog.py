"""The SimplerEnv / SimplerEnv-Instruct task catalog, expanded into vlaeval tasks and episodes.

``tasks.yaml`` (package data; the project's catalog, schema in ``shared/docs/simpler_tasks.md``)
lists every upstream run-script invocation as an *entry*. An entry expands into

* **tasks**: one per URDF recolouring (when an entry sweeps several) and per value of each
  sweep axis the entry names in ``cells`` (coke-can orientation, drawer, VA variant). A task
  is one sub-cell of the published aggregation, i.e. one upstream result directory.
* **episodes** inside a task: the product, in upstream loop order, of the remaining sweep
  axes (e.g. the drawer ``overlay_pose``), the robot x/y/yaw grid and the object grid (or
  the env-decoded episode ids).

A task is a JSON-safe dict (*task config*) that the driver puts into the episode protocol,
and :func:`episode_at` decodes one episode index of it; the backend calls the same function,
so what runs is exactly what the results record. Pure Python (PyYAML only for loading).
"""

from __future__ import annotations

import copy
import itertools
from functools import lru_cache
from importlib.resources import files
from typing import Any, Iterator

SCHEMA_VERSION = 1
OVERRIDABLE = {"env_id", "scene", "robot", "overlay", "robot_init", "obj_init", "env_kwargs", "instruction",
               "objects", "max_steps"}
URDF_SHORT = {
    None: "base",
    "recolor_tabletop_visual_matching_1": "tabletop1",
    "recolor_tabletop_visual_matching_2": "tabletop2",
    "recolor_cabinet_visual_matching_1": "cabinet1",
}
# catalog `task` -> the aggregation group (one headline cell; open + close drawer share one)
GROUPS = {"open_drawer": "drawer", "close_drawer": "drawer"}
# Entry fields that do not travel into a task config.
_ENTRY_ONLY = {"sweep", "cells", "episodes", "assets", "source", "notes", "unverified", "urdf_version", "id"}


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, Any]:
    import yaml

    doc = yaml.safe_load(files(__package__).joinpath("tasks.yaml").read_text(encoding="utf-8"))
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"tasks.yaml schema_version {doc.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    return doc


def entries(catalog_suite: str | None = None) -> list[dict[str, Any]]:
    return [t for t in load_catalog()["tasks"] if catalog_suite is None or t["suite"] == catalog_suite]


def robot_defaults(robot: str) -> dict[str, Any]:
    """The catalog's ``defaults`` block of a robot (``inherits`` resolved)."""
    defaults = load_catalog()["defaults"]
    block = dict(defaults[robot])
    parent = block.pop("inherits", None)
    return {**robot_defaults(parent), **block} if parent else block


# -- grids ----------------------------------------------------------------------------------

def linspace(start: float, stop: float, n: int) -> list[float]:
    """``numpy.linspace(start, stop, n)`` in plain floats (same arithmetic, stop exact)."""
    n = int(n)
    if n == 1:
        return [float(start)]
    step = (stop - start) / (n - 1)
    out = [i * step + start for i in range(n)]
    out[-1] = float(stop)
    return out


def values(spec: Any) -> list[float]:
    """A list of numbers, or ``{linspace: [start, stop, n]}``."""
    if isinstance(spec, dict):
        ((key, arg),) = spec.items()
        if key != "linspace":
            raise ValueError(f"unknown grid spec {spec!r}")
        return linspace(*arg)
    if not isinstance(spec, list) or not spec:
        raise ValueError(f"grid must be a non-empty list or linspace, not {spec!r}")
    return [float(v) for v in spec]


def merge(cfg: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Apply one sweep value: ``env_kwargs``/``objects`` merge key-wise, other fields replace."""
    out = copy.deepcopy(cfg)
    for key, value in override.items():
        if key == "label":
            continue
        if key not in OVERRIDABLE:
            raise ValueError(f"sweep value may not override {key!r}")
        if key in ("env_kwargs", "objects") and isinstance(out.get(key), dict):
            out[key] = {**out[key], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


# -- tasks ----------------------------------------------------------------------------------

def _short_urdf(urdf: str | None) -> str:
    return URDF_SHORT.get(urdf, str(urdf))


def entry_tasks(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Task configs of one catalog entry, in upstream order (urdf, then cell axes)."""
    sweep = entry.get("sweep", [])
    cells = set(entry.get("cells", []))
    cell_axes = [ax for ax in sweep if ax["axis"] in cells]
    episode_axes = [ax for ax in sweep if ax["axis"] not in cells]
    urdfs = entry["urdf_version"]
    base = {k: copy.deepcopy(v) for k, v in entry.items() if k not in _ENTRY_ONLY}
    out = []
    for urdf in urdfs:
        for combo in itertools.product(*(ax["values"] for ax in cell_axes)):
            cfg = base
            labels: dict[str, str] = {}
            for ax, val in zip(cell_axes, combo):
                cfg = merge(cfg, val)
                labels[ax["axis"]] = val["label"]
            cfg = copy.deepcopy(cfg)
            parts = [entry["id"], *labels.values()]
            if len(urdfs) > 1:
                parts.append(f"urdf-{_short_urdf(urdf)}")
                labels["urdf"] = _short_urdf(urdf)
            cfg.update(
                id="/".join(parts),
                entry=entry["id"],
                urdf_version=urdf,
                labels=labels,
                episode_axes=copy.deepcopy(episode_axes),
                group=_group(entry),
                catalog_group=entry["group"],
                assets_complete=entry["assets"] == "complete",
            )
            out.append(cfg)
    return out


def _episode_dims(cfg: dict[str, Any]) -> list[list[Any]]:
    """The mixed-radix digits of a task's episodes (outermost first)."""
    return [ax["values"] for ax in cfg["episode_axes"]]


def _group(entry: dict[str, Any]) -> str:
    """The aggregation group: Instruct free/alt; otherwise the published cell (drawer = open + close)."""
    if entry["suite"] == "simpler-instruct":
        return str(entry["group"])
    return GROUPS.get(entry["task"], entry["task"])


def _pose_and_objects(cfg: dict[str, Any]) -> tuple[list[tuple[float, float, float]], list[dict[str, Any]]]:
    ri, oi = cfg["robot_init"], cfg["obj_init"]
    if ri is None:
        raise ValueError(f"{cfg['id']}: robot_init unset (a sweep axis should set it)")
    poses = [(x, y, yaw) for x in values(ri["x"]) for y in values(ri["y"]) for yaw in values(ri["yaw"])]
    if oi["mode"] == "xy":
        objs = [{"xy": [x, y]} for x in values(oi["x"]) for y in values(oi["y"])]
    elif oi["mode"] == "episode":
        start, stop = oi["episode_range"]
        objs = [{"episode_id": i} for i in range(start, stop)]
    else:
        raise ValueError(f"unknown obj_init mode {oi['mode']!r}")
    return poses, objs


def n_episodes(cfg: dict[str, Any]) -> int:
    dims = _episode_dims(cfg)
    n = 1
    for dim in dims:
        n *= len(dim)
    # An episode axis may override robot_init/obj_init; the grids must keep their size.
    sizes = set()
    for combo in itertools.product(*dims):
        resolved = cfg
        for pick in combo:
            resolved = merge(resolved, pick)
        poses, objs = _pose_and_objects(resolved)
        sizes.add((len(poses), len(objs)))
    if len(sizes) != 1:
        raise ValueError(f"{cfg['id']}: episode axes change the size of the pose/object grid")
    ((n_poses, n_objs),) = sizes
    return n * n_poses * n_objs


def episode_at(cfg: dict[str, Any], index: int) -> dict[str, Any]:
    """Episode ``index`` of a task config: the fully resolved settings of one upstream reset."""
    total = n_episodes(cfg)
    if not 0 <= index < total:
        raise IndexError(f"episode {index} out of range for {cfg['id']} ({total} episodes)")
    dims = _episode_dims(cfg)
    resolved = cfg
    labels = dict(cfg.get("labels", {}))
    # Episode-axis values may change the pose/object grids, so decode the inner part last.
    inner = total
    for ax, dim in zip(cfg["episode_axes"], dims):
        inner //= len(dim)
        pick = dim[index // inner]
        index %= inner
        resolved = merge(resolved, pick)
        labels[ax["axis"]] = pick["label"]
    poses, objs = _pose_and_objects(resolved)
    x, y, yaw = poses[index // len(objs)]
    obj = objs[index % len(objs)]
    instruction = instruction_for(resolved, obj.get("episode_id"))
    return {
        "task_id": cfg["id"],
        "env_id": resolved["env_id"],
        "scene": resolved["scene"],
        "robot": resolved["robot"],
        "max_steps": resolved["max_steps"],
        "overlay": resolved["overlay"],
        "urdf_version": resolved["urdf_version"],
        "env_kwargs": copy.deepcopy(resolved["env_kwargs"]),
        "objects": copy.deepcopy(resolved.get("objects") or {}),
        "success": resolved["success"],
        "partial": resolved.get("partial"),
        "robot_init": {"xy": [x, y], "yaw": yaw},
        "obj_init": obj,
        "instruction": instruction,
        "instructions": _phases(resolved["instruction"]) if isinstance(resolved["instruction"], list) else None,
        "instruction_spec": (copy.deepcopy(resolved["instruction"])
                             if isinstance(resolved["instruction"], dict) else None),
        "labels": labels,
    }


def _phases(instruction: list[str]) -> list[str]:
    return [str(s) for s in instruction]


def instruction_for(cfg: dict[str, Any], episode_id: int | None = None) -> str:
    """The (first) instruction of an episode; move-near templates are decoded by episode id."""
    ins = cfg["instruction"]
    if isinstance(ins, str):
        return ins
    if isinstance(ins, list):
        return str(ins[0])
    if isinstance(ins, dict):
        if episode_id is None:
            return str(ins["template"])
        src, tgt, _ = move_near_episode(ins, episode_id)
        return ins["template"].format(src=ins["names"][src], tgt=ins["names"][tgt])
    raise ValueError(f"{cfg.get('id')}: no instruction")


def move_near_episode(spec: dict[str, Any], episode_id: int) -> tuple[str, str, dict[str, Any]]:
    """(source id, target id, layout) of a move-near episode: upstream's decoding rule."""
    triplet = spec["triplets"][episode_id // 12]
    i_src, i_tgt = spec["pairs"][episode_id % 6]
    layout = spec["layouts"][(episode_id % 12) // 6]
    return triplet[i_src], triplet[i_tgt], {"triplet": list(triplet), "xys": layout,
                                            "source": i_src, "target": i_tgt}


def iter_episodes(cfg: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for i in range(n_episodes(cfg)):
        yield episode_at(cfg, i)


@lru_cache(maxsize=None)
def _suite_tasks(catalog_suite: str, include_excluded: bool) -> tuple[dict[str, Any], ...]:
    out = []
    for entry in entries(catalog_suite):
        if not entry["aggregate_in"] and not include_excluded:
            continue
        out.extend(entry_tasks(entry))
    return tuple(out)


def suite_tasks(catalog_suite: str, include_excluded: bool = False) -> list[dict[str, Any]]:
    """Task configs of a catalog suite (``simpler-vm``, ``simpler-bridge``, ...), copies."""
    return copy.deepcopy(list(_suite_tasks(catalog_suite, include_excluded)))


def find_task(task_id: str) -> dict[str, Any]:
    for suite in ("simpler-vm", "simpler-bridge", "simpler-va", "simpler-instruct"):
        for cfg in _suite_tasks(suite, True):
            if cfg["id"] == task_id:
                return copy.deepcopy(cfg)
    raise KeyError(f"no SimplerEnv task {task_id!r} in the catalog")

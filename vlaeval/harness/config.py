"""Run configuration: typed, from a YAML file with CLI flags layered on top."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A configuration problem, phrased as one line for the user."""


class RunConfig(BaseModel):
    """Everything ``vlaeval run`` needs; recorded verbatim with the run."""

    model_config = ConfigDict(extra="forbid")

    suite: str
    model: str
    model_args: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0])
    episodes_per_task: int | None = Field(default=None, ge=1)
    episodes: list[int] | None = None
    """Explicit init-state indices (e.g. held-out states 20-29); excludes ``episodes_per_task``."""
    tasks: list[str] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)
    protocol: dict[str, Any] = Field(default_factory=dict)
    out: str | None = None
    workers: int = Field(default=1, ge=1)
    executor: Literal["local", "inprocess", "ray"] = "local"
    address: str | None = None
    retries: int = Field(default=1, ge=0)
    watchdog_s: float = Field(default=300.0, gt=0)
    record_video: bool = False
    record_demos: str | None = None
    """Directory of a LeRobot dataset to append demonstrations to."""
    max_batch: int = Field(default=1, ge=1)
    max_wait_ms: float = Field(default=2.0, ge=0)
    policy_host: str = "127.0.0.1"

    @field_validator("seeds", "episodes", mode="before")
    @classmethod
    def _parse_int_lists(cls, value: Any) -> Any:
        return parse_int_list(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_episode_selector(self) -> RunConfig:
        if self.episodes is not None and self.episodes_per_task is not None:
            raise ValueError("give either episodes (init-state indices) or episodes_per_task, not both")
        if self.episodes is not None and (not self.episodes or min(self.episodes) < 0):
            raise ValueError("episodes must list init-state indices >= 0, e.g. 20-29")
        return self

    def output_dir(self) -> Path:
        """``--out``, or ``runs/<suite>__<model>`` (stable, so re-running resumes)."""
        if self.out:
            return Path(self.out)
        return Path("runs") / f"{self.suite}__{slug(self.model)}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "model"


def parse_int_list(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` or ``"0,3-5"`` -> list of ints."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)-(\d+)", part)
        try:
            out.extend(range(int(match[1]), int(match[2]) + 1) if match else [int(part)])
        except ValueError:
            raise ConfigError(f"cannot read {text!r} as a list of integers (e.g. 0,1,2 or 0-4)") from None
    return out


def parse_assignments(pairs: tuple[str, ...] | list[str], what: str) -> dict[str, Any]:
    """``["k=v", ...]`` with YAML-typed values (``3`` -> int, ``true`` -> bool)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} must look like key=value, got {pair!r}")
        result[key.strip()] = yaml.safe_load(raw) if raw else ""
    return result


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Merge a YAML config file with CLI overrides (CLI wins; dicts merge key by key)."""
    data: dict[str, Any] = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of options")
        data = {k.replace("-", "_"): v for k, v in (loaded or {}).items()}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    try:
        return RunConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "config"
        message = "unknown option" if error["type"] == "extra_forbidden" else error["msg"]
        message = message.removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "invalid configuration: " + "; ".join(problems)

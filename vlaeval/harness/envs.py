"""Locating the per-backend Python environments that ``scripts/setup`` builds.

Each simulator backend runs in its own venv at ``$VLAEVAL_HOME/envs/<name>``
(``VLAEVAL_HOME`` defaults to ``~/.cache/vlaeval``), outside the clone. Standard
library only.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

STAMP = ".vlaeval-stamp"


class BackendEnvMissing(RuntimeError):
    """The venv of a backend does not exist (``scripts/setup`` was not run for it)."""


def vlaeval_home() -> Path:
    """``$VLAEVAL_HOME`` or ``~/.cache/vlaeval``."""
    return Path(os.environ.get("VLAEVAL_HOME") or Path.home() / ".cache" / "vlaeval").expanduser()


def envs_dir() -> Path:
    return vlaeval_home() / "envs"


def _override_var(name: str) -> str:
    return f"VLAEVAL_{name.upper().replace('-', '_')}_PYTHON"


def backend_python(name: str) -> str:
    """Interpreter of backend env ``name``: ``$VLAEVAL_<NAME>_PYTHON`` or the setup-built venv."""
    override = os.environ.get(_override_var(name))
    if override:
        return override
    python = envs_dir() / name / "bin" / "python"
    if python.exists():
        return str(python)
    raise BackendEnvMissing(
        f"no '{name}' environment at {python.parent.parent}; run `scripts/setup --backends {name}` "
        f"(or set {_override_var(name)})"
    )


def _python_version(python: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def describe_envs() -> dict[str, Any]:
    """Which backend envs exist, their Python versions and setup stamps (for ``vlaeval doctor``)."""
    root = envs_dir()
    envs: dict[str, Any] = {}
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for name in names:
        venv = root / name
        python = venv / "bin" / "python"
        stamp: dict[str, Any] | None = None
        try:
            stamp = json.loads((venv / STAMP).read_text())
        except (OSError, ValueError):
            pass
        envs[name] = {
            "path": str(venv),
            "python": str(python) if python.exists() else None,
            "python_version": _python_version(str(python)) if python.exists() else None,
            "stamp": stamp,
            "complete": stamp is not None,
            "override": os.environ.get(_override_var(name)),
        }
    return {"home": str(vlaeval_home()), "envs": envs}

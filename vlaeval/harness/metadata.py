"""Reproducibility metadata recorded with every run: code revision, versions, host."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import vlaeval

TRACKED_PACKAGES = ("vlaeval", "numpy", "msgpack", "websockets", "pandas", "torch", "transformers", "ray")


def git_revision(path: str | Path | None = None) -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the checkout that holds vlaeval (or ``path``)."""
    where = Path(path) if path else Path(vlaeval.__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def host_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def run_metadata() -> dict[str, Any]:
    return {
        "vlaeval_version": vlaeval.__version__,
        "git": git_revision(),
        "packages": package_versions(),
        "host": host_info(),
        "argv": sys.argv,
    }

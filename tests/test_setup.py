"""Cheap checks of backend-env discovery and of scripts/setup's argument handling."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vlaeval.harness import envs
from vlaeval.harness.envs import BackendEnvMissing, backend_python, describe_envs, vlaeval_home

REPO = Path(__file__).resolve().parent.parent
SETUP = REPO / "scripts" / "setup"


def _fake_venv(home: Path, name: str, stamp: dict | None = None) -> Path:
    python = home / "envs" / name / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho 3.11.99\n")
    python.chmod(0o755)
    if stamp is not None:
        (home / "envs" / name / envs.STAMP).write_text(json.dumps(stamp))
    return python


def test_home_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VLAEVAL_HOME", raising=False)
    assert vlaeval_home() == Path.home() / ".cache" / "vlaeval"
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path))
    assert vlaeval_home() == tmp_path


def test_backend_python(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path))
    monkeypatch.delenv("VLAEVAL_FAKE_PYTHON", raising=False)
    with pytest.raises(BackendEnvMissing, match=r"scripts/setup --backends fake"):
        backend_python("fake")
    python = _fake_venv(tmp_path, "fake")
    assert backend_python("fake") == str(python)
    monkeypatch.setenv("VLAEVAL_FAKE_PYTHON", "/opt/other/python")
    assert backend_python("fake") == "/opt/other/python"


def test_describe_envs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path))
    assert describe_envs() == {"home": str(tmp_path), "envs": {}}
    _fake_venv(tmp_path, "done", {"hash": "abc", "python": "3.11.99"})
    _fake_venv(tmp_path, "partial")
    info = describe_envs()["envs"]
    assert info["done"]["complete"] and info["done"]["stamp"]["hash"] == "abc"
    assert info["done"]["python_version"] == "3.11.99"
    assert not info["partial"]["complete"] and info["partial"]["stamp"] is None


def test_setup_script_syntax_and_args(tmp_path: Path) -> None:
    for script in ("setup", "test"):
        subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=True)
    env = {"VLAEVAL_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    bad = subprocess.run([str(SETUP), "--backends", "nosuch"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "unknown backend 'nosuch'" in bad.stderr
    assert not (tmp_path / "envs").exists()  # rejected before touching anything
    ok = subprocess.run([str(SETUP), "--help"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "--backends" in ok.stdout

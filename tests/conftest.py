"""Shared test setup: the toy suite (harness logic tests) is importable everywhere.

Sim workers inherit the environment, so setting PYTHONPATH / VLAEVAL_PLUGINS here makes
the toy suite visible to worker subprocesses and to `vlaeval` CLI subprocesses too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SUPPORT = str(Path(__file__).parent / "support")
sys.path.insert(0, SUPPORT)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [SUPPORT, os.environ.get("PYTHONPATH", "")]))
os.environ["VLAEVAL_PLUGINS"] = "toy_suite"
os.environ["VLAEVAL_TOY_PYTHON"] = sys.executable

"""InstructVLA (arXiv 2507.17520) re-implementation: model, checkpoints, training.

Modules: ``config`` (presets), ``model`` (:class:`InstructVLA`, ``build_model``), ``checkpoint``
(``save_checkpoint`` / ``load_checkpoint`` / ``load_upstream``), ``generation``
(reasoning-then-act), ``train`` / ``cli`` (``train stage1|stage2``). Importing this package
does not import torch; the submodules do.
"""

from __future__ import annotations

from pathlib import Path

from vlaeval.models.instructvla.config import PRESETS, InstructVLAConfig, get_config

DEMO_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "tiny-libero-spatial-task0"
"""The shipped tiny checkpoint trained on oracle demonstrations (see its README.md)."""

__all__ = ["DEMO_CHECKPOINT", "PRESETS", "InstructVLAConfig", "get_config"]

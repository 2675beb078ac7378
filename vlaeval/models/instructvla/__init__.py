"""InstructVLA (arXiv 2507.17520) re-implementation: model, checkpoints, training.

Modules: ``config`` (presets), ``model`` (:class:`InstructVLA`, ``build_model``), ``checkpoint``
(``save_checkpoint`` / ``load_checkpoint`` / ``load_upstream``), ``generation``
(reasoning-then-act), ``train`` / ``cli`` (``train stage1|stage2``). Importing this package
does not import torch; the submodules do.
"""

from __future__ import annotations

from vlaeval.models.instructvla.config import PRESETS, InstructVLAConfig, get_config

__all__ = ["PRESETS", "InstructVLAConfig", "get_config"]

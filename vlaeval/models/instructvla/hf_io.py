"""Reading Hugging Face-style model directories (config.json + safetensors / bin shards)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def read_json(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def weight_files(path: str | Path) -> list[Path]:
    """The weight files of a HF directory, in a stable order."""
    root = Path(path)
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = root / index_name
        if index.exists():
            return [root / name for name in sorted(set(read_json(index)["weight_map"].values()))]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (root / name).exists():
            return [root / name]
    raise FileNotFoundError(f"{root}: no model.safetensors / pytorch_model.bin (or their index)")


def read_weights(file: Path) -> dict[str, torch.Tensor]:
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    return torch.load(str(file), map_location="cpu", weights_only=True)


def read_safetensors_dir(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a HF directory merged into one state dict."""
    state: dict[str, torch.Tensor] = {}
    for file in weight_files(path):
        state.update(read_weights(file))
    return state

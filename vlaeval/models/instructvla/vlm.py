"""Eagle2-style VLM: SigLIP -> pixel shuffle -> ``mlp1`` projector -> Qwen2 (adapted by lora.py).

Image features replace the ``<IMG_CONTEXT>`` embeddings. The LM loss is the "fast" upstream
loss: ``lm_head`` is applied only where the shifted label is not -100, mean cross-entropy.
A base Eagle2 directory (``config.json`` with ``vision_config`` / ``llm_config`` + safetensors
with ``vision_model.*``, ``mlp1.*``, ``language_model.*``) loads with :func:`read_eagle_dir`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vlaeval.models.instructvla.config import InstructVLAConfig, LLMSettings, SiglipSettings
from vlaeval.models.instructvla.hf_io import read_json, read_safetensors_dir
from vlaeval.models.instructvla.lora import AdaptedLM, PlainLM, wrap_language_model
from vlaeval.models.instructvla.prompts import IGNORE_INDEX

SIGLIP_PREFIX = "vision_model."
"""Canonical SigLIP keys carry the HF-hub prefix ``vision_model.`` (transformers 4.x layout)."""


def siglip_config(cfg: SiglipSettings) -> Any:
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        layer_norm_eps=cfg.layer_norm_eps,
        vision_use_head=False,
    )


def qwen2_config(cfg: LLMSettings) -> Any:
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        rope_theta=cfg.rope_theta,
        rms_norm_eps=cfg.rms_norm_eps,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=cfg.tie_word_embeddings,
        use_cache=False,
    )


def pixel_shuffle(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """InternVL/Eagle ``pixel_shuffle`` (ps_version v2): ``(N, W, H, C) -> (N, W r, H r, C / r^2)``."""
    n, w, h, c = x.shape
    x = x.view(n, w, int(h * ratio), int(c / ratio)).permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * ratio), int(w * ratio), int(c / (ratio * ratio)))
    return x.permute(0, 2, 1, 3).contiguous()


def align_prefix(state: dict[str, torch.Tensor], own_keys: set[str], prefix: str) -> dict[str, torch.Tensor]:
    """Add or strip ``prefix`` so the keys match the installed module's layout."""
    if not state or any(k in own_keys for k in state):
        return state
    stripped = {k.removeprefix(prefix): v for k, v in state.items()}
    if any(k in own_keys for k in stripped):
        return stripped
    return {prefix + k: v for k, v in state.items()}


class EagleVLM(nn.Module):
    def __init__(self, cfg: InstructVLAConfig, img_context_token_id: int):
        super().__init__()
        from transformers import Qwen2ForCausalLM, SiglipVisionModel

        self.cfg = cfg
        self.img_context_token_id = img_context_token_id
        self.vision_model = SiglipVisionModel(siglip_config(cfg.vision))
        vit = cfg.vision.hidden_size * int(1 / cfg.downsample_ratio) ** 2
        llm = cfg.llm.hidden_size
        self.mlp1 = nn.Sequential(nn.LayerNorm(vit), nn.Linear(vit, llm), nn.GELU(), nn.Linear(llm, llm))
        self.language_model: AdaptedLM = PlainLM(Qwen2ForCausalLM(qwen2_config(cfg.llm)))

    def adapt(self, stage: str) -> None:
        """Wrap the (plain) LM for ``stage`` (stage1: LoRA, stage2: mixture of LoRA experts)."""
        if not isinstance(self.language_model, PlainLM):
            raise RuntimeError(f"language model is already adapted ({self.language_model.kind})")
        self.language_model = wrap_language_model(self.language_model.causal_lm, stage, self.cfg.lora)

    def extract_feature(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = self.mlp1[1].weight.dtype
        embeds = self.vision_model(pixel_values=pixel_values.to(dtype)).last_hidden_state
        side = int(embeds.shape[1] ** 0.5)
        embeds = pixel_shuffle(embeds.reshape(embeds.shape[0], side, side, -1), self.cfg.downsample_ratio)
        return self.mlp1(embeds.reshape(embeds.shape[0], -1, embeds.shape[-1]))

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None) -> torch.Tensor:
        embeds = self.language_model.input_embeddings(input_ids)
        if pixel_values is None:
            return embeds
        selected = input_ids == self.img_context_token_id
        features = self.extract_feature(pixel_values).reshape(-1, embeds.shape[-1]).to(embeds.dtype)
        if int(selected.sum()) != features.shape[0]:
            raise ValueError(f"{int(selected.sum())} <IMG_CONTEXT> tokens for {features.shape[0]} image features")
        embeds = embeds.clone()
        embeds[selected] = features
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Last hidden states ``(B, L, hidden)`` and the LM loss (None without labels)."""
        hidden = self.language_model.hidden(self.embed(input_ids, pixel_values), attention_mask)
        return hidden, (None if labels is None else self.lm_loss(hidden, labels))

    def lm_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = labels[:, 1:]
        selected = targets != IGNORE_INDEX
        if not bool(selected.any()):
            return hidden.sum() * 0.0
        logits = self.language_model.lm_head(hidden[:, :-1][selected])
        return F.cross_entropy(logits.float(), targets[selected])

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.language_model.lm_head(hidden).float()

    def canonical_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """Component state dicts in the checkpoint layout (see checkpoint.py)."""
        vision = {k if k.startswith(SIGLIP_PREFIX) else SIGLIP_PREFIX + k: v for k, v in self.vision_model.state_dict().items()}
        return {"vision_model": vision, "mlp1": self.mlp1.state_dict(), "language_model": self.language_model.canonical_state_dict()}

    def vision_keys(self) -> set[str]:
        return set(self.vision_model.state_dict())


def read_eagle_dir(path: str | Path, base: InstructVLAConfig) -> tuple[InstructVLAConfig, dict[str, dict[str, torch.Tensor]]]:
    """Config and component weights of a base Eagle2 checkpoint directory.

    The returned config has ``vision``/``llm``/``downsample_ratio`` from the directory's
    ``config.json``; ``llm.vocab_size`` is the checkpoint's embedding rows (the caller adds
    the meta tokens). Weights are split by their top-level prefix.
    """
    raw = read_json(Path(path) / "config.json")
    vision, llm = raw["vision_config"], raw["llm_config"]
    if vision.get("model_type") not in (None, "siglip_vision_model"):
        raise ValueError(f"{path}: only SigLIP vision towers are supported (got {vision.get('model_type')})")
    image_size = raw.get("force_image_size") or vision["image_size"]
    cfg = dataclasses.replace(
        base,
        vision=SiglipSettings(
            hidden_size=vision["hidden_size"],
            intermediate_size=vision["intermediate_size"],
            num_hidden_layers=vision["num_hidden_layers"],
            num_attention_heads=vision["num_attention_heads"],
            image_size=image_size,
            patch_size=vision["patch_size"],
            layer_norm_eps=vision.get("layer_norm_eps", 1e-6),
        ),
        llm=LLMSettings(
            hidden_size=llm["hidden_size"],
            intermediate_size=llm["intermediate_size"],
            num_hidden_layers=llm["num_hidden_layers"],
            num_attention_heads=llm["num_attention_heads"],
            num_key_value_heads=llm.get("num_key_value_heads", llm["num_attention_heads"]),
            vocab_size=llm["vocab_size"],
            rope_theta=llm.get("rope_theta", 1_000_000.0),
            rms_norm_eps=llm.get("rms_norm_eps", 1e-6),
            max_position_embeddings=llm.get("max_position_embeddings", 32768),
            tie_word_embeddings=llm.get("tie_word_embeddings", raw.get("tie_word_embeddings", False)),
        ),
        downsample_ratio=raw.get("downsample_ratio", 0.5),
    )
    if raw.get("select_layer", -1) != -1:
        raise ValueError(f"{path}: select_layer {raw['select_layer']} unsupported (upstream uses -1)")
    parts: dict[str, dict[str, torch.Tensor]] = {"vision_model": {}, "mlp1": {}, "language_model": {}}
    for key, value in read_safetensors_dir(path).items():
        head, _, rest = key.partition(".")
        if head not in parts:
            raise ValueError(f"{path}: unexpected weight {key!r}")
        parts[head][rest] = value
    return cfg, parts

"""FiLM-conditioned DINOv2-with-registers ViT, in timm's parameter layout.

Parameter names equal upstream's ``film_vision_model.vision_model.*`` (a timm
``vit_large_patch14_reg4_dinov2`` whose blocks are wrapped as ``blocks.i.block`` with
``blocks.i.scale``/``shift`` FiLM projections), so released checkpoints load by identity.
Pretrained DINOv2 weights come from a Hugging Face ``Dinov2WithRegistersModel`` directory
through :func:`hf_dinov2_to_timm`.

FiLM per block: ``x = x + ls1(attn(norm1(x))); x = x * (1 + scale(c)) + shift(c);
x = x + ls2(mlp(norm2(x)))`` with ``c`` the mean of the raw latent tokens.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vlaeval.models.instructvla.config import DinoSettings


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int, value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, cfg: DinoSettings):
        super().__init__()
        dim = cfg.hidden_size
        self.norm1 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.attn = Attention(dim, cfg.num_attention_heads)
        self.ls1 = LayerScale(dim, cfg.layerscale_value)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        self.ls2 = LayerScale(dim, cfg.layerscale_value)


class FiLMBlock(nn.Module):
    def __init__(self, cfg: DinoSettings, cond_dim: int):
        super().__init__()
        self.block = Block(cfg)
        self.scale = nn.Linear(cond_dim, cfg.hidden_size)
        self.shift = nn.Linear(cond_dim, cfg.hidden_size)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        blk = self.block
        x = x + blk.ls1(blk.attn(blk.norm1(x)))
        x = x * (1 + self.scale(cond)[:, None]) + self.shift(cond)[:, None]
        return x + blk.ls2(blk.mlp(blk.norm2(x)))


class FiLMViT(nn.Module):
    """timm-layout ViT; ``forward`` returns the patch tokens after block ``feature_block``."""

    def __init__(self, cfg: DinoSettings, cond_dim: int):
        super().__init__()
        self.cfg = cfg
        dim = cfg.hidden_size
        grid = cfg.image_size // cfg.patch_size
        self.num_prefix_tokens = 1 + cfg.num_register_tokens
        self.patch_embed = PatchEmbed(cfg.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.reg_token = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid, dim) * 0.02)
        self.blocks = nn.Sequential(*[FiLMBlock(cfg, cond_dim) for _ in range(cfg.num_hidden_layers)])
        self.norm = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        """Kept for checkpoint fidelity; the feature map is taken before it (upstream ``norm=False``)."""

    def forward(self, pixel_values: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixel_values.to(self.pos_embed.dtype)) + self.pos_embed
        b = x.shape[0]
        x = torch.cat([self.cls_token.expand(b, -1, -1), self.reg_token.expand(b, -1, -1), x], dim=1)
        last = len(self.blocks) - 1 if self.cfg.run_all_blocks else self.cfg.feature_block
        feature = x
        for i, block in enumerate(self.blocks):
            if i > last:
                break
            x = block(x, cond)
            if i == self.cfg.feature_block:
                feature = x
        return feature[:, self.num_prefix_tokens :]


class FiLMDino(nn.Module):
    """Upstream ``FiLMedDinoVisionBackbone``: conditions on the mean of the latent tokens."""

    def __init__(self, cfg: DinoSettings, cond_dim: int):
        super().__init__()
        self.vision_model = FiLMViT(cfg, cond_dim)

    def forward(self, pixel_values: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        return self.vision_model(pixel_values, latents.mean(dim=1))


_HF_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_HF_RENAMES = {
    "norm1": "norm1",
    "norm2": "norm2",
    "layer_scale1.lambda1": "ls1.gamma",
    "layer_scale2.lambda1": "ls2.gamma",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "attention.o_proj": "attn.proj",
    "attention.output.dense": "attn.proj",
}
_HF_QKV = {
    "attention.q_proj": 0, "attention.k_proj": 1, "attention.v_proj": 2,
    "attention.attention.query": 0, "attention.attention.key": 1, "attention.attention.value": 2,
}


def _resample_grid(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """Bicubic (antialiased) resampling of a square ``(1, N, D)`` patch position table."""
    n, dim = pos.shape[1], pos.shape[2]
    old = int(round(n**0.5))
    if old == grid:
        return pos
    table = pos.reshape(1, old, old, dim).permute(0, 3, 1, 2).float()
    table = F.interpolate(table, size=(grid, grid), mode="bicubic", align_corners=False, antialias=True)
    return table.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(pos.dtype)


def hf_dinov2_to_timm(state: dict[str, torch.Tensor], cfg: DinoSettings) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a HF ``Dinov2WithRegistersModel`` state dict to :class:`FiLMViT` keys (FiLM layers excluded).

    Handles the transformers 4.x (``attention.attention.query``) and 5.x (``attention.q_proj``)
    attention names; folds the class position embedding into ``cls_token`` (timm's
    ``no_embed_class``) and resamples the patch grid to ``cfg.image_size``. Returns the mapped
    dict and the source keys it did not use.
    """
    state = {k.removeprefix("dinov2_with_registers.").removeprefix("model."): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    qkv: dict[tuple[int, str], dict[int, torch.Tensor]] = {}
    for key, value in state.items():
        if key == "embeddings.cls_token":
            continue
        if key == "embeddings.position_embeddings":
            grid = cfg.image_size // cfg.patch_size
            out["pos_embed"] = _resample_grid(value[:, 1:], grid)
            out["cls_token"] = state["embeddings.cls_token"] + value[:, :1]
        elif key == "embeddings.register_tokens":
            out["reg_token"] = value
        elif key.startswith("embeddings.patch_embeddings.projection."):
            out["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("layernorm."):
            out["norm." + key.rsplit(".", 1)[1]] = value
        elif match := _HF_LAYER.match(key):
            index, rest = int(match.group(1)), match.group(2)
            module, _, leaf = rest.rpartition(".")
            prefix = f"blocks.{index}.block."
            if rest in _HF_RENAMES:  # parameters named without a ".weight" leaf (layer scale)
                out[prefix + _HF_RENAMES[rest]] = value
            elif module in _HF_RENAMES:
                out[prefix + _HF_RENAMES[module] + "." + leaf] = value
            elif module in _HF_QKV:
                qkv.setdefault((index, leaf), {})[_HF_QKV[module]] = value
            else:
                unused.append(key)
        else:
            unused.append(key)
    for (index, leaf), parts in qkv.items():
        if len(parts) != 3:
            raise ValueError(f"DINOv2 layer {index}: incomplete q/k/v {leaf}")
        out[f"blocks.{index}.block.attn.qkv.{leaf}"] = torch.cat([parts[0], parts[1], parts[2]], dim=0)
    return out, unused


def load_hf_dinov2(module: FiLMViT, path: str) -> list[str]:
    """Initialise the ViT part of ``module`` from a HF DINOv2-with-registers directory; returns unused keys."""
    from vlaeval.models.instructvla.hf_io import read_safetensors_dir

    mapped, unused = hf_dinov2_to_timm(read_safetensors_dir(path), module.cfg)
    expected = {k for k in module.state_dict() if ".scale." not in k and ".shift." not in k}
    missing = sorted(expected - set(mapped))
    extra = sorted(set(mapped) - expected)
    if missing or extra:
        raise ValueError(f"{path}: DINOv2 weights do not fit the config (missing {missing[:5]}, unexpected {extra[:5]})")
    module.load_state_dict(mapped, strict=False)
    return unused


def dino_config_from_hf(config: dict[str, Any], image_size: int = 224) -> DinoSettings:
    """DinoSettings from a HF ``Dinov2WithRegistersConfig`` dict (the DINO image size stays 224)."""
    return DinoSettings(
        hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        mlp_ratio=config.get("mlp_ratio", 4.0),
        patch_size=config.get("patch_size", 14),
        image_size=image_size,
        num_register_tokens=config.get("num_register_tokens", 4),
        layerscale_value=config.get("layerscale_value", 1.0),
        layer_norm_eps=config.get("layer_norm_eps", 1e-6),
    )

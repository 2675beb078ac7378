"""Model configuration: dataclasses for every component and the named presets.

``tiny`` is a few-MB random model for tests; ``base`` has the real InstructVLA sizes
(Eagle2-2B-style VLM: SigLIP-so400m @448 + pixel shuffle + MLP projector + Qwen2.5-1.5B;
DINOv2-L/14-reg4 FiLM tower; 12-layer 768-wide action transformer; chunk 16, one image).
``base-libero`` is the LIBERO wrist variant (two images, chunk 8).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

MaskMode = Literal["bias", "block", "none"]
Stage = Literal["stage1", "stage2"]


@dataclass
class SiglipSettings:
    """SigLIP vision tower (HF ``SiglipVisionConfig`` fields)."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    image_size: int = 448
    patch_size: int = 14
    layer_norm_eps: float = 1e-6


@dataclass
class LLMSettings:
    """Qwen2 language model (HF ``Qwen2Config`` fields).

    ``vocab_size`` is the embedding row count *after* the meta tokens were added
    (= ``len(tokenizer)``, as upstream resizes to it); the base value is inferred.
    """

    hidden_size: int = 1536
    intermediate_size: int = 8960
    num_hidden_layers: int = 28
    num_attention_heads: int = 12
    num_key_value_heads: int = 2
    vocab_size: int = 151738
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = True


@dataclass
class DinoSettings:
    """FiLM-wrapped DINOv2-with-registers ViT (timm layout)."""

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    mlp_ratio: float = 4.0
    patch_size: int = 14
    image_size: int = 224
    num_register_tokens: int = 4
    layerscale_value: float = 1e-5
    layer_norm_eps: float = 1e-6
    feature_block: int = 2
    """Index of the block whose output is the feature map. Upstream quirk: 2 (see README)."""
    run_all_blocks: bool = False
    """Also run the blocks after ``feature_block`` (identical outputs; upstream did, wastefully)."""


@dataclass
class ExpertSettings:
    """Llama-style action transformer ("VideoGPT")."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_key_value_heads: int = 12
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1000.0
    attention_dropout: float = 0.1
    mask_mode: MaskMode = "bias"
    """``bias``: upstream's +1 additive bias (checkpoint fidelity); ``block``: real block-causal mask."""


@dataclass
class LoRASettings:
    """Stage-1 LoRA and stage-2 mixture-of-LoRA (X-LoRA-style) settings."""

    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: tuple[str, ...] = (
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.down_proj",
        "mlp.up_proj",
    )
    experts: tuple[str, ...] = ("action", "language")
    gate_depth: int = 4
    gate_size: int = 128
    gate_dropout: float = 0.2
    softmax_temperature: float = 1.0

    @property
    def scaling(self) -> float:
        return self.alpha / self.r


@dataclass
class InstructVLAConfig:
    """Everything needed to build the model (saved in every checkpoint)."""

    preset: str = "base"
    stage: Stage = "stage1"
    vision: SiglipSettings = field(default_factory=SiglipSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    dino: DinoSettings = field(default_factory=DinoSettings)
    expert: ExpertSettings = field(default_factory=ExpertSettings)
    lora: LoRASettings = field(default_factory=LoRASettings)
    downsample_ratio: float = 0.5
    num_meta_queries: int = 64
    action_dim: int = 7
    chunk_size: int = 16
    num_images: int = 1
    use_state: bool = False
    state_dim: int = 8
    flow_sigma_min: float = 1e-3
    flow_t_max: float = 0.999
    flow_beta_alpha: float = 1.5
    num_inference_steps: int = 10
    time_max_period: float = 100.0
    dino_crop_pct: float = 0.875
    system_message: str = "You are a helpful assistant."
    reasoning_refresh_every: int = 20
    max_new_tokens: int = 50

    @property
    def num_image_tokens(self) -> int:
        grid = self.vision.image_size // self.vision.patch_size
        return int(grid * grid * self.downsample_ratio**2)

    @property
    def num_dino_patches(self) -> int:
        grid = self.dino.image_size // self.dino.patch_size
        return grid * grid

    @property
    def action_head_narrowest(self) -> int:
        """Width of the action head's narrowest layer (``expert.hidden_size // 2``, upstream's shape)."""
        return self.expert.hidden_size // 2

    @property
    def chunk_values(self) -> int:
        return self.chunk_size * self.action_dim

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lora"]["target_modules"] = list(self.lora.target_modules)
        data["lora"]["experts"] = list(self.lora.experts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InstructVLAConfig":
        data = dict(data)
        nested = {"vision": SiglipSettings, "llm": LLMSettings, "dino": DinoSettings, "expert": ExpertSettings, "lora": LoRASettings}
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in nested:
                value = _build(nested[f.name], value)
            kwargs[f.name] = value
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown InstructVLA config keys: {sorted(unknown)}")
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "InstructVLAConfig":
        return dataclasses.replace(self, **changes)


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def _tiny() -> InstructVLAConfig:
    return InstructVLAConfig(
        preset="tiny",
        vision=SiglipSettings(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=56),
        llm=LLMSettings(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=266,
            max_position_embeddings=512,
        ),
        dino=DinoSettings(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=28, feature_block=2),
        # 128 wide: the action head narrows to hidden/2, which must carry a whole chunk (8 x 7) of
        # flow noise -- at 32 wide (a 16-d bottleneck) flow matching plateaus near loss 0.75
        expert=ExpertSettings(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4),
        lora=LoRASettings(r=4, alpha=8, gate_size=8),
        num_meta_queries=4,
        chunk_size=8,
        num_images=2,
        max_new_tokens=8,
    )


def _base() -> InstructVLAConfig:
    return InstructVLAConfig(preset="base")


def _base_libero() -> InstructVLAConfig:
    return InstructVLAConfig(preset="base-libero", chunk_size=8, num_images=2)


PRESETS = {"tiny": _tiny, "base": _base, "base-libero": _base_libero}


def get_config(name: str, **overrides: Any) -> InstructVLAConfig:
    """A fresh preset config; ``overrides`` replace top-level fields."""
    if name not in PRESETS:
        raise ValueError(f"unknown InstructVLA preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]().replace(**overrides)

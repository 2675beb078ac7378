"""Parameter counts per InstructVLA component, and the sizes documented for the real model."""

from __future__ import annotations

from torch import nn

from vlaeval.models.instructvla.lora import LoRALM, MoELoRALM
from vlaeval.models.instructvla.model import InstructVLA

DOCUMENTED_M = {
    # component: millions of parameters documented in instructvla.md (sections 1.4-1.6), except the LLM
    "DINOv2-L/14-reg4 tower": 304.0,
    "FiLM scale/shift layers": 75.6,
    "visual_projector": 1.4,
    "cog_projector": 1.8,
    "action_embed": 1.8,
    "VideoGPT (action transformer)": 113.3,
    "action_head": 43.1,
    "action expert total": 541.0,
    "stage-1 LoRA": 110.1,
    "stage-2 LoRA experts (2)": 220.2,
    "stage-2 gate": 0.23,
    "Qwen2 language model (base)": 1540.0,  # Qwen2.5-1.5B model card: 1.54B (vocabulary 151936 rows)
}


def millions(module: nn.Module | list[nn.Parameter]) -> float:
    params = module.parameters() if isinstance(module, nn.Module) else module
    return sum(p.numel() for p in params) / 1e6


def component_millions(model: InstructVLA) -> dict[str, float]:
    """Millions of parameters per component (LoRA counted apart from the base LLM)."""
    expert = model.action_model
    vit = expert.film_vision_model.vision_model
    film = [p for b in vit.blocks for p in (*b.scale.parameters(), *b.shift.parameters())]
    lm = model.vlm.language_model
    lora = lm.lora_parameters() if isinstance(lm, (LoRALM, MoELoRALM)) else []
    gate = list(lm.gate.parameters()) if isinstance(lm, MoELoRALM) else []
    adapter_ids = {id(p) for p in (*lora, *gate)}
    base_llm = [p for p in lm.parameters() if id(p) not in adapter_ids]
    counts = {
        "SigLIP vision tower": millions(model.vlm.vision_model),
        "mlp1 projector": millions(model.vlm.mlp1),
        "Qwen2 language model (base)": millions(base_llm),
        "DINOv2-L/14-reg4 tower": millions(vit) - millions(film),
        "FiLM scale/shift layers": millions(film),
        "visual_projector": millions(expert.visual_projector),
        "cog_projector": millions(expert.cog_projector),
        "action_embed": millions(expert.action_embed),
        "VideoGPT (action transformer)": millions(expert.VideoGPT),
        "action_head": millions(expert.action_head),
        "action expert total": millions(expert),
    }
    if isinstance(lm, MoELoRALM):
        counts["stage-2 LoRA experts (2)"] = millions(lora)
        counts["stage-2 gate"] = millions(gate)
    else:
        counts["stage-1 LoRA"] = millions(lora)
    counts["whole model"] = millions(model)
    return counts

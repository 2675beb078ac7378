"""Language-model adaptation: plain, stage-1 LoRA (peft) and stage-2 mixture of LoRA experts.

Every wrapper exposes the same small interface (:class:`AdaptedLM`): ``hidden`` (post-norm
last hidden states, optionally with a KV cache), ``lm_head``, ``input_embeddings`` and a
*canonical* state dict. Canonical LM keys are HF ``Qwen2ForCausalLM`` names for the base
weights (no ``base_layer``), ``<module>.lora_A.<expert>.weight`` / ``lora_B`` for adapters
(experts ``action`` and ``language``) and ``gate.layers.<i>.*`` for the router; checkpoints
store this layout whatever peft/transformers version produced it.

Stage 2 (X-LoRA semantics, peft 0.13 defaults as used upstream): a no-grad *scaling pass*
through the frozen base model (adapters off) gives the final hidden state; a gate MLP
(hidden -> 128 -> 128 -> 128 -> n_experts, ReLU + dropout 0.2) and a softmax give per-token
weights ``lam`` shared by all adapted layers; the real pass computes
``W0 x + sum_i (alpha/r) B_i A_i dropout(lam_i * x)``.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import torch
from torch import nn

from vlaeval.models.instructvla.config import LoRASettings

_BASE_LAYER = re.compile(r"\.base_layer\.")


def _cache_kwargs(model: nn.Module, cache: Any) -> dict[str, Any]:
    """Pass a KV cache under the name this transformers version uses (``cache`` or ``past_key_values``)."""
    if cache is None:
        return {"use_cache": False}
    params = inspect.signature(model.forward).parameters
    name = "cache" if "cache" in params else "past_key_values"
    return {name: cache, "use_cache": True}


def new_cache(causal_lm: nn.Module) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=causal_lm.config)
    except TypeError:  # older transformers
        return DynamicCache()


def to_canonical(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {_BASE_LAYER.sub(".", k): v for k, v in state.items()}


def from_canonical(state: dict[str, torch.Tensor], own_keys: set[str]) -> dict[str, torch.Tensor]:
    """Re-insert ``base_layer`` where the wrapped module has it."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in own_keys:
            prefix, _, leaf = key.rpartition(".")
            wrapped = f"{prefix}.base_layer.{leaf}"
            key = wrapped if wrapped in own_keys else key
        out[key] = value
    return out


class AdaptedLM(nn.Module):
    """Common interface of the LM wrappers; ``causal_lm`` is the HF ``Qwen2ForCausalLM``."""

    kind = "plain"

    @property
    def causal_lm(self) -> nn.Module:
        raise NotImplementedError

    @property
    def lm_head(self) -> nn.Module:
        return self.causal_lm.lm_head

    @property
    def input_embeddings(self) -> nn.Embedding:
        return self.causal_lm.get_input_embeddings()

    @property
    def tied(self) -> bool:
        return self.lm_head.weight is self.input_embeddings.weight

    def hidden(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None, cache: Any = None) -> torch.Tensor:
        raise NotImplementedError

    def new_cache(self) -> Any:
        return new_cache(self.causal_lm)

    def _base_hidden(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None, cache: Any) -> torch.Tensor:
        body = self.causal_lm.model
        out = body(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **_cache_kwargs(body, cache))
        return out.last_hidden_state

    def canonical_state_dict(self) -> dict[str, torch.Tensor]:
        state = to_canonical(self._raw_state_dict())
        if self.tied:
            state.pop("lm_head.weight", None)
        return state

    def load_canonical(self, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        """Load a canonical state dict; returns (missing, unexpected) canonical keys."""
        own = self._raw_state_dict()
        state = dict(state)
        if self.tied:
            state.pop("lm_head.weight", None)
        mapped = from_canonical(state, set(own))
        missing = sorted(to_canonical({k: own[k] for k in set(own) - set(mapped)}))
        if self.tied:
            missing = [k for k in missing if k != "lm_head.weight"]
        unexpected = sorted(to_canonical({k: mapped[k] for k in set(mapped) - set(own)}))
        self._load_raw({k: v for k, v in mapped.items() if k in own})
        return missing, unexpected

    def _raw_state_dict(self) -> dict[str, torch.Tensor]:
        return self.causal_lm.state_dict()

    def _load_raw(self, state: dict[str, torch.Tensor]) -> None:
        self.causal_lm.load_state_dict(state, strict=False)


class PlainLM(AdaptedLM):
    """No adapters (base / unloaded weights)."""

    def __init__(self, causal_lm: nn.Module):
        super().__init__()
        self.lm = causal_lm

    @property
    def causal_lm(self) -> nn.Module:
        return self.lm

    def hidden(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None, cache: Any = None) -> torch.Tensor:
        return self._base_hidden(inputs_embeds, attention_mask, cache)


class LoRALM(AdaptedLM):
    """Stage 1: one LoRA (the ``action`` expert) on the target projections, through peft."""

    kind = "lora"

    def __init__(self, causal_lm: nn.Module, cfg: LoRASettings):
        super().__init__()
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            bias="none",
            task_type="CAUSAL_LM",
            target_modules=list(cfg.target_modules),
        )
        self.peft_model = get_peft_model(causal_lm, config, adapter_name=cfg.experts[0])

    @property
    def causal_lm(self) -> nn.Module:
        return self.peft_model.base_model.model

    def hidden(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None, cache: Any = None) -> torch.Tensor:
        return self._base_hidden(inputs_embeds, attention_mask, cache)

    def lora_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.causal_lm.named_parameters() if "lora_" in n]

    def unload(self) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        """Remove the adapters without merging; returns the base model and the canonical LoRA weights."""
        lora = {k: v.detach().clone() for k, v in self.canonical_state_dict().items() if ".lora_" in k}
        return self.peft_model.unload(), lora


class XLoRAGate(nn.Module):
    """peft's X-LoRA classifier layout: ``layers`` = [Linear, ReLU, Dropout] * (depth-1) + Linear."""

    def __init__(self, hidden: int, cfg: LoRASettings):
        super().__init__()
        self.temperature = cfg.softmax_temperature
        layers: list[nn.Module] = []
        width = hidden
        for _ in range(cfg.gate_depth - 1):
            layers += [nn.Linear(width, cfg.gate_size), nn.ReLU()]
            if cfg.gate_dropout > 0:
                layers.append(nn.Dropout(cfg.gate_dropout))
            width = cfg.gate_size
        layers.append(nn.Linear(width, len(cfg.experts)))
        self.layers = nn.Sequential(*layers)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Per-token expert weights ``(B, L, n_experts)`` summing to 1."""
        logits = self.layers(hidden.to(self.layers[0].weight.dtype))
        return torch.softmax(logits / self.temperature, dim=-1)


class _Router:
    """Shared, non-module holder of the current gate weights (None = adapters off)."""

    def __init__(self) -> None:
        self.weights: torch.Tensor | None = None


class MoELoRALinear(nn.Module):
    """A frozen linear layer plus several LoRA experts mixed by per-token gate weights."""

    def __init__(self, base_layer: nn.Linear, cfg: LoRASettings, router: _Router):
        super().__init__()
        self.base_layer = base_layer
        self.scaling = cfg.scaling
        self.experts = tuple(cfg.experts)
        self.lora_dropout = nn.Dropout(cfg.dropout)
        self.lora_A = nn.ModuleDict({e: nn.Linear(base_layer.in_features, cfg.r, bias=False) for e in self.experts})
        self.lora_B = nn.ModuleDict({e: nn.Linear(cfg.r, base_layer.out_features, bias=False) for e in self.experts})
        for expert in self.experts:
            self.reset_expert(expert)
        self._router = [router]  # a list, so the router is not registered as a submodule

    def reset_expert(self, expert: str) -> None:
        """peft's default init: A Kaiming-uniform, B zero (the expert starts as a no-op)."""
        nn.init.kaiming_uniform_(self.lora_A[expert].weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B[expert].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        weights = self._router[0].weights
        if weights is None:
            return out
        weights = weights.to(x.dtype)
        for i, expert in enumerate(self.experts):
            a, b = self.lora_A[expert], self.lora_B[expert]
            mixed = self.lora_dropout(x * weights[..., i : i + 1]).to(a.weight.dtype)
            out = out + (b(a(mixed)) * self.scaling).to(out.dtype)
        return out


class MoELoRALM(AdaptedLM):
    """Stage 2: X-LoRA-style mixture of the ``action`` and ``language`` LoRA experts."""

    kind = "moe"

    def __init__(self, causal_lm: nn.Module, cfg: LoRASettings):
        super().__init__()
        self.lm = causal_lm
        self.router = _Router()
        targets = tuple(cfg.target_modules)
        for name, module in list(causal_lm.named_modules()):
            if isinstance(module, nn.Linear) and name.endswith(targets):
                parent_name, _, child = name.rpartition(".")
                setattr(causal_lm.get_submodule(parent_name), child, MoELoRALinear(module, cfg, self.router))
        self.gate = XLoRAGate(causal_lm.config.hidden_size, cfg)
        self.last_gate_weights: torch.Tensor | None = None

    @property
    def causal_lm(self) -> nn.Module:
        return self.lm

    def lora_layers(self) -> list[MoELoRALinear]:
        return [m for m in self.lm.modules() if isinstance(m, MoELoRALinear)]

    def gate_weights(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None, cache: Any = None) -> torch.Tensor:
        """Scaling pass (no grad, adapters off) followed by the gate."""
        self.router.weights = None
        with torch.no_grad():
            base = self._base_hidden(inputs_embeds, attention_mask, cache)
        return self.gate(base)

    def hidden(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None, cache: Any = None) -> torch.Tensor:
        base_cache, adapted_cache = cache if cache is not None else (None, None)
        weights = self.gate_weights(inputs_embeds, attention_mask, base_cache)
        self.last_gate_weights = weights.detach()
        self.router.weights = weights
        try:
            return self._base_hidden(inputs_embeds, attention_mask, adapted_cache)
        finally:
            self.router.weights = None

    def new_cache(self) -> Any:
        return (new_cache(self.lm), new_cache(self.lm))

    def _raw_state_dict(self) -> dict[str, torch.Tensor]:
        state = dict(self.lm.state_dict())
        state.update({f"gate.{k}": v for k, v in self.gate.state_dict().items()})
        return state

    def _load_raw(self, state: dict[str, torch.Tensor]) -> None:
        gate = {k.removeprefix("gate."): v for k, v in state.items() if k.startswith("gate.")}
        self.lm.load_state_dict({k: v for k, v in state.items() if not k.startswith("gate.")}, strict=False)
        if gate:
            self.gate.load_state_dict(gate, strict=False)

    def lora_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.lm.named_parameters() if "lora_" in n]


def lora_to_moe(lm: LoRALM, cfg: LoRASettings) -> MoELoRALM:
    """Stage-1 -> stage-2 hand-off: the stage-1 LoRA becomes the ``action`` expert, ``language`` starts empty."""
    base, lora = lm.unload()
    moe = MoELoRALM(base, cfg)
    _, unexpected = moe.load_canonical(lora)
    if unexpected:
        raise ValueError(f"stage-1 LoRA does not fit the stage-2 layout: {unexpected[:5]}")
    return moe


def wrap_language_model(causal_lm: nn.Module, stage: str, cfg: LoRASettings) -> AdaptedLM:
    if stage == "stage1":
        return LoRALM(causal_lm, cfg)
    if stage == "stage2":
        return MoELoRALM(causal_lm, cfg)
    if stage == "plain":
        return PlainLM(causal_lm)
    raise ValueError(f"unknown stage {stage!r} (expected stage1, stage2 or plain)")

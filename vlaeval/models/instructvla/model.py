"""InstructVLA: the VLM produces meta-query latents, the action expert turns them into a chunk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vlaeval.models.instructvla.action_expert import ActionExpert
from vlaeval.models.instructvla.config import InstructVLAConfig
from vlaeval.models.instructvla.lora import LoRALM, MoELoRALM, lora_to_moe
from vlaeval.models.instructvla.normalization import BoundsStats, normalize, select_key, unnormalize_actions
from vlaeval.models.instructvla.processor import Processor
from vlaeval.models.instructvla.prompts import IMG_CONTEXT
from vlaeval.models.instructvla.tokenizer import add_meta_tokens, sized_byte_tokenizer


@dataclass
class ActionPrediction:
    actions: np.ndarray
    """(B, H, D) unnormalized, gripper in {0 closed, 1 open}."""
    normalized: np.ndarray
    """(B, H, D) clipped to [-1, 1], gripper binarized."""
    latents: torch.Tensor


class InstructVLA(nn.Module):
    def __init__(self, cfg: InstructVLAConfig, tokenizer: Any | None = None, norm_stats: dict[str, Any] | None = None):
        super().__init__()
        tokenizer = tokenizer if tokenizer is not None else sized_byte_tokenizer(cfg.llm.vocab_size, cfg.num_meta_queries)
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.norm_stats: dict[str, Any] = dict(norm_stats or {})
        self.meta_first, self.meta_last = add_meta_tokens(tokenizer, cfg.num_meta_queries)
        if len(tokenizer) != cfg.llm.vocab_size:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens (with meta queries), config says llm.vocab_size={cfg.llm.vocab_size}")
        from vlaeval.models.instructvla.vlm import EagleVLM

        self.vlm = EagleVLM(cfg, tokenizer.convert_tokens_to_ids(IMG_CONTEXT))
        self.vlm.adapt(cfg.stage)
        self.action_model = ActionExpert(cfg)
        self.processor = Processor(cfg, tokenizer)
        self._grad_hook: Any = None

    @property
    def device(self) -> torch.device:
        return self.action_model.action_head[0].weight.device

    @property
    def stage(self) -> str:
        return self.cfg.stage

    # ----- forward pieces -------------------------------------------------------------
    def latents_from_hidden(self, input_ids: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Last-layer hidden states at the meta-query positions, ``(B, N, hidden)``."""
        selected = (input_ids >= self.meta_first) & (input_ids <= self.meta_last)
        counts = selected.sum(dim=1)
        if not bool((counts == self.cfg.num_meta_queries).all()):
            raise ValueError(f"each prompt needs {self.cfg.num_meta_queries} meta tokens, got {counts.tolist()}")
        return hidden[selected].view(input_ids.shape[0], self.cfg.num_meta_queries, hidden.shape[-1])

    def forward(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Training losses: ``loss = fm_loss + lm_loss`` (1:1, upstream)."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        hidden, lm_loss = self.vlm(batch["input_ids"], batch["attention_mask"], batch.get("pixel_values"), batch["labels"])
        assert lm_loss is not None
        if "actions" not in batch:  # multimodal chat batch
            return {"loss": lm_loss, "lm_loss": lm_loss.detach()}
        latents = self.latents_from_hidden(batch["input_ids"], hidden)
        fm_loss = self.action_model.loss(latents, batch["dino_pixels"], batch["actions"], batch.get("proprio"), generator=generator)
        return {"loss": fm_loss + lm_loss, "fm_loss": fm_loss.detach(), "lm_loss": lm_loss.detach()}

    @torch.no_grad()
    def predict_normalized(
        self, batch: dict[str, torch.Tensor], noise: torch.Tensor, cached_latents: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized action chunks ``(B, H, D)`` (raw Euler output) and the latents used."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        latents = cached_latents
        if latents is None:
            hidden, _ = self.vlm(batch["input_ids"], batch["attention_mask"], batch.get("pixel_values"))
            latents = self.latents_from_hidden(batch["input_ids"], hidden)
        actions = self.action_model.sample(latents, batch["dino_pixels"], batch.get("proprio"), noise=noise.to(self.device))
        return actions.float(), latents

    def unnormalize(self, normalized: np.ndarray, unnorm_key: str | None) -> tuple[np.ndarray, np.ndarray]:
        stats = BoundsStats.from_dict(self.norm_stats[select_key(self.norm_stats, unnorm_key)]["action"])
        clipped = np.clip(normalized, -1.0, 1.0)
        clipped[..., -1] = np.where(clipped[..., -1] < 0.5, 0.0, 1.0)
        return unnormalize_actions(normalized, stats), clipped

    def normalize_proprio(self, state: np.ndarray, unnorm_key: str | None) -> np.ndarray:
        entry = self.norm_stats[select_key(self.norm_stats, unnorm_key)]
        if "proprio" not in entry:
            raise KeyError("checkpoint statistics have no proprio entry")
        return normalize(state, BoundsStats.from_dict(entry["proprio"]))

    def predict_action(
        self,
        images: list[list[np.ndarray]],
        instructions: list[str],
        unnorm_key: str | None = None,
        generators: list[torch.Generator] | None = None,
        responses: list[str | None] | None = None,
        proprio: list[np.ndarray] | None = None,
    ) -> ActionPrediction:
        """Batched inference on 224x224 model frames; ``responses`` selects the reasoning prompt."""
        responses = responses or [None] * len(images)
        samples = []
        for i, (frames, instruction, response) in enumerate(zip(images, instructions, responses)):
            state = None if proprio is None else self.normalize_proprio(proprio[i], unnorm_key).astype(np.float32)
            mode = "atomic" if response is None else "reasoning"
            samples.append(self.processor.action_sample(frames, instruction, mode, response, proprio=state))
        batch = self.processor.collate(samples)
        noise = self.draw_noise(len(samples), generators)
        normalized, latents = self.predict_normalized(batch, noise)
        actions, clipped = self.unnormalize(normalized.cpu().numpy().astype(np.float64), unnorm_key)
        return ActionPrediction(actions=actions, normalized=clipped, latents=latents)

    def draw_noise(self, batch: int, generators: list[torch.Generator] | None) -> torch.Tensor:
        shape = (self.cfg.chunk_size, self.cfg.action_dim)
        if generators is None:
            return torch.randn((batch, *shape))
        return torch.stack([torch.randn(shape, generator=g) for g in generators])

    # ----- training setup -------------------------------------------------------------
    def configure_trainable(self, train_expert: bool | None = None) -> list[nn.Parameter]:
        """Freeze per stage; returns the trainable parameters.

        Always frozen: SigLIP, ``mlp1``, base LLM weights. Trainable: LoRA experts (+ gate in
        stage 2), the new meta-token rows of the (tied) embeddings — other rows get zero grads —
        and the action expert in stage 1 (frozen in stage 2 unless ``train_expert``).
        """
        train_expert = self.stage == "stage1" if train_expert is None else train_expert
        self.requires_grad_(False)
        lm = self.vlm.language_model
        for p in lm.lora_parameters() if isinstance(lm, (LoRALM, MoELoRALM)) else []:
            p.requires_grad_(True)
        if isinstance(lm, MoELoRALM):
            lm.gate.requires_grad_(True)
        embedding = lm.input_embeddings.weight
        embedding.requires_grad_(True)
        if not lm.tied:
            lm.lm_head.weight.requires_grad_(True)
        self._mask_old_token_grads()
        self.action_model.requires_grad_(train_expert)
        return [p for p in self.parameters() if p.requires_grad]

    def _mask_old_token_grads(self) -> None:
        if self._grad_hook is not None:
            return
        lm = self.vlm.language_model
        first = self.meta_first

        def keep_new_rows(grad: torch.Tensor) -> torch.Tensor:
            grad = grad.clone()
            grad[:first] = 0
            return grad

        handles = [lm.input_embeddings.weight.register_hook(keep_new_rows)]
        if not lm.tied:
            handles.append(lm.lm_head.weight.register_hook(keep_new_rows))
        self._grad_hook = handles

    def to_stage2(self) -> None:
        """Stage-1 -> stage-2: the trained LoRA becomes the ``action`` expert of a 2-expert mixture."""
        lm = self.vlm.language_model
        if not isinstance(lm, LoRALM):
            raise RuntimeError(f"to_stage2 needs a stage-1 model (language model is {lm.kind})")
        self.vlm.language_model = lora_to_moe(lm, self.cfg.lora).to(self.device)
        self.cfg = self.cfg.replace(stage="stage2")
        self.vlm.cfg = self.cfg
        self.action_model.cfg = self.cfg
        self.processor.cfg = self.cfg

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        if enabled and self.stage == "stage2":
            raise ValueError("gradient checkpointing is not supported in stage 2 (two-pass X-LoRA forward), as upstream")
        causal_lm = self.vlm.language_model.causal_lm
        if enabled:
            causal_lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            causal_lm.gradient_checkpointing_disable()
        self.action_model.VideoGPT.model.gradient_checkpointing = enabled


def build_model(
    cfg: InstructVLAConfig,
    tokenizer: Any | None = None,
    norm_stats: dict[str, Any] | None = None,
    eagle_dir: str | Path | None = None,
    dino_dir: str | Path | None = None,
    seed: int | None = None,
) -> InstructVLA:
    """A fresh model; ``eagle_dir`` / ``dino_dir`` initialise the VLM / DINO tower from HF directories."""
    if seed is not None:
        torch.manual_seed(seed)
    base_parts = None
    if eagle_dir is not None:
        from vlaeval.models.instructvla.tokenizer import load_tokenizer
        from vlaeval.models.instructvla.vlm import read_eagle_dir

        cfg, base_parts = read_eagle_dir(eagle_dir, cfg)
        tokenizer = load_tokenizer(eagle_dir)
        add_meta_tokens(tokenizer, cfg.num_meta_queries)
        cfg = cfg.replace(llm=_with_vocab(cfg, len(tokenizer)))
    model = InstructVLA(cfg, tokenizer, norm_stats)
    if base_parts is not None:
        from vlaeval.models.instructvla.checkpoint import load_base_vlm

        load_base_vlm(model, base_parts)
    if dino_dir is not None:
        from vlaeval.models.instructvla.film_dino import load_hf_dinov2

        load_hf_dinov2(model.action_model.film_vision_model.vision_model, str(dino_dir))
    return model


def _with_vocab(cfg: InstructVLAConfig, vocab: int) -> Any:
    import dataclasses

    return dataclasses.replace(cfg.llm, vocab_size=vocab)

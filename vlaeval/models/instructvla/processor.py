"""Turns (images, prompt, actions) into model tensors, for one sample and for a batch.

Images given here are the 224x224 model frames (after an observation preset or the
training resize); the processor applies the VLM tile transform and the DINO transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vlaeval.models.instructvla.config import InstructVLAConfig
from vlaeval.models.instructvla.preprocessing import dino_pixel_values, vlm_pixel_values
from vlaeval.models.instructvla.prompts import IGNORE_INDEX, PromptMode, Turn, action_turns, encode


@dataclass
class Sample:
    """One encoded example; ``actions`` (H, D) normalized, ``proprio`` (state_dim,) normalized."""

    input_ids: list[int]
    labels: list[int]
    pixel_values: np.ndarray | None
    dino_pixels: np.ndarray | None = None
    actions: np.ndarray | None = None
    proprio: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Processor:
    def __init__(self, cfg: InstructVLAConfig, tokenizer: Any):
        self.cfg = cfg
        self.tokenizer = tokenizer
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id

    def vlm_pixels(self, images: list[np.ndarray]) -> np.ndarray:
        return vlm_pixel_values(images, self.cfg.vision.image_size)

    def dino_pixels(self, images: list[np.ndarray]) -> np.ndarray:
        if len(images) != self.cfg.num_images:
            raise ValueError(f"the model takes {self.cfg.num_images} image(s) per step, got {len(images)}")
        return np.stack([dino_pixel_values(im, self.cfg.dino.image_size, self.cfg.dino_crop_pct) for im in images])

    def encode_turns(self, turns: list[Turn], images: list[np.ndarray] | None, generation: bool = False) -> Sample:
        encoded = encode(self.tokenizer, turns, self.cfg.num_image_tokens, generation=generation)
        pixels = self.vlm_pixels(images) if images else None
        return Sample(encoded["input_ids"], encoded["labels"], pixels)

    def action_sample(
        self,
        images: list[np.ndarray],
        instruction: str,
        mode: PromptMode = "atomic",
        prefix: str | None = None,
        actions: np.ndarray | None = None,
        proprio: np.ndarray | None = None,
        turns: list[Turn] | None = None,
    ) -> Sample:
        """An action example; ``turns`` overrides the default single-turn prompt."""
        turns = turns or action_turns(instruction, self.cfg.num_meta_queries, self.cfg.system_message, mode, prefix)
        sample = self.encode_turns(turns, images)
        sample.dino_pixels = self.dino_pixels(images)
        sample.actions = actions
        sample.proprio = proprio
        return sample

    def collate(self, samples: list[Sample]) -> dict[str, torch.Tensor]:
        """Right-pad token sequences; stack pixels (DINO images flattened to ``B * n_img``)."""
        length = max(len(s.input_ids) for s in samples)
        ids = torch.full((len(samples), length), self.pad_id, dtype=torch.long)
        labels = torch.full((len(samples), length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(samples), length), dtype=torch.long)
        for i, s in enumerate(samples):
            ids[i, : len(s.input_ids)] = torch.tensor(s.input_ids)
            labels[i, : len(s.labels)] = torch.tensor(s.labels)
            mask[i, : len(s.input_ids)] = 1
        batch: dict[str, torch.Tensor] = {"input_ids": ids, "labels": labels, "attention_mask": mask}
        tiles = [s.pixel_values for s in samples if s.pixel_values is not None]
        if tiles:  # text-only samples have no <IMG_CONTEXT> tokens and contribute no tile
            batch["pixel_values"] = torch.from_numpy(np.stack(tiles))
        if all(s.dino_pixels is not None for s in samples):
            batch["dino_pixels"] = torch.from_numpy(np.concatenate([s.dino_pixels for s in samples]))
        if all(s.actions is not None for s in samples):
            batch["actions"] = torch.from_numpy(np.stack([s.actions for s in samples])).float()
        if all(s.proprio is not None for s in samples):
            batch["proprio"] = torch.from_numpy(np.stack([s.proprio for s in samples])).float()
        return batch

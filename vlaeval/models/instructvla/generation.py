"""Reasoning-then-act (upstream ``predict_action(use_generate=True)``, stage 2 only).

1. Every ``reasoning_refresh_every`` calls (and on the first), greedily generate a response to
   ``"What action should the robot take to {instr}? First answer my question."`` until the model
   emits ``<new_token_0>`` (or ``<|im_end|>``), at most ``max_new_tokens`` tokens.
2. Re-encode the prompt with the assistant turn ``response + " " + meta tokens`` and run the
   action path on it (one full forward, no KV reuse — as upstream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vlaeval.models.instructvla.prompts import IM_END, Turn, action_question, meta_tokens


@dataclass
class ReasoningState:
    """Per-episode generation state (upstream keeps it on the model; we keep it per episode)."""

    last_response: str | None = None
    run_index: int = 0


@torch.no_grad()
def greedy_generate(
    model: Any,
    input_ids: list[int],
    pixel_values: np.ndarray | None,
    stop_ids: set[int],
    max_new_tokens: int,
    use_cache: bool = True,
) -> list[int]:
    """Greedy decoding for one prompt; returns the new token ids including the stop token if hit."""
    vlm = model.vlm
    device = model.device
    ids = torch.tensor([input_ids], device=device)
    pixels = None if pixel_values is None else torch.as_tensor(pixel_values[None], device=device)
    embeds = vlm.embed(ids, pixels)
    lm = vlm.language_model
    cache = lm.new_cache() if use_cache else None
    generated: list[int] = []
    step_input = embeds
    for _ in range(max_new_tokens):
        hidden = lm.hidden(step_input, None, cache)
        token = int(vlm.logits(hidden[:, -1]).argmax(-1))
        generated.append(token)
        if token in stop_ids:
            break
        token_embed = lm.input_embeddings(torch.tensor([[token]], device=device))
        step_input = token_embed if use_cache else torch.cat([step_input, token_embed], dim=1)
    return generated


def generate_response(model: Any, images: list[np.ndarray], instruction: str, use_cache: bool = True) -> str:
    """The model's textual answer before acting (``<new_token_0>`` removed, as upstream)."""
    cfg = model.cfg
    turns = [Turn("system", cfg.system_message), Turn("user", action_question(instruction, "reasoning"), image=True)]
    sample = model.processor.encode_turns(turns, images, generation=True)
    tokenizer = model.tokenizer
    first_meta = meta_tokens(1)[0]
    stop = {tokenizer.convert_tokens_to_ids(first_meta), tokenizer.convert_tokens_to_ids(IM_END)}
    new_ids = greedy_generate(model, sample.input_ids, sample.pixel_values, stop, cfg.max_new_tokens, use_cache)
    if new_ids and new_ids[-1] in stop:
        new_ids = new_ids[:-1]
    return tokenizer.decode(new_ids).replace(first_meta, "")


def next_response(model: Any, state: ReasoningState, images: list[np.ndarray], instruction: str) -> str:
    """Refresh the cached response on schedule; advances ``run_index``."""
    if state.last_response is None or state.run_index % model.cfg.reasoning_refresh_every == 0:
        state.last_response = generate_response(model, images, instruction)
    state.run_index += 1
    return state.last_response

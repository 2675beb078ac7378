"""ChatML prompts (Eagle2 ``qwen2-chat`` template), meta-query tokens and label masking.

Template (one turn per line)::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
    <|im_start|>user\\n<img>{N x <IMG_CONTEXT>}</img>\\n{text}<|im_end|>\\n
    <|im_start|>assistant\\n{text}<|im_end|>\\n

Labels supervise the content of every assistant turn plus its closing ``<|im_end|>``
(upstream scans hard-coded Qwen ids; we use the fast tokenizer's character offsets, which
gives the same tokens for any tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
IGNORE_INDEX = -100

PromptMode = Literal["atomic", "reasoning", "primitive"]

CAPTION_PROMPTS = (
    "Describe what’s on the table. Don’t mention the robot arm.",
    "What objects are in the scene? Ignore the robot arm.",
    "Tell me what you see on the table, not the robot.",
    "Describe the items and their positions, but skip the robot.",
    "Look at the table and describe it. Don’t include the arm.",
    "Only talk about the objects, not the machine.",
    "Give a short description of the scene, without the robot.",
    "Describe the setup on the table. Leave out the robotic arm.",
    "Focus on the objects and environment. Ignore the robot.",
)


def meta_tokens(count: int) -> list[str]:
    return [f"<new_token_{i}>" for i in range(count)]


def meta_query_text(count: int) -> str:
    return "".join(meta_tokens(count))


@dataclass(frozen=True)
class Turn:
    role: Literal["system", "user", "assistant"]
    content: str
    image: bool = False


def action_question(instruction: str, mode: PromptMode = "atomic") -> str:
    question = f"What action should the robot take to {instruction}?"
    if mode == "reasoning":
        return question + " First answer my question."
    if mode == "primitive":
        return question + " Give both move primitive and action."
    return question


def action_turns(
    instruction: str,
    num_meta: int,
    system: str,
    mode: PromptMode = "atomic",
    prefix: str | None = None,
) -> list[Turn]:
    """The manipulation prompt; ``prefix`` (response or primitive) precedes the meta tokens."""
    answer = meta_query_text(num_meta) if prefix is None else f"{prefix} {meta_query_text(num_meta)}"
    return [Turn("system", system), Turn("user", action_question(instruction, mode), image=True), Turn("assistant", answer)]


def render(turns: list[Turn], num_image_tokens: int, generation: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """Prompt text and the character spans that are LM targets."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0

    def emit(text: str) -> None:
        nonlocal length
        parts.append(text)
        length += len(text)

    for turn in turns:
        emit(f"{IM_START}{turn.role}\n")
        if turn.image:
            emit(f"{IMG_START}{IMG_CONTEXT * num_image_tokens}{IMG_END}\n")
        start = length
        emit(turn.content + IM_END)
        if turn.role == "assistant":
            spans.append((start, length))
        emit("\n")
    if generation:
        emit(f"{IM_START}assistant\n")
    return "".join(parts), spans


def encode(tokenizer: Any, turns: list[Turn], num_image_tokens: int, generation: bool = False) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (IGNORE_INDEX outside assistant content + ``<|im_end|>``)."""
    text, spans = render(turns, num_image_tokens, generation=generation)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    labels = [
        tid if any(s <= start and end <= e for s, e in spans) and end > start else IGNORE_INDEX
        for tid, (start, end) in zip(ids, encoded["offset_mapping"])
    ]
    return {"input_ids": ids, "labels": labels}


def conversation_turns(conversations: list[dict[str, str]], system: str) -> list[Turn]:
    """LLaVA-style ``[{"from": "human"|"gpt", "value": ...}]`` -> turns; ``<image>`` goes in the first user turn."""
    turns = [Turn("system", system)]
    for i, message in enumerate(conversations):
        role = "user" if message["from"] in ("human", "user") else "assistant"
        value = message["value"]
        has_image = "<image>" in value
        value = value.replace("<image>\n", "").replace("<image>", "").strip("\n") if has_image else value
        turns.append(Turn(role, value, image=has_image and i == 0))
    return turns

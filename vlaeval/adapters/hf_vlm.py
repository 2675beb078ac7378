"""Hugging Face vision-language models as text models (``--model hf-vlm --model-arg model=PATH``).

Any checkpoint that ``transformers`` loads with ``AutoModelForImageTextToText`` and
``AutoProcessor`` (LLaVA, Qwen2-VL / Qwen2.5-VL, Idefics3 / SmolVLM, PaliGemma, InternVL-HF,
...). Each request becomes a chat: an optional system message, then one user turn with the
request's images followed by its prompt, rendered by the processor's chat template (or by
``prompt_template`` when the checkpoint has none). Generation is greedy and batched
(left padding); requests are grouped by their generation options so each group shares one
``generate`` call.

Model arguments: ``model`` (path or hub id; hub ids need the files in the local cache unless
``local_files_only=false``), ``dtype`` (``auto``: bfloat16 on CUDA, float32 on CPU),
``device`` (``auto``/``cpu``/``cuda``/``cuda:1``), ``batch_size``, ``max_new_tokens`` (used
when the suite passes none), ``system_prompt`` (used when the suite passes none),
``strip`` (comma-separated strings removed from answers, e.g. ``<new_token_0>``),
``prompt_template`` (e.g. ``"<image>\\n{prompt}"``: ``{prompt}`` and, per image,
``{image}`` -> the processor's image token), ``trust_remote_code``.
"""

from __future__ import annotations

import hashlib
import json
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from vlaeval.harness.text import TextModel, TextRequest


SAMPLE_BLOCK = 64 * 1024
SAMPLE_BLOCKS = 16


def _file_sample_digest(path: Path) -> str:
    """sha256 over a file's size and up to 16 blocks of 64 KiB at evenly spaced offsets.

    The first and last blocks are always read; a file of at most 16 blocks is read whole. Cheap on
    multi-GB shards, yet two fine-tunes of one architecture (same names and sizes) differ.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    n = min(SAMPLE_BLOCKS, max(1, -(-size // SAMPLE_BLOCK)))
    span = max(0, size - SAMPLE_BLOCK)
    offsets = sorted({round(i * span / (n - 1)) for i in range(n)} if n > 1 else {0})
    with path.open("rb") as f:
        for offset in offsets:
            f.seek(offset)
            digest.update(f.read(SAMPLE_BLOCK))
    return digest.hexdigest()


ANSWER_SHAPING_FILES = (  # small files that change answers as much as the weights do
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
    "preprocessor_config.json", "processor_config.json",
)


def _weights_digest(path: Path) -> str:
    """Identity of a local checkpoint: its config, tokenizer, processor and chat template files, and
    the names, sizes and sampled contents of its weight files."""
    digest = hashlib.sha256()
    for name in ANSWER_SHAPING_FILES:
        if (path / name).is_file():
            digest.update(name.encode() + b"\0" + (path / name).read_bytes())
    for weights in sorted(list(path.glob("*.safetensors")) + list(path.glob("*.bin"))):
        digest.update(f"{weights.name}:{weights.stat().st_size}:{_file_sample_digest(weights)}".encode())
    return digest.hexdigest()[:16]


def _check_source(model: str, local_files_only: bool) -> None:
    """A missing directory or an uncached hub id is one clear line, not a hub-validation error."""
    path = Path(model).expanduser()
    looks_like_path = model.startswith((".", "/", "~")) or path.exists() or model.count("/") > 1
    if looks_like_path:
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"hf-vlm: no Hugging Face model at {model} (expected a directory with config.json)")
        return
    if local_files_only:
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise FileNotFoundError(
                f"hf-vlm: {model} is not in the local Hugging Face cache and runs do not download; fetch it first "
                f"(huggingface-cli download {model}) or pass --model-arg local_files_only=false")


class HFVisionLanguageModel(TextModel):
    name = "hf-vlm"

    def __init__(self, model: str, dtype: str = "auto", device: str = "auto", batch_size: int = 8,
                 max_new_tokens: int = 256, system_prompt: str = "", strip: str = "", prompt_template: str = "",
                 trust_remote_code: bool = False, local_files_only: bool = True, revision: str | None = None):
        import torch
        from transformers import AutoProcessor

        if not model:
            raise ValueError("hf-vlm needs --model-arg model=PATH_OR_HUB_ID")
        self.model_id = model
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.dtype_name = dtype
        self.torch_dtype = getattr(torch, dtype)
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.system_prompt = system_prompt
        self.strip = [s for s in (strip.split(",") if isinstance(strip, str) else strip) if s]
        self.prompt_template = prompt_template
        kwargs: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code),
                                  "local_files_only": bool(local_files_only)}
        if revision:
            kwargs["revision"] = revision
        _check_source(model, bool(local_files_only))
        self.processor = AutoProcessor.from_pretrained(model, **kwargs)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.model = self._load_model(model, kwargs).to(self.device).eval()
        path = Path(model)
        commit = getattr(self.model.config, "_commit_hash", None)
        self.weights = _weights_digest(path) if path.is_dir() else (commit or revision or "unpinned")

    def _load_model(self, model: str, kwargs: dict[str, Any]) -> Any:
        from transformers import AutoModelForImageTextToText

        try:
            return AutoModelForImageTextToText.from_pretrained(model, dtype=self.torch_dtype, **kwargs)
        except ValueError:
            if not kwargs.get("trust_remote_code"):
                raise
            from transformers import AutoModelForCausalLM

            return AutoModelForCausalLM.from_pretrained(model, dtype=self.torch_dtype, **kwargs)

    def fingerprint(self) -> str:
        extra = json.dumps([self.system_prompt, self.strip, self.prompt_template, self.max_new_tokens])
        return (f"hf-vlm:{self.model_id}@{self.weights}:{self.dtype_name}:"
                f"{hashlib.sha256(extra.encode()).hexdigest()[:8]}")

    # -- prompts -------------------------------------------------------------------------------
    def render(self, request: TextRequest) -> str:
        system = request.options.get("system_prompt") or self.system_prompt
        if self.prompt_template or getattr(self.processor, "chat_template", None) is None:
            template = self.prompt_template or "{images}{prompt}"
            image_token = getattr(self.processor, "image_token", None) or "<image>"
            images = "".join(f"{image_token}\n" for _ in request.images)
            text = template.replace("{images}", images).replace("{image}", image_token)
            text = text.replace("{prompt}", request.prompt)
            return f"{system}\n{text}" if system else text
        content: list[dict[str, Any]] = [{"type": "image"} for _ in request.images]
        content.append({"type": "text", "text": request.prompt})
        messages: list[dict[str, Any]] = []
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append({"role": "user", "content": content})
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    # -- generation ----------------------------------------------------------------------------
    def _group_key(self, request: TextRequest) -> tuple[int, bool]:
        return int(request.options.get("max_new_tokens") or self.max_new_tokens), bool(request.images)

    def generate(self, requests: list[TextRequest]) -> list[str]:
        answers: list[str | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: self._group_key(requests[i]))
        for key, members in groupby(order, key=lambda i: self._group_key(requests[i])):
            members = list(members)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                for i, text in zip(chunk, self._generate_batch([requests[i] for i in chunk], key[0])):
                    answers[i] = text
        return [a or "" for a in answers]

    def _generate_batch(self, requests: list[TextRequest], max_new_tokens: int) -> list[str]:
        import torch
        from PIL import Image

        texts = [self.render(r) for r in requests]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if any(r.images for r in requests):
            kwargs["images"] = [[Image.fromarray(np.asarray(im, dtype=np.uint8)) for im in r.images] for r in requests]
        inputs = self.processor(**kwargs)
        inputs.pop("token_type_ids", None)  # some tokenizers emit it; VLM generate() refuses it
        inputs = {k: (v.to(self.device, dtype=self.torch_dtype) if torch.is_floating_point(v) else v.to(self.device))
                  if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        results = []
        for text in decoded:
            for s in self.strip:
                text = text.replace(s, "")
            results.append(text.strip())
        return results

    def close(self) -> None:
        self.model = None

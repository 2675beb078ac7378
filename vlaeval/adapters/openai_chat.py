"""A remote OpenAI-compatible chat endpoint as a text model (``--model openai-chat``).

Works with OpenAI, vLLM / SGLang / llama.cpp / LM Studio servers and anything else that
speaks ``POST /v1/chat/completions``. Images go inline as base64 data URLs
(``data:image/png;base64,...``) in ``image_url`` content parts, before the prompt text.

Model arguments: ``model`` (the served model name), ``base_url`` (default
``$OPENAI_BASE_URL`` or OpenAI), ``api_key_env`` (name of the variable holding the key,
default ``OPENAI_API_KEY``; the key itself is never stored), ``temperature`` (0),
``max_tokens`` (used when the suite passes no ``max_new_tokens``), ``concurrency``
(parallel requests per batch), ``timeout``, ``max_retries``, ``image_format`` (png/jpeg),
``detail`` (``low``/``high``/``auto``; omitted when empty), ``seed`` (sent when set),
``system_prompt`` (used when the suite passes none).
"""

from __future__ import annotations

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from vlaeval.harness.text import TextModel, TextRequest


def data_url(image: np.ndarray, fmt: str = "png") -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="JPEG" if fmt in ("jpg", "jpeg") else "PNG")
    mime = "jpeg" if fmt in ("jpg", "jpeg") else "png"
    return f"data:image/{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


class OpenAIChatModel(TextModel):
    name = "openai-chat"

    def __init__(self, model: str, base_url: str = "", api_key_env: str = "OPENAI_API_KEY", temperature: float = 0.0,
                 max_tokens: int = 512, concurrency: int = 4, timeout: float = 120.0, max_retries: int = 3,
                 image_format: str = "png", detail: str = "", seed: int | None = None, system_prompt: str = ""):
        from openai import OpenAI

        if not model:
            raise ValueError("openai-chat needs --model-arg model=NAME")
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.concurrency = max(1, int(concurrency))
        self.image_format = image_format.lower()
        self.detail = detail
        self.seed = seed
        self.system_prompt = system_prompt
        self.client = OpenAI(base_url=self.base_url, api_key=os.environ.get(api_key_env) or "EMPTY",
                             timeout=float(timeout), max_retries=int(max_retries))

    def fingerprint(self) -> str:
        return (f"openai-chat:{self.base_url}|{self.model}|t={self.temperature}|max={self.max_tokens}"
                f"|img={self.image_format}{'|detail=' + self.detail if self.detail else ''}"
                f"{'|seed=' + str(self.seed) if self.seed is not None else ''}"
                f"{'|sys=' + self.system_prompt if self.system_prompt else ''}")

    def messages(self, request: TextRequest) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        for image in request.images:
            part: dict[str, Any] = {"url": data_url(image, self.image_format)}
            if self.detail:
                part["detail"] = self.detail
            content.append({"type": "image_url", "image_url": part})
        content.append({"type": "text", "text": request.prompt})
        system = request.options.get("system_prompt") or self.system_prompt
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": content})
        return messages

    def _one(self, request: TextRequest) -> str:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages(request),
            "temperature": self.temperature,
            "max_tokens": int(request.options.get("max_new_tokens") or self.max_tokens),
        }
        if self.seed is not None:
            kwargs["seed"] = int(self.seed)
        response = self.client.chat.completions.create(**kwargs)
        return (response.choices[0].message.content or "").strip()

    def generate(self, requests: list[TextRequest]) -> list[str]:
        if len(requests) <= 1 or self.concurrency == 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._one, requests))

    def close(self) -> None:
        self.client.close()

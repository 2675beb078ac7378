"""LLM judge for the parts of VLMEvalKit scoring that need one, with a response cache.

Used for MM-Vet grading (always) and as the fallback when the rule-based MCQ / yes-no
extraction finds no answer. Any OpenAI-compatible chat endpoint works (``openai`` client):

    --protocol judge=gpt-4o-mini                      # model; OPENAI_API_KEY from the environment
    --protocol judge_base_url=http://127.0.0.1:8000/v1  # a local server (vLLM, llama.cpp, ...)

VLMEvalKit's short names map to the versions it uses (``chatgpt-0125`` ->
``gpt-3.5-turbo-0125``, ``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``, ``gpt-4-turbo`` ->
``gpt-4-1106-preview``); other names are sent as given. The API key comes from
``VLAEVAL_JUDGE_API_KEY`` or ``OPENAI_API_KEY`` and is never stored.

Offline mode is the default (``judge`` empty): nothing is guessed. Items that would need a
judge get the metric ``judged: 0`` and are left out of the scores; the corpus metrics report
how many (``n_unjudged``) and, for MCQ / yes-no, also VLMEvalKit's ``exact_matching`` number,
which counts them as wrong.

Every response is cached in SQLite (``$VLAEVAL_JUDGE_CACHE``, default
``$VLAEVAL_HOME/judge_cache.sqlite``; a location, so not a protocol parameter) under a hash of
(model, base URL, prompt, temperature, max tokens, attempt): re-scoring, or scoring the same
answers in another run, replays the same judgements without calls.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

JUDGE_ALIASES = {
    "chatgpt-0125": "gpt-3.5-turbo-0125",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4-turbo": "gpt-4-1106-preview",
    "gpt-4-0125": "gpt-4-0125-preview",
}
OFFLINE = ("", "none", "off", "offline", "exact_matching")


class JudgeCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, prompt TEXT NOT NULL,"
            " temperature REAL NOT NULL, attempt INTEGER NOT NULL, response TEXT NOT NULL, at REAL NOT NULL)"
        )

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, prompt: str, temperature: float, attempt: int, response: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, model, prompt, temperature, attempt, response, time.time()),
            )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()


class Judge:
    """A chat model that answers grading prompts, every answer cached."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 cache: JudgeCache | None = None, max_tokens: int = 128, timeout: float = 60.0,
                 max_retries: int = 3):
        self.model = JUDGE_ALIASES.get(model, model)
        self.base_url = base_url or None
        self.max_tokens = max_tokens
        self.cache = cache
        self.calls = 0
        self._client: Any = None
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries

    def _make_client(self) -> Any:
        if self._client is None:
            try:
                from openai import OpenAI
            except ImportError as exc:
                raise RuntimeError("an LLM judge needs the openai package (pip install openai)") from exc
            self._client = OpenAI(
                base_url=self.base_url,
                api_key=self._api_key or os.environ.get("VLAEVAL_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY")
                or "EMPTY",
                timeout=self._timeout,
                max_retries=self._max_retries,
            )
        return self._client

    def key(self, prompt: str, temperature: float, attempt: int) -> str:
        material = "\x1f".join([self.model, self.base_url or "", prompt, repr(float(temperature)),
                                str(self.max_tokens), str(attempt)])
        return hashlib.sha256(material.encode()).hexdigest()

    def generate(self, prompt: str, temperature: float = 0.0, attempt: int = 0) -> str:
        key = self.key(prompt, temperature, attempt)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        response = self._make_client().chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": prompt}],
            temperature=temperature,
            max_tokens=self.max_tokens,
        )
        self.calls += 1
        text = (response.choices[0].message.content or "").strip()
        if self.cache is not None:
            self.cache.put(key, self.model, prompt, temperature, attempt, text)
        return text


def default_cache_path() -> Path:
    from vlaeval.harness.envs import vlaeval_home

    return Path(os.environ.get("VLAEVAL_JUDGE_CACHE") or vlaeval_home() / "judge_cache.sqlite")


_JUDGES: dict[tuple[str, str, str, int], Judge] = {}


def judge_from_protocol(protocol: dict[str, Any], max_tokens: int = 128) -> Judge | None:
    """The judge a protocol asks for, or None in offline mode (one instance per configuration)."""
    model = str(protocol.get("judge") or "").strip()
    if model.lower() in OFFLINE:
        return None
    base_url = str(protocol.get("judge_base_url") or "").strip()
    cache_path = str(default_cache_path())
    ident = (model, base_url, cache_path, max_tokens)
    if ident not in _JUDGES:
        _JUDGES[ident] = Judge(model, base_url or None, cache=JudgeCache(cache_path), max_tokens=max_tokens)
    return _JUDGES[ident]

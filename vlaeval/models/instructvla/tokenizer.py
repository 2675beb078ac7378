"""Tokenizers: the Eagle2/Qwen2 tokenizer from a directory, or a byte-level one for tiny models.

Both get the ``num_meta_queries`` meta tokens ``<new_token_i>`` appended as normal added
tokens with contiguous ids (upstream ``tokenizer.add_tokens``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlaeval.models.instructvla.prompts import IM_END, IM_START, IMG_CONTEXT, IMG_END, IMG_START, meta_tokens

SPECIAL_TOKENS = (IM_START, IMG_START, IMG_END, IMG_CONTEXT)
PAD_TOKEN = "<|endoftext|>"


def byte_tokenizer(filler: int = 0) -> Any:
    """A 256-symbol byte-level BPE tokenizer with the ChatML/image special tokens (no merges).

    ``filler`` appends that many never-produced tokens, so a random-weight model can have the
    real vocabulary (embedding) size without the real tokenizer files.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    symbols = alphabet + [f"<unused_{i}>" for i in range(filler)]
    backend = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(symbols)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        additional_special_tokens=list(SPECIAL_TOKENS),
    )


def sized_byte_tokenizer(vocab_size: int, num_meta: int) -> Any:
    """A byte tokenizer padded so that, once the meta tokens are added, it has ``vocab_size`` rows."""
    base = len(byte_tokenizer())
    filler = vocab_size - num_meta - base
    if filler < 0:
        raise ValueError(f"llm.vocab_size={vocab_size} is below the byte tokenizer's {base} + {num_meta} meta tokens")
    return byte_tokenizer(filler)


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True)
    if not getattr(tokenizer, "is_fast", True):
        raise ValueError(f"{path}: a fast tokenizer (tokenizer.json) is required for label offsets")
    return tokenizer


def add_meta_tokens(tokenizer: Any, count: int) -> tuple[int, int]:
    """Add (or find) the meta tokens; returns the first and last id (contiguous)."""
    names = meta_tokens(count)
    missing = [t for t in names if t not in tokenizer.get_vocab()]
    if missing:
        if len(missing) != count:
            raise ValueError("tokenizer has only some of the meta tokens")
        tokenizer.add_tokens(names)
    ids = tokenizer.convert_tokens_to_ids(names)
    if ids != list(range(ids[0], ids[0] + count)):
        raise ValueError("meta token ids are not contiguous")
    for token in (IM_END, IMG_CONTEXT):
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id):
            raise ValueError(f"tokenizer lacks the special token {token}")
    return ids[0], ids[-1]

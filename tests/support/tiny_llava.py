"""A tiny LLaVA checkpoint built offline: random, or "programmed" so greedy decoding says a known answer.

``build_tiny_llava(directory)`` saves a 2-layer LLaVA (CLIP vision tower + Llama text model) with a
word-level tokenizer and a chat template, the way a hub checkpoint is laid out, with random weights.

``build_tiny_llava(directory, answer="red block on table")`` sets the weights so that greedy decoding
after the chat template's generation prompt (``<|assistant|>``) emits exactly ``answer`` and then
``</s>``, whatever the prompt and images are:

* the text model's hidden size is at least the vocabulary size and the token embeddings are one-hot;
* every decoder layer's ``o_proj`` and ``down_proj`` are zero (no bias), so attention and MLP add
  nothing to the residual stream: the hidden state at the last position is the embedding of the
  last token, i.e. ``<|assistant|>`` for the prompt and then the previously generated word;
* the final RMSNorm has weight ones (it only rescales a one-hot vector), and ``lm_head`` is a
  transition table: logit[next] is the only non-zero one for the current token, with
  ``<|assistant|>`` -> first answer word -> ... -> last answer word -> ``</s>`` (every other
  token -> ``</s>``).

Answer words must be distinct (the next token depends only on the current one) and must not be
special tokens. Models built with the same ``words`` (and answers drawn from them) have the same
vocabulary, config and weight-file sizes: they differ only in the ``lm_head`` values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]
ROLES = ["<|system|>", "<|user|>", "<|assistant|>"]
WORDS = ("a b c d A B C D red green blue yes no the is what colour which answer option ? . , : "
         "I will put block cup on table").split()
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}<|system|> {{ m['content'][0]['text'] }} "
    "{% else %}<|user|> {% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
    "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}")
GENERATION_PROMPT = "<|assistant|>"


def vocabulary(words: Iterable[str] = (), answer: str | None = None) -> dict[str, int]:
    """Token ids: special tokens, chat roles, the base words, then ``words`` and the answer's words."""
    extra = list(words) + (answer.split() if answer else [])
    return {w: i for i, w in enumerate(dict.fromkeys(SPECIALS + ROLES + WORDS + extra))}


def build_tiny_llava(directory: str | Path, answer: str | None = None, seed: int = 0,
                     words: Iterable[str] = ()) -> Path:
    """Save a tiny LLaVA checkpoint (model + processor) in ``directory`` and return it.

    ``answer=None``: random weights (seeded), hidden size 32. Otherwise the programmed model above;
    ``words`` extends the vocabulary (pass the union of all answers' words to give several
    programmed models the same architecture and file sizes).
    """
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = vocabulary(words, answer)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"})
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32},
                                                      crop_size={"height": 32, "width": 32})
    processor = transformers.LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                                            vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
                                            num_additional_image_tokens=1)
    if answer is None:  # the random model, exactly as the adapter tests have always built it
        hidden, intermediate, untie = 32, 64, {}
    else:
        hidden = -(-len(vocab) // 4) * 4  # >= vocabulary size; divisible by 2 heads of even size (rotary)
        intermediate, untie = 2 * hidden, {"tie_word_embeddings": False}
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                    num_attention_heads=2, image_size=32, patch_size=8),
        text_config=transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=hidden,
                                             intermediate_size=intermediate, num_hidden_layers=2,
                                             num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=512, pad_token_id=0, bos_token_id=1,
                                             eos_token_id=2, **untie),
        image_token_index=vocab["<image>"], vision_feature_layer=-1, vision_feature_select_strategy="default",
        **untie)
    torch.manual_seed(seed)
    model = transformers.LlavaForConditionalGeneration(config).eval()
    if answer is not None:
        _program(model, vocab, answer, tokenizer)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def _program(model, vocab: dict[str, int], answer: str, tokenizer) -> None:
    import torch

    answer_words = answer.split()
    if not answer_words:
        raise ValueError("a programmed answer needs at least one word")
    if len(set(answer_words)) != len(answer_words):
        raise ValueError(f"answer words must be distinct (the next token depends only on the current one): {answer!r}")
    special = set(SPECIALS + ROLES)
    if special & set(answer_words):
        raise ValueError(f"answer words must not be special tokens: {answer!r}")
    ids = [vocab[w] for w in answer_words]
    if tokenizer.decode(ids, skip_special_tokens=True).strip() != answer:
        raise ValueError(f"{answer!r} does not survive the tokenizer's decoding; use space-separated words")

    text_config = model.config.text_config
    if text_config.tie_word_embeddings or getattr(model.config, "tie_word_embeddings", False):
        raise AssertionError("lm_head must not share the input embeddings")
    embeddings = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    if head.data_ptr() == embeddings.data_ptr():
        raise AssertionError("lm_head is tied to the input embeddings")
    vocab_size, hidden = embeddings.shape
    eos = vocab["</s>"]
    table = {i: eos for i in range(vocab_size)}  # anything unexpected ends the answer
    chain = [vocab[GENERATION_PROMPT]] + ids + [eos]
    table.update(zip(chain[:-1], chain[1:]))
    with torch.no_grad():
        embeddings.zero_()
        embeddings[:, :vocab_size].copy_(torch.eye(vocab_size, dtype=embeddings.dtype))
        for layer in model.model.language_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
            for module in (layer.self_attn.o_proj, layer.mlp.down_proj):
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
        model.model.language_model.norm.weight.fill_(1.0)
        head.zero_()
        for current, following in table.items():
            head[following, current] = 1.0

"""InstructVLA building blocks on the tiny preset: shapes, formulas, parity with HF reference models."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from vlaeval.models.instructvla.action_expert import ActionExpert, sample_flow_time, sinusoidal_embedding  # noqa: E402
from vlaeval.models.instructvla.config import InstructVLAConfig, get_config  # noqa: E402
from vlaeval.models.instructvla.expert_transformer import ExpertBackbone, block_attention_bias  # noqa: E402
from vlaeval.models.instructvla.film_dino import FiLMViT, hf_dinov2_to_timm  # noqa: E402
from vlaeval.models.instructvla.lora import MoELoRALM, XLoRAGate  # noqa: E402
from vlaeval.models.instructvla.model import InstructVLA, build_model  # noqa: E402
from vlaeval.models.instructvla.normalization import BoundsStats, compute_stats, normalize, pad_chunk, unnormalize_actions  # noqa: E402
from vlaeval.models.instructvla.preprocessing import (  # noqa: E402
    IMAGE_PRESETS,
    center_crop_area,
    crop_and_resize,
    dino_pixel_values,
    vlm_pixel_values,
)
from vlaeval.models.instructvla.prompts import IGNORE_INDEX, action_turns, encode, meta_query_text  # noqa: E402
from vlaeval.models.instructvla.vlm import pixel_shuffle  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def cfg() -> InstructVLAConfig:
    return get_config("tiny")


@pytest.fixture(scope="module")
def model(cfg: InstructVLAConfig):
    return build_model(cfg, seed=0).eval()


def test_presets_and_config_round_trip() -> None:
    base = get_config("base")
    assert base.num_image_tokens == 256 and base.num_dino_patches == 256
    assert (base.llm.hidden_size, base.expert.hidden_size, base.expert.num_hidden_layers) == (1536, 768, 12)
    assert get_config("base-libero").chunk_size == 8 and get_config("base-libero").num_images == 2
    tiny = get_config("tiny")
    assert InstructVLAConfig.from_dict(tiny.to_dict()) == tiny
    with pytest.raises(ValueError, match="unknown"):
        InstructVLAConfig.from_dict({**tiny.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="preset"):
        get_config("huge")


def test_pixel_shuffle_matches_eagle_layout() -> None:
    x = torch.arange(2 * 4 * 4 * 3, dtype=torch.float32).reshape(2, 4, 4, 3)
    y = pixel_shuffle(x, 0.5)
    assert y.shape == (2, 2, 2, 12)
    # token (i, j) gathers the 2x2 block at rows 2i..2i+1, cols 2j..2j+1, row-major inside the block
    block = torch.cat([x[0, 0, 0], x[0, 0, 1], x[0, 1, 0], x[0, 1, 1]])
    assert torch.equal(y[0, 0, 0], block)


def test_vlm_shapes_and_image_splice(model, cfg) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for _ in range(cfg.num_images)]
    sample = model.processor.action_sample(frames, "open the drawer")
    batch = model.processor.collate([sample, sample])
    assert batch["pixel_values"].shape == (2, 3, cfg.vision.image_size, cfg.vision.image_size)
    assert batch["dino_pixels"].shape == (2 * cfg.num_images, 3, cfg.dino.image_size, cfg.dino.image_size)
    features = model.vlm.extract_feature(batch["pixel_values"])
    assert features.shape == (2, cfg.num_image_tokens, cfg.llm.hidden_size)
    hidden, loss = model.vlm(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], batch["labels"])
    assert hidden.shape == (2, batch["input_ids"].shape[1], cfg.llm.hidden_size)
    assert loss is not None and torch.isfinite(loss)
    latents = model.latents_from_hidden(batch["input_ids"], hidden)
    assert latents.shape == (2, cfg.num_meta_queries, cfg.llm.hidden_size)


def test_labels_supervise_assistant_content_and_im_end(model, cfg) -> None:
    tok = model.tokenizer
    turns = action_turns("pick it", cfg.num_meta_queries, cfg.system_message, "primitive", prefix="move up")
    enc = encode(tok, turns, cfg.num_image_tokens)
    supervised = [t for t, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE_INDEX]
    assert tok.decode(supervised) == "move up " + meta_query_text(cfg.num_meta_queries) + "<|im_end|>"
    assert enc["input_ids"].count(tok.convert_tokens_to_ids("<IMG_CONTEXT>")) == cfg.num_image_tokens


def test_action_expert_shapes_and_mask_modes(cfg) -> None:
    torch.manual_seed(0)
    expert = ActionExpert(cfg)
    latents = torch.randn(3, cfg.num_meta_queries, cfg.llm.hidden_size)
    pixels = torch.randn(3 * cfg.num_images, 3, cfg.dino.image_size, cfg.dino.image_size)
    cond, n_vis = expert.condition(latents, pixels)
    assert n_vis == cfg.num_images * cfg.num_dino_patches
    assert cond.shape == (3, n_vis + cfg.num_meta_queries, cfg.expert.hidden_size)
    x = torch.randn(3, cfg.chunk_size, cfg.action_dim)
    assert expert.velocity(cond, n_vis, x, torch.rand(3)).shape == x.shape
    assert expert.sample(latents, pixels, noise=x).shape == x.shape
    bias = block_attention_bias((2, 3, 1), "bias", torch.float32)
    assert bias.tolist()[0] == [1, 1, 0, 0, 0, 0] and bias.tolist()[-1] == [1] * 6
    block = block_attention_bias((2, 3, 1), "block", torch.float32)
    assert block[0, 2] == torch.finfo(torch.float32).min and block[2, 4] == 0
    assert block_attention_bias((2, 3, 1), "none", torch.float32) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_euler_sampler_reproduces_known_linear_flows(cfg, dtype) -> None:
    """v = c integrates to x0 + c; v = a x to x0 (1 + a dt)^N; times 0, 0.1, ..., 0.9; state kept in fp32."""
    torch.manual_seed(0)
    expert = ActionExpert(cfg).to(dtype)
    latents = torch.randn(2, cfg.num_meta_queries, cfg.llm.hidden_size)
    pixels = torch.randn(2 * cfg.num_images, 3, cfg.dino.image_size, cfg.dino.image_size)
    x0 = torch.randn(2, cfg.chunk_size, cfg.action_dim)
    c = torch.randn(cfg.chunk_size, cfg.action_dim)
    seen: list[torch.Tensor] = []

    def constant(cond, n_vis, x, t):
        seen.append(t.clone())
        return c.expand_as(x).to(dtype)

    expert.velocity = constant
    out = expert.sample(latents, pixels, noise=x0, steps=10)
    assert out.dtype == torch.float32
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2  # bf16 only rounds c itself
    torch.testing.assert_close(out, x0 + c.to(dtype).float(), atol=tolerance, rtol=0)
    torch.testing.assert_close(torch.stack(seen)[:, 0], torch.arange(10) / 10.0, atol=1e-6, rtol=0)
    expert.velocity = lambda cond, n_vis, x, t: (-0.5 * x).to(dtype)
    expected = x0 * (1 - 0.5 / 10) ** 10
    torch.testing.assert_close(expert.sample(latents, pixels, noise=x0, steps=10), expected, atol=3e-2 if dtype == torch.bfloat16 else 1e-5, rtol=0)


@pytest.mark.parametrize("preset", ["tiny", "base", "base-libero"])
def test_presets_action_head_carries_a_whole_chunk(preset, recwarn) -> None:
    """The head narrows to expert.hidden/2 values; the flow's velocity needs every noise value of the
    chunk, so a narrower head cannot fit flow matching (a 32-wide tiny expert plateaued near 0.75)."""
    cfg = get_config(preset)
    assert cfg.action_head_narrowest >= cfg.chunk_values
    if preset == "tiny":
        ActionExpert(cfg)
        assert not [w for w in recwarn if "action head" in str(w.message)]


def test_narrow_action_head_is_warned_about() -> None:
    tiny = get_config("tiny")
    narrow = tiny.replace(expert=dataclasses.replace(tiny.expert, hidden_size=32, intermediate_size=64))
    with pytest.warns(UserWarning, match=r"narrows to 16 values but predicts 56 \(8x7\).*hidden_size >= 112"):
        ActionExpert(narrow)


def test_state_variant_adds_one_token() -> None:
    cfg = get_config("tiny", use_state=True, num_images=1)
    expert = ActionExpert(cfg)
    cond, n_vis = expert.condition(torch.randn(2, cfg.num_meta_queries, cfg.llm.hidden_size), torch.randn(2, 3, 28, 28), torch.randn(2, 8))
    assert cond.shape[1] == n_vis + cfg.num_meta_queries + 1
    with pytest.raises(ValueError, match="proprio"):
        expert.condition(torch.randn(2, cfg.num_meta_queries, cfg.llm.hidden_size), torch.randn(2, 3, 28, 28))


def test_time_embedding_and_flow_time_formula(cfg) -> None:
    t = torch.tensor([0.0, 0.5, 1.0])
    emb = sinusoidal_embedding(t, 8, 100.0)
    freqs = [math.exp(-k * math.log(100.0) / 3) for k in range(4)]
    assert torch.allclose(emb[1], torch.tensor([math.sin(0.5 * f) for f in freqs] + [math.cos(0.5 * f) for f in freqs]))
    times = sample_flow_time(20000, cfg, torch.Generator().manual_seed(0))
    assert 0 <= float(times.min()) and float(times.max()) <= 0.999
    # t = 0.999 (1 - z), z ~ Beta(1.5, 1): E[z] = 0.6 -> E[t] = 0.3996
    assert abs(float(times.mean()) - 0.999 * 0.4) < 0.01


def test_expert_transformer_matches_hf_llama(cfg) -> None:
    from transformers import LlamaConfig, LlamaModel

    e = cfg.expert
    reference = LlamaModel(
        LlamaConfig(
            hidden_size=e.hidden_size, intermediate_size=e.intermediate_size, num_hidden_layers=e.num_hidden_layers,
            num_attention_heads=e.num_attention_heads, num_key_value_heads=e.num_key_value_heads, rms_norm_eps=e.rms_norm_eps,
            rope_theta=e.rope_theta, vocab_size=8, attention_dropout=0.0,
        )
    ).eval()
    ours = ExpertBackbone(e).eval()
    ours.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("embed_tokens")}, strict=True)
    x = torch.randn(2, 9, e.hidden_size)
    bias = block_attention_bias((3, 4, 2), "bias", torch.float32)
    with torch.no_grad():
        expected = reference(inputs_embeds=x, attention_mask=bias[None, None].expand(2, 1, 9, 9)).last_hidden_state
        assert torch.allclose(ours(x, bias), expected, atol=1e-5)


def test_film_dino_matches_hf_dinov2_with_registers() -> None:
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    hf_cfg = Dinov2WithRegistersConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, image_size=42, patch_size=14,
        num_register_tokens=4, layerscale_value=0.5,
    )
    reference = Dinov2WithRegistersModel(hf_cfg).eval()
    cfg = get_config("tiny").dino
    cfg = type(cfg)(**{**cfg.__dict__, "num_hidden_layers": 3, "feature_block": 1, "image_size": 42, "layerscale_value": 0.5})
    ours = FiLMViT(cfg, cond_dim=8).eval()
    mapped, unused = hf_dinov2_to_timm(reference.state_dict(), cfg)
    assert unused == ["embeddings.mask_token"]
    missing, unexpected = ours.load_state_dict(mapped, strict=False)
    assert not unexpected and all(".scale." in k or ".shift." in k for k in missing)
    for block in ours.blocks:  # FiLM as identity
        for layer in (block.scale, block.shift):
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    pixels = torch.randn(2, 3, 42, 42)
    with torch.no_grad():
        hidden = reference(pixel_values=pixels, output_hidden_states=True).hidden_states
        feature = ours(pixels, torch.randn(2, 8))
    assert feature.shape == (2, 9, 32)
    assert torch.allclose(feature, hidden[2][:, 5:], atol=1e-5)  # output of block index 1, prefix stripped


def test_moe_gate_weights_sum_to_one(model) -> None:
    gate = XLoRAGate(32, get_config("tiny").lora)
    assert [type(m).__name__ for m in gate.layers] == ["Linear", "ReLU", "Dropout"] * 3 + ["Linear"]
    weights = gate(torch.randn(2, 5, 32))
    assert weights.shape == (2, 5, 2)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 5), atol=1e-6)


def test_stage2_conversion_routes_per_token(cfg) -> None:
    model = build_model(cfg, seed=0)
    model.to_stage2()
    lm = model.vlm.language_model
    assert isinstance(lm, MoELoRALM) and model.stage == "stage2"
    assert len(lm.lora_layers()) == cfg.llm.num_hidden_layers * len(cfg.lora.target_modules)
    params = model.configure_trainable()
    assert not any(p.requires_grad for p in model.action_model.parameters())
    assert all(p.requires_grad for p in lm.gate.parameters())
    embeds = torch.randn(2, 7, cfg.llm.hidden_size)
    model.eval()
    with torch.no_grad():
        lm.hidden(embeds)
    weights = lm.last_gate_weights
    assert weights.shape == (2, 7, 2) and torch.allclose(weights.sum(-1), torch.ones(2, 7), atol=1e-6)
    assert len(params) > 0


def test_normalization_round_trip() -> None:
    rng = np.random.default_rng(0)
    actions = rng.uniform(-2, 2, size=(500, 7))
    actions[:, -1] = rng.choice([0.0, 1.0], size=500)
    stats = BoundsStats.from_dict(compute_stats(actions, (True,) * 6 + (False,)))
    normalized = normalize(actions, stats)
    assert normalized[:, :6].min() >= -1 and normalized[:, :6].max() <= 1
    restored = unnormalize_actions(normalized, stats)
    inside = np.all((actions[:, :6] >= stats.q01[:6]) & (actions[:, :6] <= stats.q99[:6]), axis=1)
    assert np.allclose(restored[inside], actions[inside], atol=1e-6)
    chunk = pad_chunk(normalized[:4], np.array([True, True, False, False]), stats)
    assert np.allclose(unnormalize_actions(chunk, stats)[2:, :6], 0.0, atol=1e-6)
    assert np.all(chunk[2:, 6] == normalized[1, 6])


def test_image_presets_and_transforms() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    for preset in IMAGE_PRESETS.values():
        out = preset(frame)
        assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert np.array_equal(crop_and_resize(frame, (0.0, 0.0, 1.0, 1.0), (256, 256)), frame)
    assert center_crop_area(frame).shape == frame.shape
    wide = IMAGE_PRESETS["openpi"](rng.integers(0, 255, (100, 200, 3), dtype=np.uint8))
    assert wide[:30].max() == 0  # padded rows
    assert vlm_pixel_values([frame[:224, :224]] * 2, 56).shape == (3, 56, 56)
    assert dino_pixel_values(frame, 224).shape == (3, 224, 224)


def test_decoded_frame_cache_is_bounded_by_entries_and_bytes() -> None:
    from vlaeval.models.instructvla.data import _FileCache

    loads: list[int] = []

    def load(key: int) -> list[np.ndarray]:
        loads.append(key)
        return [np.zeros(100, np.uint8), np.zeros(50, np.uint8)]  # 150 bytes per entry

    cache = _FileCache(load, size=10, max_bytes=400)
    for key in (0, 1, 0, 2):  # 0 is used again before 2 arrives, so 1 is the oldest
        cache.get(key)
    assert list(cache.items) == [0, 2] and cache.bytes == 300 and loads == [0, 1, 2]
    cache.get(1)
    assert loads == [0, 1, 2, 1] and list(cache.items) == [2, 1]
    one = _FileCache(load, size=10, max_bytes=10)  # an entry larger than the budget is still served
    assert len(one.get(5)) == 2 and list(one.items) == [5]


def test_sized_byte_tokenizer_reaches_the_real_vocabulary() -> None:
    from vlaeval.models.instructvla.tokenizer import add_meta_tokens, byte_tokenizer, sized_byte_tokenizer

    sized = sized_byte_tokenizer(151738, 64)
    first, last = add_meta_tokens(sized, 64)
    assert len(sized) == 151738 and last == 151737 and last - first == 63
    text = "pick up the coke can"
    assert sized(text)["input_ids"] == byte_tokenizer()(text)["input_ids"]
    assert sized.decode(sized(text)["input_ids"]) == text
    with pytest.raises(ValueError, match="below the byte tokenizer"):
        sized_byte_tokenizer(100, 64)


def test_base_preset_sizes_match_the_documented_model() -> None:
    """Full-size shapes without memory: build on the meta device and count every component."""
    from vlaeval.models.instructvla.sizes import DOCUMENTED_M, component_millions

    with torch.device("meta"):
        full = InstructVLA(get_config("base", stage="stage2"))
    counts = component_millions(full)
    for name, documented in DOCUMENTED_M.items():
        if name == "stage-1 LoRA":
            assert counts["stage-2 LoRA experts (2)"] / 2 == pytest.approx(documented, rel=0.01)
            continue
        assert counts[name] == pytest.approx(documented, rel=0.02, abs=0.05), name
    assert counts["SigLIP vision tower"] == pytest.approx(413.3, abs=0.1)
    assert counts["whole model"] == pytest.approx(2726.7, abs=0.1)


def test_select_key_explains_missing_or_ambiguous_statistics() -> None:
    from vlaeval.models.instructvla.normalization import select_key

    assert select_key({"libero": {}}, None) == "libero"
    with pytest.raises(KeyError, match="no normalization statistics"):
        select_key({}, None)
    with pytest.raises(KeyError, match="several datasets"):
        select_key({"a": {}, "b": {}}, None)
    with pytest.raises(KeyError, match="not in checkpoint statistics"):
        select_key({"a": {}}, "bridge")

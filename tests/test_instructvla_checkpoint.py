"""Upstream checkpoint layout, key mapping and base-weight (Eagle2 / DINOv2 directory) loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from vlaeval.models.instructvla import checkpoint as ckpt  # noqa: E402
from vlaeval.models.instructvla.config import InstructVLAConfig, get_config  # noqa: E402
from vlaeval.models.instructvla.model import InstructVLA, build_model  # noqa: E402
from vlaeval.models.instructvla.normalization import dataset_statistics  # noqa: E402
from vlaeval.models.instructvla.tokenizer import byte_tokenizer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
KEY = "libero_goal_no_noops"


def upstream_model_state(cfg: InstructVLAConfig, stage: str) -> dict[str, dict[str, torch.Tensor]]:
    """A synthetic ``torch.load(pt)["model"]`` written from the upstream key names (spec §1, §3.9)."""
    g = torch.Generator().manual_seed(0)

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.02

    v, llm, ex, dino = cfg.vision, cfg.llm, cfg.expert, cfg.dino
    vision = {
        "vision_model.embeddings.patch_embedding.weight": t(v.hidden_size, 3, v.patch_size, v.patch_size),
        "vision_model.embeddings.patch_embedding.bias": t(v.hidden_size),
        "vision_model.embeddings.position_embedding.weight": t((v.image_size // v.patch_size) ** 2, v.hidden_size),
        "vision_model.post_layernorm.weight": t(v.hidden_size),
        "vision_model.post_layernorm.bias": t(v.hidden_size),
    }
    for i in range(v.num_hidden_layers):
        p = f"vision_model.encoder.layers.{i}."
        for norm in ("layer_norm1", "layer_norm2"):
            vision[p + norm + ".weight"], vision[p + norm + ".bias"] = t(v.hidden_size), t(v.hidden_size)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            vision[f"{p}self_attn.{proj}.weight"], vision[f"{p}self_attn.{proj}.bias"] = t(v.hidden_size, v.hidden_size), t(v.hidden_size)
        vision[p + "mlp.fc1.weight"], vision[p + "mlp.fc1.bias"] = t(v.intermediate_size, v.hidden_size), t(v.intermediate_size)
        vision[p + "mlp.fc2.weight"], vision[p + "mlp.fc2.bias"] = t(v.hidden_size, v.intermediate_size), t(v.hidden_size)

    vit = v.hidden_size * 4
    mlp1 = {"0.weight": t(vit), "0.bias": t(vit), "1.weight": t(llm.hidden_size, vit), "1.bias": t(llm.hidden_size),
            "3.weight": t(llm.hidden_size, llm.hidden_size), "3.bias": t(llm.hidden_size)}

    prefix = {"stage1": "base_model.model.", "stage2": "base_model.lora_model.model."}[stage]
    adapters = {"stage1": ["default"], "stage2": ["0", "1"]}[stage]
    h, kv = llm.hidden_size, llm.num_key_value_heads * (llm.hidden_size // llm.num_attention_heads)
    shapes = {"self_attn.q_proj": (h, h, True), "self_attn.k_proj": (kv, h, True), "self_attn.v_proj": (kv, h, True),
              "self_attn.o_proj": (h, h, False), "mlp.up_proj": (llm.intermediate_size, h, False),
              "mlp.down_proj": (h, llm.intermediate_size, False)}
    embed = t(llm.vocab_size, h)
    language = {prefix + "model.embed_tokens.weight": embed, prefix + "lm_head.weight": embed.clone(), prefix + "model.norm.weight": t(h)}
    for i in range(llm.num_hidden_layers):
        p = f"{prefix}model.layers.{i}."
        language[p + "input_layernorm.weight"] = t(h)
        language[p + "post_attention_layernorm.weight"] = t(h)
        language[p + "mlp.gate_proj.weight"] = t(llm.intermediate_size, h)
        for module, (out_f, in_f, bias) in shapes.items():
            language[f"{p}{module}.base_layer.weight"] = t(out_f, in_f)
            if bias:
                language[f"{p}{module}.base_layer.bias"] = t(out_f)
            for name in adapters:
                language[f"{p}{module}.lora_A.{name}.weight"] = t(cfg.lora.r, in_f)
                language[f"{p}{module}.lora_B.{name}.weight"] = t(out_f, cfg.lora.r)
    if stage == "stage2":
        widths = [h] + [cfg.lora.gate_size] * 3 + [2]
        for j, index in enumerate((0, 3, 6, 9)):
            language[f"base_model.internal_xlora_classifier.layers.{index}.weight"] = t(widths[j + 1], widths[j])
            language[f"base_model.internal_xlora_classifier.layers.{index}.bias"] = t(widths[j + 1])

    e, d = ex.hidden_size, dino.hidden_size
    action = {"VideoGPT.model.norm.weight": t(e)}
    for i in range(ex.num_hidden_layers):
        p = f"VideoGPT.model.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            action[f"{p}self_attn.{proj}.weight"] = t(e, e)
        action[p + "mlp.gate_proj.weight"], action[p + "mlp.up_proj.weight"] = t(ex.intermediate_size, e), t(ex.intermediate_size, e)
        action[p + "mlp.down_proj.weight"] = t(e, ex.intermediate_size)
        action[p + "input_layernorm.weight"], action[p + "post_attention_layernorm.weight"] = t(e), t(e)
    head = [e * cfg.chunk_size, e * 4, e * 2, e // 2, cfg.chunk_size * cfg.action_dim]
    for j, index in enumerate((0, 2, 4, 6)):
        action[f"action_head.{index}.weight"], action[f"action_head.{index}.bias"] = t(head[j + 1], head[j]), t(head[j + 1])
    f = "film_vision_model.vision_model."
    action.update({f + "cls_token": t(1, 1, d), f + "reg_token": t(1, dino.num_register_tokens, d),
                   f + "pos_embed": t(1, cfg.num_dino_patches, d), f + "patch_embed.proj.weight": t(d, 3, dino.patch_size, dino.patch_size),
                   f + "patch_embed.proj.bias": t(d), f + "norm.weight": t(d), f + "norm.bias": t(d)})
    hidden = int(d * dino.mlp_ratio)
    for i in range(dino.num_hidden_layers):
        p = f"{f}blocks.{i}."
        for norm in ("norm1", "norm2"):
            action[f"{p}block.{norm}.weight"], action[f"{p}block.{norm}.bias"] = t(d), t(d)
        action[p + "block.attn.qkv.weight"], action[p + "block.attn.qkv.bias"] = t(3 * d, d), t(3 * d)
        action[p + "block.attn.proj.weight"], action[p + "block.attn.proj.bias"] = t(d, d), t(d)
        action[p + "block.ls1.gamma"], action[p + "block.ls2.gamma"] = t(d), t(d)
        action[p + "block.mlp.fc1.weight"], action[p + "block.mlp.fc1.bias"] = t(hidden, d), t(hidden)
        action[p + "block.mlp.fc2.weight"], action[p + "block.mlp.fc2.bias"] = t(d, hidden), t(d)
        for film in ("scale", "shift"):
            action[f"{p}{film}.weight"], action[f"{p}{film}.bias"] = t(d, llm.hidden_size), t(d)
    for name, d_in in (("visual_projector", d), ("cog_projector", llm.hidden_size)):
        action[f"{name}.0.weight"], action[f"{name}.0.bias"] = t(e, d_in), t(e)
        action[f"{name}.2.weight"], action[f"{name}.2.bias"] = t(e, e), t(e)
    action["action_embed.linear_1.weight"], action["action_embed.linear_1.bias"] = t(e, cfg.action_dim), t(e)
    action["action_embed.linear_2.weight"], action["action_embed.linear_2.bias"] = t(e, 2 * e), t(e)
    action["action_embed.linear_3.weight"], action["action_embed.linear_3.bias"] = t(e, e), t(e)
    return {"action_model": action, "vision_model": vision, "language_model": language, "mlp1": mlp1}


def model_for(stage: str) -> InstructVLA:
    return InstructVLA(get_config("tiny", stage=stage), byte_tokenizer())


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_upstream_mapping_loads_with_zero_missing_or_unexpected(stage: str) -> None:
    raw = upstream_model_state(get_config("tiny"), stage)
    parts, detected = ckpt.map_upstream_state(raw)
    assert detected == stage
    model = model_for(stage)
    report = ckpt.load_parts(model, parts)
    assert report.ok, report.summary()
    assert report.ignored == {"language_model": ["lm_head.weight (tied)"]}
    lm = model.vlm.language_model
    if stage == "stage2":
        layer = lm.lora_layers()[0]
        expected = raw["language_model"]["base_model.lora_model.model.model.layers.0.self_attn.q_proj.lora_A.1.weight"]
        assert torch.equal(layer.lora_A["language"].weight, expected)
        assert torch.equal(lm.gate.layers[9].bias, raw["language_model"]["base_model.internal_xlora_classifier.layers.9.bias"])
    state = model.action_model.state_dict()
    key = "film_vision_model.vision_model.blocks.1.block.attn.qkv.weight"
    assert torch.equal(state[key], raw["action_model"][key])


def test_fsdp_and_checkpoint_wrapper_names_are_unwrapped() -> None:
    raw = upstream_model_state(get_config("tiny"), "stage1")
    lm = raw["language_model"]
    wrapped = {k.replace("model.layers.0.", "model.layers.0._checkpoint_wrapped_module."): v for k, v in lm.items()}
    raw["language_model"] = {"_fsdp_wrapped_module." + k: v for k, v in wrapped.items()}
    parts, stage = ckpt.map_upstream_state(raw)
    assert stage == "stage1" and ckpt.load_parts(model_for("stage1"), parts).ok


def test_peft_generated_stage1_names_match_the_mapping() -> None:
    from peft import LoraConfig, get_peft_model

    cfg = get_config("tiny")
    plain = InstructVLA(cfg.replace(stage="stage1"), byte_tokenizer()).vlm.language_model.peft_model.unload()
    lora = cfg.lora
    peft_lm = get_peft_model(plain, LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    mapped, stage = ckpt.map_upstream_language_model(peft_lm.state_dict())
    assert stage == "stage1"
    report = ckpt.load_parts(model_for("stage1"), {"language_model": mapped})
    assert not report.unexpected and not report.mismatched and set(report.missing) <= {"vision_model", "mlp1", "action_model"}


def test_broken_upstream_state_gives_a_clear_report() -> None:
    raw = upstream_model_state(get_config("tiny"), "stage2")
    lm = raw["language_model"]
    lm["base_model.lora_model.model.model.layers.0.self_attn.q_proj.lora_A.7.weight"] = lm.pop(
        "base_model.lora_model.model.model.layers.0.self_attn.q_proj.lora_A.1.weight"
    )
    del raw["action_model"]["action_head.6.bias"]
    raw["mlp1"]["1.weight"] = torch.zeros(3, 3)
    raw["vision_model"]["vision_model.head.probe"] = torch.zeros(1)
    parts, _ = ckpt.map_upstream_state(raw)
    report = ckpt.load_parts(model_for("stage2"), parts)
    assert not report.ok
    assert report.missing["language_model"] == ["model.layers.0.self_attn.q_proj.lora_A.language.weight"]
    assert report.unexpected["language_model"] == ["model.layers.0.self_attn.q_proj.lora_A.7.weight"]
    assert report.missing["action_model"] == ["action_head.6.bias"]
    assert report.mismatched["mlp1"][0].startswith("1.weight (3, 3)!=")
    assert "vision_model.head.probe" in report.ignored["vision_model"]
    line = report.summary()
    assert "\n" not in line and "language_model: 1 missing" in line and "mlp1: 1 mismatched" in line


def write_upstream_run(root: Path, stage: str) -> Path:
    cfg = get_config("tiny")
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"stage": stage, "num_of_meta_query": cfg.num_meta_queries}))
    rng = np.random.default_rng(0)
    (run / "dataset_statistics.json").write_text(json.dumps({KEY: dataset_statistics(rng.normal(size=(50, 7)), None, 2)}))
    pt = run / "checkpoints" / "step-000010-epoch-00-loss=0.1000.pt"
    torch.save({"model": upstream_model_state(cfg, stage)}, pt)
    byte_tokenizer().save_pretrained(str(root / "eagle"))
    return pt


def test_load_upstream_run_directory(tmp_path: Path) -> None:
    pt = write_upstream_run(tmp_path, "stage2")
    assert ckpt.is_upstream_checkpoint(pt)
    model, report = ckpt.load_upstream(pt, tmp_path / "eagle", base="tiny")
    assert report.ok and model.stage == "stage2" and model.cfg.num_images == 2 and model.cfg.chunk_size == 8
    with pytest.raises(ckpt.CheckpointError, match="tokenizer"):
        ckpt.load_upstream(pt, None, base="tiny")
    pt.write_bytes(b"\x00garbage")
    with pytest.raises(ckpt.CheckpointError, match="corrupt") as info:
        ckpt.load_upstream(pt, tmp_path / "eagle", base="tiny")
    assert "\n" not in str(info.value)


def test_base_eagle_and_dinov2_directories(tmp_path: Path) -> None:
    from safetensors.torch import save_file
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    cfg = get_config("tiny")
    raw = upstream_model_state(cfg, "stage1")
    base_vocab = cfg.llm.vocab_size - cfg.num_meta_queries
    lm = {k.removeprefix("base_model.model."): v for k, v in raw["language_model"].items() if ".lora_" not in k}
    lm = {k.replace(".base_layer.", "."): v for k, v in lm.items()}
    embed = lm["model.embed_tokens.weight"][:base_vocab].clone()
    lm["model.embed_tokens.weight"], lm["lm_head.weight"] = embed, embed.clone()
    weights = {f"vision_model.{k}": v for k, v in raw["vision_model"].items()}
    weights.update({f"mlp1.{k}": v for k, v in raw["mlp1"].items()})
    weights.update({f"language_model.{k}": v for k, v in lm.items()})
    eagle = tmp_path / "eagle"
    eagle.mkdir()
    save_file({k: v.contiguous() for k, v in weights.items()}, str(eagle / "model.safetensors"))
    v, llm = cfg.vision, cfg.llm
    (eagle / "config.json").write_text(json.dumps({
        "force_image_size": v.image_size, "downsample_ratio": 0.5, "select_layer": -1, "template": "qwen2-chat",
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
                          "num_hidden_layers": v.num_hidden_layers, "num_attention_heads": v.num_attention_heads,
                          "image_size": 384, "patch_size": v.patch_size},
        "llm_config": {"architectures": ["Qwen2ForCausalLM"], "hidden_size": llm.hidden_size, "intermediate_size": llm.intermediate_size,
                       "num_hidden_layers": llm.num_hidden_layers, "num_attention_heads": llm.num_attention_heads,
                       "num_key_value_heads": llm.num_key_value_heads, "vocab_size": base_vocab, "tie_word_embeddings": True},
    }))
    byte_tokenizer().save_pretrained(str(eagle))
    dino_dir = tmp_path / "dino"
    Dinov2WithRegistersModel(Dinov2WithRegistersConfig(hidden_size=cfg.dino.hidden_size, num_hidden_layers=cfg.dino.num_hidden_layers,
                                                       num_attention_heads=2, image_size=56, patch_size=14)).save_pretrained(str(dino_dir))
    model = build_model(cfg, eagle_dir=eagle, dino_dir=dino_dir, seed=0)
    assert model.cfg.llm.vocab_size == cfg.llm.vocab_size and model.cfg.vision.image_size == v.image_size
    lm_model = model.vlm.language_model
    assert torch.equal(lm_model.input_embeddings.weight[:base_vocab], embed)
    assert torch.equal(model.vlm.mlp1[1].weight, raw["mlp1"]["1.weight"])
    assert model.action_model.film_vision_model.vision_model.pos_embed.shape[1] == cfg.num_dino_patches

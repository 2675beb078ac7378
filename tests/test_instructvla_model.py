"""InstructVLA end to end on the tiny preset: training signal, determinism, save/load, generation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from vlaeval.models.instructvla import checkpoint as ckpt  # noqa: E402
from vlaeval.models.instructvla.config import get_config  # noqa: E402
from vlaeval.models.instructvla.generation import ReasoningState, generate_response, greedy_generate, next_response  # noqa: E402
from vlaeval.models.instructvla.model import build_model  # noqa: E402
from vlaeval.models.instructvla.normalization import dataset_statistics  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
KEY = "libero_spatial_no_noops"


def stats() -> dict:
    rng = np.random.default_rng(0)
    return {KEY: dataset_statistics(rng.normal(size=(200, 7)), rng.normal(size=(200, 8)), 4)}


def frames(n: int, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for _ in range(2)] for _ in range(n)]


def predict(model, images, seed: int = 3):
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(images))]
    return model.predict_action(images, ["put the bowl on the plate"] * len(images), KEY, gens)


@pytest.fixture(scope="module")
def model():
    return build_model(get_config("tiny"), norm_stats=stats(), seed=0).eval()


def test_flow_matching_loss_decreases_on_overfit_batch() -> None:
    cfg = get_config("tiny")
    model = build_model(cfg, norm_stats=stats(), seed=0)
    rng = np.random.default_rng(1)
    samples = [
        model.processor.action_sample(f, "open the drawer", actions=rng.uniform(-1, 1, (cfg.chunk_size, 7)).astype(np.float32))
        for f in frames(2)
    ]
    batch = model.processor.collate(samples)
    params = model.configure_trainable()
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    model.train()
    t = torch.full((2,), 0.5)
    noise = torch.randn(2, cfg.chunk_size, 7, generator=torch.Generator().manual_seed(0))

    def fm_loss() -> torch.Tensor:
        hidden, _ = model.vlm(batch["input_ids"], batch["attention_mask"], batch["pixel_values"])
        latents = model.latents_from_hidden(batch["input_ids"], hidden)
        return model.action_model.loss(latents, batch["dino_pixels"], batch["actions"], t=t, noise=noise)

    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = fm_loss()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0] and losses[-1] == min(losses[-3:]), losses


def test_only_meta_token_rows_get_embedding_grads(model) -> None:
    m = build_model(get_config("tiny"), norm_stats=stats(), seed=0)
    m.configure_trainable()
    samples = [m.processor.action_sample(f, "x", actions=np.zeros((8, 7), np.float32)) for f in frames(1)]
    m(m.processor.collate(samples))["loss"].backward()
    grad = m.vlm.language_model.input_embeddings.weight.grad
    rows = (grad.abs().sum(1) > 0).nonzero().flatten().tolist()
    assert rows and min(rows) >= m.meta_first


def test_inference_is_deterministic_under_a_seed(model) -> None:
    images = frames(2)
    a, b = predict(model, images), predict(model, images)
    assert np.array_equal(a.actions, b.actions)
    assert a.actions.shape == (2, 8, 7) and np.isfinite(a.actions).all()
    assert set(np.unique(a.actions[..., -1])) <= {0.0, 1.0}
    c = predict(model, images, seed=99)
    assert not np.array_equal(a.actions, c.actions)
    single = predict(model, images[:1])
    assert np.allclose(single.actions[0], a.actions[0], atol=1e-5)  # batching does not change a sample


def test_save_load_round_trip_is_bit_identical(model, tmp_path: Path) -> None:
    images = frames(2)
    before = predict(model, images)
    ckpt.save_checkpoint(model, tmp_path / "ck", meta={"note": "test"})
    loaded, report = ckpt.load_checkpoint(tmp_path / "ck")
    assert report.ok and not report.ignored, report.summary()
    after = predict(loaded, images)
    assert np.array_equal(before.actions, after.actions)
    assert np.array_equal(before.normalized, after.normalized)
    config = (tmp_path / "ck" / "config.json").read_text()
    assert '"git_sha"' in config and '"weights_sha256"' in config


def test_stage2_save_load_round_trip(tmp_path: Path) -> None:
    m = build_model(get_config("tiny"), norm_stats=stats(), seed=0)
    m.to_stage2()
    m.eval()
    before = predict(m, frames(1))
    ckpt.save_checkpoint(m, tmp_path / "s2")
    loaded, report = ckpt.load_checkpoint(tmp_path / "s2")
    assert report.ok and loaded.stage == "stage2"
    assert np.array_equal(before.actions, predict(loaded, frames(1)).actions)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_checkpoint_gives_one_line_error(model, tmp_path: Path, damage: str) -> None:
    directory = ckpt.save_checkpoint(model, tmp_path / "bad")
    weights = directory / ckpt.WEIGHTS_FILE
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        weights.write_bytes(b"not a safetensors file at all")
    else:
        weights.write_bytes(data[:-10] + bytes(10))
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.load_checkpoint(directory)
    message = str(info.value)
    assert "\n" not in message and "corrupt" in message
    if damage != "flip":  # without the recorded hash the decoder itself must refuse the file
        with pytest.raises(ckpt.CheckpointError, match="corrupt"):
            ckpt.load_checkpoint(directory, verify=False)


def test_missing_weights_are_reported_not_random(model, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    directory = ckpt.save_checkpoint(model, tmp_path / "partial")
    weights = directory / ckpt.WEIGHTS_FILE
    state = load_file(str(weights))
    state.pop("action_model.action_head.0.weight")
    save_file(state, str(weights))
    with pytest.raises(ckpt.CheckpointError, match="action_model: 1 missing"):
        ckpt.load_checkpoint(directory, verify=False)
    with pytest.warns(UserWarning, match="strict=False"):
        _, report = ckpt.load_checkpoint(directory, strict=False, verify=False)
    assert report.missing == {"action_model": ["action_head.0.weight"]}


def test_generation_cache_matches_recompute_and_stops() -> None:
    m = build_model(get_config("tiny"), norm_stats=stats(), seed=0)
    m.to_stage2()
    for layer in m.vlm.language_model.lora_layers():
        torch.nn.init.normal_(layer.lora_B["language"].weight, std=0.2)
    m.eval()
    images = frames(1)[0]
    sample = m.processor.action_sample(images, "open the drawer")
    cached = greedy_generate(m, sample.input_ids, sample.pixel_values, set(), 6, use_cache=True)
    plain = greedy_generate(m, sample.input_ids, sample.pixel_values, set(), 6, use_cache=False)
    assert cached == plain and len(cached) == 6
    stop = {cached[0]}
    assert greedy_generate(m, sample.input_ids, sample.pixel_values, stop, 6) == cached[:1]
    state = ReasoningState()
    first = next_response(m, state, images, "open the drawer")
    assert first == generate_response(m, images, "open the drawer") and state.run_index == 1
    prediction = m.predict_action([images], ["open the drawer"], KEY, [torch.Generator().manual_seed(0)], [first])
    assert prediction.actions.shape == (1, 8, 7)

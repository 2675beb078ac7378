"""The InstructVLA harness adapter and checkpoint loader on a tiny saved checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from vlaeval.adapters.instructvla import InstructVLACheckpointLoader, InstructVLAPolicy, checkpoint_loader  # noqa: E402
from vlaeval.harness.policy import LocalPolicyHandle, as_action_chunk, convert_gripper  # noqa: E402
from vlaeval.models.instructvla.checkpoint import save_checkpoint  # noqa: E402
from vlaeval.models.instructvla.config import get_config  # noqa: E402
from vlaeval.models.instructvla.model import build_model  # noqa: E402
from vlaeval.models.instructvla.normalization import dataset_statistics  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def libero_obs(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "agentview": rng.integers(0, 255, (256, 256, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 255, (256, 256, 3), dtype=np.uint8),
        "state": rng.normal(size=8),
        "instruction": "Put the black bowl on the plate",
    }


def episode_info(episode: int = 0, suite: str = "libero-spatial") -> dict:
    return {"suite": suite, "suite_version": "1", "task_id": "t0", "episode_index": episode, "seed": 7, "max_steps": 10,
            "instruction": "Put the black bowl on the plate", "protocol": {}, "task_index": 0}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    stats = {name: dataset_statistics(rng.normal(size=(100, 7)), rng.normal(size=(100, 8)), 3)
             for name in ("libero_spatial_no_noops", "libero_goal_no_noops")}
    model = build_model(get_config("tiny"), norm_stats=stats, seed=0)
    return save_checkpoint(model, tmp_path_factory.mktemp("ivla") / "ckpt")


@pytest.fixture(scope="module")
def policy(checkpoint: Path) -> InstructVLAPolicy:
    return InstructVLAPolicy(checkpoint=checkpoint)


def test_spec_declares_chunk_gripper_and_observation_keys(policy: InstructVLAPolicy) -> None:
    spec = policy.spec()
    assert (spec.action_dim, spec.chunk_size) == (7, 8)
    assert spec.gripper == "open_positive" and spec.gripper_range == (0.0, 1.0)
    assert spec.observation_keys == ("agentview|image", "wrist", "instruction")
    assert spec.extra["image_preset"] == "instructvla"


def test_act_returns_finite_chunk_for_libero_obs(policy: InstructVLAPolicy) -> None:
    state = policy.start_episode("Put the black bowl on the plate", episode_info())
    assert state.unnorm_key == "libero_spatial_no_noops"
    chunk = as_action_chunk(policy.act(state, libero_obs()), 7)
    assert chunk.shape == (8, 7) and np.isfinite(chunk).all()
    assert set(np.unique(chunk[:, -1])) <= {0.0, 1.0}
    converted = convert_gripper(chunk, policy.spec(), "close_positive", (-1.0, 1.0))
    assert np.array_equal(converted[:, -1], np.where(chunk[:, -1] == 1.0, -1.0, 1.0))


def test_episodes_are_reproducible_and_batching_matches(policy: InstructVLAPolicy) -> None:
    obs = [libero_obs(1), libero_obs(2)]
    single = [policy.act(policy.start_episode("x", episode_info(i)), o) for i, o in enumerate(obs)]
    again = policy.act(policy.start_episode("x", episode_info(0)), obs[0])
    assert np.array_equal(single[0], again)
    batched = policy.act_batch([policy.start_episode("x", episode_info(i)) for i in range(2)], obs)
    for a, b in zip(single, batched):
        assert np.allclose(a, b, atol=1e-4)
    assert policy.supports_batching


def test_unnorm_key_selection(checkpoint: Path) -> None:
    goal = InstructVLAPolicy(checkpoint=checkpoint, unnorm_key="libero_goal_no_noops", image_preset="openpi")
    assert goal.start_episode("x", episode_info()).unnorm_key == "libero_goal_no_noops"
    policy = InstructVLAPolicy(checkpoint=checkpoint)
    assert policy.start_episode("x", episode_info(suite="libero-goal")).unnorm_key == "libero_goal_no_noops"
    with pytest.raises(KeyError, match="unnorm_key"):
        policy.start_episode("x", episode_info(suite="libero-90"))
    with pytest.raises(KeyError, match="not in checkpoint"):
        InstructVLAPolicy(checkpoint=checkpoint, unnorm_key="bridge").start_episode("x", episode_info())


def test_fingerprint_hashes_weights_config_and_options(checkpoint: Path, policy: InstructVLAPolicy) -> None:
    fp = policy.fingerprint()
    assert fp.startswith("instructvla:") and fp == InstructVLAPolicy(checkpoint=checkpoint).fingerprint()
    assert fp != InstructVLAPolicy(checkpoint=checkpoint, image_preset="openpi").fingerprint()


def test_checkpoint_loader_claims_our_directories(checkpoint: Path, tmp_path: Path) -> None:
    assert checkpoint_loader.can_load(checkpoint)
    assert not InstructVLACheckpointLoader().can_load(tmp_path)
    loaded = checkpoint_loader.load(checkpoint, image_preset="instructvla-nocrop")
    handle = LocalPolicyHandle(loaded)
    handle.start_episode("put the bowl", episode_info())
    assert handle.act(libero_obs()).shape == (8, 7)


def test_refuses_random_weights_unless_asked() -> None:
    with pytest.raises(ValueError, match="checkpoint"):
        InstructVLAPolicy()
    with pytest.warns(UserWarning, match="random"):
        smoke = InstructVLAPolicy(allow_random=True, config="tiny")
    assert smoke.act(smoke.start_episode("x", episode_info()), libero_obs()).shape == (8, 7)


def test_reasoning_then_act_on_stage2(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = build_model(get_config("tiny"), norm_stats={"libero_spatial_no_noops": dataset_statistics(rng.normal(size=(50, 7)), None, 2)}, seed=0)
    model.to_stage2()
    policy = InstructVLAPolicy(model=model, use_generate="true")
    state = policy.start_episode("x", episode_info())
    assert policy.act(state, libero_obs()).shape == (8, 7)
    assert isinstance(state.info["last_response"], str) and state.reasoning.run_index == 1
    with pytest.raises(ValueError, match="stage-2"):
        InstructVLAPolicy(model=build_model(get_config("tiny"), seed=0), use_generate=True)


def test_shipped_demo_checkpoint_loads_cleanly_and_acts_on_state() -> None:
    from vlaeval.models.instructvla import DEMO_CHECKPOINT
    from vlaeval.models.instructvla.checkpoint import load_checkpoint

    assert InstructVLACheckpointLoader().can_load(DEMO_CHECKPOINT)
    model, report = load_checkpoint(DEMO_CHECKPOINT)  # strict: a missing or unexpected key raises; sha256 checked
    assert report.ok
    meta = model.checkpoint_meta["config"]["meta"]
    assert meta["stage"] == "stage1" and meta["train_args"]["image_aug"] and meta["step"] == meta["train_args"]["steps"]
    assert model.cfg.preset == "tiny" and model.cfg.use_state and model.cfg.chunk_size == 8
    assert set(model.norm_stats) == {"libero_spatial_no_noops"} and "proprio" in model.norm_stats["libero_spatial_no_noops"]
    demo = InstructVLAPolicy(checkpoint=DEMO_CHECKPOINT)
    assert "state" in demo.spec().observation_keys
    state = demo.start_episode("pick up the black bowl between the plate and the ramekin and place it on the plate",
                               episode_info())
    chunk = as_action_chunk(demo.act(state, libero_obs()), 7)
    assert chunk.shape == (8, 7) and np.isfinite(chunk).all()

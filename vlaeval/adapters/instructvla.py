"""InstructVLA policy adapter and checkpoint loader.

``InstructVLAPolicy`` returns the raw ``(H, 7)`` chunk in the dataset's action units with the
gripper in {0 closed, 1 open} (declared ``open_positive`` over ``(0, 1)``; the harness converts).
Chunk execution / adaptive ensembling are harness protocol parameters, not done here.

Observation presets (``image_preset``): see ``vlaeval.models.instructvla.preprocessing``.
The statistics key (``unnorm_key``) defaults to ``<suite>_no_noops`` when the checkpoint has it
(``libero-spatial`` -> ``libero_spatial_no_noops``; ``libero-long`` -> ``libero_10_no_noops``).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlaeval.harness.policy import Observation, Policy, PolicySpec

CAMERA_KEYS = ("agentview|image", "wrist")
"""Per image slot, the observation names that can fill it (LIBERO: agentview; SimplerEnv: image)."""
SUITE_ALIASES = {"libero_long": "libero_10"}


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass
class EpisodeState:
    instruction: str
    unnorm_key: str
    generator: Any
    reasoning: Any = None
    info: dict[str, Any] = field(default_factory=dict)


class InstructVLAPolicy(Policy):
    """InstructVLA behind the harness :class:`Policy` interface (batched via :meth:`act_batch`)."""

    name = "instructvla"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        model: Any = None,
        unnorm_key: str | None = None,
        image_preset: str = "instructvla",
        use_generate: bool | str = False,
        device: str = "auto",
        dtype: str = "auto",
        seed: int = 0,
        lowercase_instruction: bool | str = True,
        tokenizer_dir: str | Path | None = None,
        strict: bool | str = True,
        num_inference_steps: int | None = None,
        allow_random: bool | str = False,
        config: str = "tiny",
        **model_overrides: Any,
    ):
        import torch

        from vlaeval.models.instructvla.preprocessing import get_preset

        self.preset = get_preset(image_preset)
        self.unnorm_key = unnorm_key
        self.use_generate = _as_bool(use_generate)
        self.seed = int(seed)
        self.lowercase = _as_bool(lowercase_instruction)
        self.model = model if model is not None else self._load(checkpoint, tokenizer_dir, _as_bool(strict), _as_bool(allow_random), config, model_overrides)
        if num_inference_steps is not None:
            self.model.cfg = self.model.cfg.replace(num_inference_steps=int(num_inference_steps))
            self.model.action_model.cfg = self.model.cfg
        if self.use_generate and self.model.stage != "stage2":
            raise ValueError("use_generate (reasoning-then-act) needs a stage-2 checkpoint")
        target = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
        dtype_name = ("bfloat16" if target.type == "cuda" else "float32") if dtype == "auto" else dtype
        self.model.to(device=target, dtype=getattr(torch, dtype_name)).eval()
        self.dtype_name = dtype_name
        self._fingerprint: str | None = None

    @staticmethod
    def _load(checkpoint: Any, tokenizer_dir: Any, strict: bool, allow_random: bool, config: str, overrides: dict[str, Any]) -> Any:
        from vlaeval.models.instructvla.checkpoint import is_checkpoint_dir, is_upstream_checkpoint, load_checkpoint, load_upstream

        if checkpoint is None:
            if not allow_random:
                raise ValueError("InstructVLAPolicy needs checkpoint=... (or allow_random=true for a random-weight smoke test)")
            from vlaeval.models.instructvla.config import get_config
            from vlaeval.models.instructvla.model import build_model
            from vlaeval.models.instructvla.normalization import GRIPPER_MASK

            warnings.warn("InstructVLAPolicy: random weights (allow_random=true)", stacklevel=3)
            cfg = get_config(config, **overrides)
            identity = {"q01": [-1.0] * cfg.action_dim, "q99": [1.0] * cfg.action_dim, "mask": list(GRIPPER_MASK)}
            model = build_model(cfg, norm_stats={"identity": {"action": identity}}, seed=0)
            model.checkpoint_meta = {"path": None, "weights_sha256": "random-init-seed0", "config": {}}
            return model
        path = Path(checkpoint).expanduser()
        if is_checkpoint_dir(path):
            return load_checkpoint(path, strict=strict)[0]
        if is_upstream_checkpoint(path):
            tokenizer_dir = tokenizer_dir or os.environ.get("INSTRUCTVLA_EAGLE_DIR")
            return load_upstream(path, tokenizer_dir, strict=strict, **overrides)[0]
        raise ValueError(f"{path}: not an InstructVLA checkpoint (our directory format or <run>/checkpoints/*.pt)")

    # ----- Policy interface -------------------------------------------------------------------
    @property
    def camera_keys(self) -> tuple[str, ...]:
        return CAMERA_KEYS[: self.model.cfg.num_images]

    def spec(self) -> PolicySpec:
        cfg = self.model.cfg
        keys = self.camera_keys + (("state",) if cfg.use_state else ()) + ("instruction",)
        return PolicySpec(
            action_dim=cfg.action_dim,
            chunk_size=cfg.chunk_size,
            gripper="open_positive",
            gripper_range=(0.0, 1.0),
            observation_keys=keys,
            name=self.name,
            extra={
                "stage": cfg.stage,
                "preset": cfg.preset,
                "image_preset": self.preset.name,
                "unnorm_key": self.unnorm_key,
                "use_generate": self.use_generate,
                "num_inference_steps": cfg.num_inference_steps,
                "dtype": self.dtype_name,
            },
        )

    def fingerprint(self) -> str:
        """Hash of the weights file(s), the model config and the adapter options that change actions."""
        if self._fingerprint is None:
            meta = getattr(self.model, "checkpoint_meta", {}) or {}
            weights = meta.get("weights_sha256")
            if weights is None and meta.get("path"):
                from vlaeval.models.instructvla.checkpoint import file_sha256

                weights = file_sha256(meta["path"])
            payload = {
                "weights": weights,
                "config": self.model.cfg.to_dict(),
                "norm_stats": self.model.norm_stats,
                "adapter": {k: v for k, v in self.spec().extra.items() if k not in ("stage", "preset")},
                "lowercase": self.lowercase,
                "seed": self.seed,
            }
            digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
            self._fingerprint = f"instructvla:{digest[:20]}"
        return self._fingerprint

    def resolve_unnorm_key(self, info: dict[str, Any]) -> str:
        from vlaeval.models.instructvla.normalization import select_key

        stats = self.model.norm_stats
        if self.unnorm_key is not None:
            return select_key(stats, self.unnorm_key)
        suite = str(info.get("suite", "")).replace("-", "_")
        suite = SUITE_ALIASES.get(suite, suite)
        for candidate in (f"{suite}_no_noops", suite):
            if suite and candidate in stats:
                return candidate
        return select_key(stats, None)

    def start_episode(self, instruction: str, info: dict[str, Any]) -> EpisodeState:
        import torch

        from vlaeval.models.instructvla.generation import ReasoningState

        entropy = [self.seed, int(info.get("seed", 0)), int(info.get("task_index", 0)), int(info.get("episode_index", 0))]
        seed = int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] % (2**63))
        return EpisodeState(
            instruction=instruction,
            unnorm_key=self.resolve_unnorm_key(info),
            generator=torch.Generator().manual_seed(seed),
            reasoning=ReasoningState(),
            info=dict(info),
        )

    def _frames(self, obs: Observation) -> list[np.ndarray]:
        frames = []
        for slot in self.camera_keys:
            name = next((alt for alt in slot.split("|") if alt in obs), None)
            if name is None:
                raise KeyError(f"observation lacks {slot!r} (has {sorted(obs)})")
            frames.append(self.preset(np.asarray(obs[name])))
        return frames

    def _instruction(self, state: EpisodeState, obs: Observation) -> str:
        text = str(obs.get("instruction") or state.instruction)
        return text.lower() if self.lowercase else text

    def act(self, state: EpisodeState, obs: Observation) -> np.ndarray:
        return self.act_batch([state], [obs])[0]

    def act_batch(self, states: list[EpisodeState], observations: list[Observation]) -> list[np.ndarray]:
        """One batched VLM + expert pass per statistics key; reasoning (if on) runs per episode first."""
        from vlaeval.models.instructvla.generation import next_response

        frames = [self._frames(o) for o in observations]
        texts = [self._instruction(s, o) for s, o in zip(states, observations)]
        responses: list[str | None] = [None] * len(states)
        if self.use_generate:
            responses = [next_response(self.model, s.reasoning, f, t) for s, f, t in zip(states, frames, texts)]
        results: list[np.ndarray | None] = [None] * len(states)
        for key in dict.fromkeys(s.unnorm_key for s in states):
            rows = [i for i, s in enumerate(states) if s.unnorm_key == key]
            proprio = [np.asarray(observations[i]["state"], dtype=np.float64) for i in rows] if self.model.cfg.use_state else None
            prediction = self.model.predict_action(
                [frames[i] for i in rows],
                [texts[i] for i in rows],
                unnorm_key=key,
                generators=[states[i].generator for i in rows],
                responses=[responses[i] for i in rows],
                proprio=proprio,
            )
            for row, actions in zip(rows, prediction.actions):
                results[row] = np.asarray(actions, dtype=np.float64)
        for state, response in zip(states, responses):
            if response is not None:
                state.info["last_response"] = response
        return [r for r in results if r is not None]

    def close(self) -> None:
        self.model = None


class InstructVLACheckpointLoader:
    """``vlaeval.checkpoints`` entry: claims our checkpoint directories and upstream ``.pt`` runs."""

    def can_load(self, path: str | Path) -> bool:
        from vlaeval.models.instructvla.checkpoint import is_checkpoint_dir, is_upstream_checkpoint

        path = Path(path)
        if is_checkpoint_dir(path):
            return True
        if not is_upstream_checkpoint(path):
            return False
        run = path.parent.parent
        try:
            config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return "stage" in config and (run / "dataset_statistics.json").is_file()

    def load(self, path: str | Path, **kwargs: Any) -> InstructVLAPolicy:
        return InstructVLAPolicy(checkpoint=path, **kwargs)


checkpoint_loader = InstructVLACheckpointLoader()

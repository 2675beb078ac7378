"""Checkpoint I/O: our directory format, the upstream ``.pt`` layout, and a load report.

Our format (a directory)::

    config.json        {"format": "vlaeval-instructvla", "format_version": 1, "model_config": {...},
                        "git_sha": ..., "created_at": ..., "weights_sha256": {"model.safetensors": ...},
                        "meta": {...}}
    norm_stats.json    upstream dataset_statistics.json layout
    model.safetensors  "<component>.<key>" for component in vision_model, mlp1, language_model, action_model
    tokenizer/         the tokenizer, meta tokens included

Upstream layout: ``<run>/checkpoints/<name>.pt`` = ``{"model": {"action_model", "vision_model",
"language_model", "mlp1"}}`` plus ``<run>/config.json`` (``stage``, ``num_of_meta_query``) and
``<run>/dataset_statistics.json``; the tokenizer comes from the Eagle2 directory.

Loading never leaves weights silently random: every missing, unexpected or mis-shaped key is
reported and, unless ``strict=False``, raises :class:`CheckpointError` with one line.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from vlaeval.models.instructvla.config import InstructVLAConfig, get_config
from vlaeval.models.instructvla.vlm import SIGLIP_PREFIX, align_prefix

FORMAT = "vlaeval-instructvla"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
STATS_FILE = "norm_stats.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
COMPONENTS = ("vision_model", "mlp1", "language_model", "action_model")


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message is one line."""


@dataclass
class LoadReport:
    missing: dict[str, list[str]] = field(default_factory=dict)
    unexpected: dict[str, list[str]] = field(default_factory=dict)
    mismatched: dict[str, list[str]] = field(default_factory=dict)
    ignored: dict[str, list[str]] = field(default_factory=dict)
    """Known-harmless keys that were dropped (e.g. an unused SigLIP pooling head)."""

    @property
    def ok(self) -> bool:
        return not any(self.missing.values()) and not any(self.unexpected.values()) and not any(self.mismatched.values())

    def add(self, kind: str, component: str, keys: list[str]) -> None:
        if keys:
            getattr(self, kind).setdefault(component, []).extend(keys)

    def summary(self, limit: int = 3) -> str:
        """One line, e.g. ``language_model: 2 missing (a, b); action_model: 1 unexpected (c)``."""
        parts = []
        for kind in ("missing", "unexpected", "mismatched", "ignored"):
            for component, keys in getattr(self, kind).items():
                if keys:
                    shown = ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")
                    parts.append(f"{component}: {len(keys)} {kind} ({shown})")
        return "; ".join(parts) or "all keys matched"


# ----- helpers --------------------------------------------------------------------------
def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing {what}") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable {what} ({str(exc).splitlines()[0]})") from None


def _fit(
    component: str,
    own: dict[str, torch.Tensor],
    incoming: dict[str, torch.Tensor],
    report: LoadReport,
    ignore: Callable[[str], bool] = lambda key: False,
) -> dict[str, torch.Tensor]:
    """Keys of ``incoming`` that fit ``own`` by name and shape; the rest goes into the report."""
    ignored = sorted(k for k in incoming if k not in own and ignore(k))
    report.add("ignored", component, ignored)
    report.add("unexpected", component, sorted(k for k in incoming if k not in own and k not in ignored))
    report.add("missing", component, sorted(k for k in own if k not in incoming))
    fits: dict[str, torch.Tensor] = {}
    for key, value in incoming.items():
        if key not in own:
            continue
        if tuple(value.shape) != tuple(own[key].shape):
            report.add("mismatched", component, [f"{key} {tuple(value.shape)}!={tuple(own[key].shape)}"])
        else:
            fits[key] = value
    return fits


def _ignorable(component: str) -> Callable[[str], bool]:
    patterns = {
        "vision_model": r"^(vision_model\.)?head\.",  # SigLIP pooling head, unused by Eagle
        "action_model": r"(rotary_emb\.inv_freq$|^VideoGPT\.(lm_head|model\.embed_tokens)\.)",
        "language_model": r"rotary_emb\.inv_freq$",
        "mlp1": r"$^",
    }
    regex = re.compile(patterns[component])
    return lambda key: bool(regex.search(key))


# ----- loading component state into a model -----------------------------------------------
def load_parts(model: Any, parts: dict[str, dict[str, torch.Tensor]], report: LoadReport | None = None) -> LoadReport:
    """Load canonical component state dicts into ``model``, reporting every mismatch."""
    report = report or LoadReport()
    for component in parts:
        if component not in COMPONENTS:
            report.add("unexpected", component, ["<whole component>"])
    vlm = model.vlm
    vision_own = vlm.vision_model.state_dict()
    canonical = vlm.canonical_state()["vision_model"]  # reports use the HF-hub "vision_model." names
    vision_in = align_prefix(parts.get("vision_model", {}), set(canonical), SIGLIP_PREFIX)
    vision_fit = _fit("vision_model", canonical, vision_in, report, _ignorable("vision_model"))
    vlm.vision_model.load_state_dict(align_prefix(vision_fit, set(vision_own), SIGLIP_PREFIX), strict=False)
    mlp1 = _fit("mlp1", vlm.mlp1.state_dict(), parts.get("mlp1", {}), report, _ignorable("mlp1"))
    vlm.mlp1.load_state_dict(mlp1, strict=False)
    lm = vlm.language_model
    lm_in = _drop_tied_head(lm, dict(parts.get("language_model", {})), report)
    lm.load_canonical(_fit("language_model", lm.canonical_state_dict(), lm_in, report, _ignorable("language_model")))
    action = model.action_model
    action.load_state_dict(_fit("action_model", action.state_dict(), parts.get("action_model", {}), report, _ignorable("action_model")), strict=False)
    return report


def _drop_tied_head(lm: Any, state: dict[str, torch.Tensor], report: LoadReport) -> dict[str, torch.Tensor]:
    head = state.get("lm_head.weight")
    if head is None or not lm.tied:
        return state
    embed = state.get("model.embed_tokens.weight")
    if embed is not None and (embed.shape != head.shape or not torch.equal(embed, head)):
        report.add("mismatched", "language_model", ["lm_head.weight differs from embed_tokens but the config ties them"])
    else:
        report.add("ignored", "language_model", ["lm_head.weight (tied)"])
    state.pop("lm_head.weight")
    return state


def load_base_vlm(model: Any, parts: dict[str, dict[str, torch.Tensor]]) -> LoadReport:
    """Initialise the VLM from a base Eagle2 checkpoint (no adapters, no meta tokens yet).

    Embedding rows are copied up to the smaller size (upstream ``resize_token_embeddings``):
    meta-token rows keep their N(0, 0.02) init. LoRA/gate/action weights are expected missing.
    """
    lm_state = dict(parts["language_model"])
    own_rows = model.vlm.language_model.input_embeddings.weight.shape[0]
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        if key in lm_state:
            rows = lm_state[key]
            own = model.vlm.language_model.input_embeddings.weight.detach().clone()
            keep = min(own_rows, rows.shape[0])
            own[:keep] = rows[:keep]
            lm_state[key] = own
    report = LoadReport()
    load_parts(model, {"vision_model": parts["vision_model"], "mlp1": parts["mlp1"], "language_model": lm_state}, report)
    not_adapter = [k for k in report.missing.get("language_model", []) if ".lora_" not in k and not k.startswith("gate.")]
    problems = not_adapter + report.missing.get("vision_model", []) + report.missing.get("mlp1", [])
    problems += sum((report.unexpected.get(c, []) + report.mismatched.get(c, []) for c in ("vision_model", "mlp1", "language_model")), [])
    if problems:
        raise CheckpointError(f"base VLM weights do not fit the config: {', '.join(problems[:5])}")
    return report


# ----- our format -------------------------------------------------------------------------
def flatten_state(model: Any) -> dict[str, torch.Tensor]:
    parts = model.vlm.canonical_state()
    parts["action_model"] = model.action_model.state_dict()
    return {f"{c}.{k}": v.detach().contiguous().cpu() for c, state in parts.items() for k, v in state.items()}


def split_state(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        component, _, rest = key.partition(".")
        parts.setdefault(component, {})[rest] = value
    return parts


def save_checkpoint(model: Any, directory: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` in our format; returns the directory."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    tmp = weights.with_suffix(".tmp")
    save_file(flatten_state(model), str(tmp), metadata={"format": FORMAT})
    tmp.replace(weights)
    (directory / STATS_FILE).write_text(json.dumps(model.norm_stats, indent=1), encoding="utf-8")
    model.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "git_sha": git_sha(),
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weights_sha256": {WEIGHTS_FILE: file_sha256(weights)},
        "meta": meta or {},
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=1), encoding="utf-8")
    return directory


def is_checkpoint_dir(path: str | Path) -> bool:
    config = Path(path) / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def read_weights(file: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; any decoding problem becomes a one-line :class:`CheckpointError`."""
    from safetensors.torch import load_file

    if not file.is_file():
        raise CheckpointError(f"{file}: weights file missing")
    try:
        return load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types for truncated/garbled files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{file}: corrupt checkpoint ({reason})") from None


def load_checkpoint(directory: str | Path, strict: bool = True, verify: bool = True) -> tuple[Any, LoadReport]:
    """Load our format; returns the model (CPU, fp32, eval mode) and the load report."""
    from vlaeval.models.instructvla.model import InstructVLA
    from vlaeval.models.instructvla.tokenizer import load_tokenizer

    directory = Path(directory)
    config = _read_json(directory / CONFIG_FILE, "config.json")
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{directory}: not a {FORMAT} checkpoint")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{directory}: format_version {config['format_version']} is newer than supported ({FORMAT_VERSION})")
    weights = directory / WEIGHTS_FILE
    expected = config.get("weights_sha256", {}).get(WEIGHTS_FILE)
    if verify and expected and weights.is_file() and file_sha256(weights) != expected:
        raise CheckpointError(f"{weights}: corrupt checkpoint (sha256 differs from config.json)")
    state = read_weights(weights)
    try:
        cfg = InstructVLAConfig.from_dict(config["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory}: bad model_config ({exc})") from None
    norm_stats = _read_json(directory / STATS_FILE, "norm_stats.json")
    model = InstructVLA(cfg, load_tokenizer(directory / TOKENIZER_DIR), norm_stats)
    report = load_parts(model, split_state(state))
    _check(report, directory, strict)
    model.checkpoint_meta = {"path": str(directory), "weights_sha256": expected or file_sha256(weights), "config": config}
    return model.eval(), report


def _check(report: LoadReport, source: Path, strict: bool) -> None:
    if report.ok:
        return
    if strict:
        raise CheckpointError(f"{source}: weights do not match the model: {report.summary()}")
    import warnings

    warnings.warn(f"{source}: loaded with mismatches (strict=False): {report.summary()}", stacklevel=3)


# ----- upstream layout ----------------------------------------------------------------------
_WRAPPERS = re.compile(r"(^|\.)(_fsdp_wrapped_module|_checkpoint_wrapped_module|module)\.")
UPSTREAM_EXPERTS = {"default": "action", "0": "action", "1": "language"}
"""peft adapter names -> our experts (stage 1 ``default``; X-LoRA adapters ``0``/``1``)."""


def _unwrap(key: str) -> str:
    return _WRAPPERS.sub(lambda m: m.group(1), key)


def map_upstream_language_model(state: dict[str, torch.Tensor], experts: dict[str, str] | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Upstream PEFT-wrapped LM keys -> canonical keys; also returns the detected stage.

    * stage 2 (X-LoRA): ``base_model.lora_model.model.<hf>`` with ``lora_A.0`` / ``lora_A.1`` and
      ``base_model.internal_xlora_classifier.layers.*`` (the gate);
    * stage 1 (LoRA): ``base_model.model.<hf>`` with ``lora_A.default``;
    * plain (unloaded): HF keys.
    """
    experts = experts or UPSTREAM_EXPERTS
    keys = [_unwrap(k) for k in state]
    if any(k.startswith("base_model.lora_model.") or "internal_xlora_classifier" in k for k in keys):
        stage, prefix = "stage2", "base_model.lora_model.model."
    elif any(k.startswith("base_model.model.") for k in keys):
        stage, prefix = "stage1", "base_model.model."
    else:
        stage, prefix = "plain", ""
    adapter = re.compile(r"\.lora_([AB])\.([^.]+)\.")
    out: dict[str, torch.Tensor] = {}
    for raw_key, value in state.items():
        key = _unwrap(raw_key)
        if key.startswith("base_model.internal_xlora_classifier."):
            key = "gate." + key.removeprefix("base_model.internal_xlora_classifier.")
        else:
            key = key.removeprefix(prefix).replace(".base_layer.", ".")
            key = adapter.sub(lambda m: f".lora_{m.group(1)}.{experts.get(m.group(2), m.group(2))}.", key)
        out[key] = value
    return out, stage


def map_upstream_state(model_state: dict[str, dict[str, torch.Tensor]]) -> tuple[dict[str, dict[str, torch.Tensor]], str]:
    """``torch.load(pt)["model"]`` -> canonical component dicts and the stage found in the LM keys."""
    parts = {name: {_unwrap(k): v for k, v in state.items()} for name, state in model_state.items() if name != "language_model"}
    language, stage = map_upstream_language_model(model_state.get("language_model", {}))
    parts["language_model"] = language
    return parts, stage


def is_upstream_checkpoint(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix == ".pt" and path.parent.name == "checkpoints" and (path.parent.parent / CONFIG_FILE).is_file()


def _upstream_config(parts: dict[str, dict[str, torch.Tensor]], run_config: dict[str, Any], stage: str, base: str, overrides: dict[str, Any]) -> InstructVLAConfig:
    action = parts.get("action_model", {})
    head = action.get("action_head.6.weight")
    num_meta = int(run_config.get("num_of_meta_query", 64))
    cfg = get_config(base, stage=stage, num_meta_queries=num_meta, use_state=any(k.startswith("state_embed.") for k in action))
    if head is not None:
        cfg = cfg.replace(chunk_size=head.shape[0] // cfg.action_dim)
    embed = parts["language_model"].get("model.embed_tokens.weight")
    if embed is not None:
        import dataclasses

        cfg = cfg.replace(llm=dataclasses.replace(cfg.llm, vocab_size=embed.shape[0]))
    return cfg.replace(**overrides)


def load_upstream(
    path: str | Path,
    tokenizer_dir: str | Path | None,
    strict: bool = True,
    base: str = "base",
    **overrides: Any,
) -> tuple[Any, LoadReport]:
    """Load an upstream ``<run>/checkpoints/*.pt`` with the Eagle2 tokenizer from ``tokenizer_dir``."""
    from vlaeval.models.instructvla.model import InstructVLA
    from vlaeval.models.instructvla.tokenizer import load_tokenizer

    path = Path(path)
    run_dir = path.parent.parent
    run_config = _read_json(run_dir / CONFIG_FILE, "upstream run config.json")
    if "stage" not in run_config:
        raise CheckpointError(f"{run_dir / CONFIG_FILE}: missing required key 'stage'")
    norm_stats = _read_json(run_dir / "dataset_statistics.json", "dataset_statistics.json")
    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt checkpoint ({reason})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise CheckpointError(f"{path}: not an InstructVLA checkpoint (no 'model' dict)")
    parts, stage = map_upstream_state(raw["model"])
    if stage == "plain":
        stage = run_config["stage"]
    if tokenizer_dir is None:
        raise CheckpointError(f"{path}: upstream checkpoints need the Eagle2 tokenizer directory (pass tokenizer_dir / eagle_dir)")
    overrides.setdefault("num_images", 2 if any(k.startswith("libero") for k in norm_stats) else 1)
    cfg = _upstream_config(parts, run_config, stage, base, overrides)
    model = InstructVLA(cfg, load_tokenizer(tokenizer_dir), norm_stats)
    report = load_parts(model, parts)
    _check(report, path, strict)
    model.checkpoint_meta = {"path": str(path), "upstream": True, "config": {"run_config": run_config, "model_config": cfg.to_dict()}}
    return model.eval(), report

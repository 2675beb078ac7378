"""Turn ``--model`` into something that acts.

``--model`` accepts:

* a registered adapter name (``random``, ``zero``, ``replay``, third-party names),
* a checkpoint path (``ckpt.pt`` or a Hugging Face-style directory), loaded by the
  first checkpoint loader (entry-point group ``vlaeval.checkpoints``) that claims it,
* a running policy server: ``ws://host:port`` (vlaeval protocol) or
  ``openpi://host:port`` (openpi's protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from vlaeval.harness import registry
from vlaeval.harness.backend import load_object
from vlaeval.harness.policy import Policy, PolicySpec

REMOTE_SCHEMES = ("ws://", "wss://", "openpi://")


class ModelError(ValueError):
    """``--model`` cannot be turned into a policy."""


@dataclass
class ModelSource:
    name: str
    policy: Any
    """A :class:`Policy` (robot suites) or a :class:`~vlaeval.harness.text.TextModel`."""
    url: str | None = None
    """Set when the policy already lives behind a server the workers can reach."""

    @property
    def spec(self) -> PolicySpec:
        if not isinstance(self.policy, Policy):
            raise ModelError(f"{self.name} answers text; it cannot act in a robot suite")
        return self.policy.spec()

    @property
    def fingerprint(self) -> str:
        return self.policy.fingerprint()


def resolve_model(model: str, model_args: dict[str, Any] | None = None) -> ModelSource:
    args = dict(model_args or {})
    if model.startswith(REMOTE_SCHEMES):
        adapter = "openpi" if model.startswith("openpi://") else "remote"
        return ModelSource(name=model, policy=registry.adapters.create(adapter, url=model, **args), url=model)
    path = Path(model).expanduser()
    if path.exists():
        return ModelSource(name=str(path), policy=load_checkpoint(path, args))
    if "/" in model or model.endswith((".pt", ".pth", ".safetensors", ".ckpt")):
        raise ModelError(f"checkpoint not found: {model}")
    try:
        policy = registry.adapters.create(model, **args)
    except TypeError as exc:
        raise ModelError(f"bad --model-arg for adapter {model!r}: {exc}") from None
    return ModelSource(name=model, policy=policy)


def load_checkpoint(path: Path, args: dict[str, Any]) -> Policy:
    """Ask each registered checkpoint loader whether it recognises ``path``."""
    loaders = {ep.name: ep.value for ep in entry_points(group="vlaeval.checkpoints")}
    for name, target in sorted(loaders.items()):
        loader = load_object(target)
        if loader.can_load(path):
            return loader.load(path, **args)
    known = ", ".join(sorted(loaders)) or "none installed"
    raise ModelError(f"no checkpoint loader recognises {path} (loaders: {known})")

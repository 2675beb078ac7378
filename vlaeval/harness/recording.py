"""What an episode can leave behind besides its result: an mp4 and a demonstration.

Recorders watch the episode loop: ``observe`` after reset and after every step,
``act`` with each executed action (in the suite's own convention). File names come
from the episode key (never from the outcome) and existing files are never overwritten.
Demonstrations are written as a plain ``.npz`` (no pickle) by the sim worker; the
driver converts them into a LeRobot dataset (:mod:`vlaeval.harness.demos`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Recording:
    """Where one episode's recordings go (empty = not recorded)."""

    video_path: str | None = None
    demo_path: str | None = None
    fps: int = 20

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Recording":
        return cls(**(data or {}))


class Recorder(Protocol):
    def observe(self, obs: dict[str, Any], frame: np.ndarray | None) -> None: ...

    def act(self, action: np.ndarray) -> None: ...

    def write(self) -> str | None: ...


def unique_path(path: Path) -> Path:
    """``path`` itself, or ``stem-1.ext``, ``stem-2.ext``... if it already exists."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


class VideoRecorder:
    """The policy's view (``backend.frame``) as an mp4, one frame per observation."""

    def __init__(self, path: str | os.PathLike[str], fps: int = 20, max_frames: int = 2000):
        self.path = Path(path)
        self.fps = fps
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []

    def observe(self, obs: dict[str, Any], frame: np.ndarray | None) -> None:
        if frame is not None and len(self.frames) < self.max_frames:
            self.frames.append(np.ascontiguousarray(frame, dtype=np.uint8))

    def act(self, action: np.ndarray) -> None:
        pass

    def write(self) -> str | None:
        if not self.frames:
            return None
        import imageio.v2 as imageio  # lazy: only the envs that record videos need it

        target = unique_path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial.mp4")
        with imageio.get_writer(partial, fps=self.fps, codec="libx264", macro_block_size=1) as writer:
            for frame in self.frames:
                writer.append_data(frame)
        os.replace(partial, target)
        return str(target)


class DemoRecorder:
    """Per step: every image (HWC uint8) and ``state`` of the observation, and the action taken.

    Written as ``.npz`` with one array per key, ``T`` rows each: observation ``t`` is the
    one the action ``t`` was chosen from.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.observations: list[dict[str, np.ndarray]] = []
        self.actions: list[np.ndarray] = []

    def observe(self, obs: dict[str, Any], frame: np.ndarray | None) -> None:
        kept = {
            key: np.array(value)
            for key, value in obs.items()
            if isinstance(value, np.ndarray) and (key == "state" or (value.ndim == 3 and value.dtype == np.uint8))
        }
        self.observations.append(kept)

    def act(self, action: np.ndarray) -> None:
        self.actions.append(np.asarray(action, dtype=np.float32))

    def write(self) -> str | None:
        steps = len(self.actions)
        if steps == 0:
            return None
        arrays = {f"observation.{k}": np.stack([o[k] for o in self.observations[:steps]])
                  for k in self.observations[0]}
        arrays["action"] = np.stack(self.actions)
        target = unique_path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial.npz")
        np.savez(partial, **arrays)
        os.replace(partial, target)
        return str(target)


def recorders_for(recording: Recording) -> dict[str, Recorder]:
    out: dict[str, Recorder] = {}
    if recording.video_path:
        out["video"] = VideoRecorder(recording.video_path, fps=recording.fps)
    if recording.demo_path:
        out["demo"] = DemoRecorder(recording.demo_path)
    return out

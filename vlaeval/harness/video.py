"""Episode videos: frames collected during an episode, written once as mp4.

File names come from the episode key and attempt (never from the outcome), and an
existing file is never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VideoRecorder:
    def __init__(self, path: str | os.PathLike[str], fps: int = 20, max_frames: int = 2000):
        self.path = Path(path)
        self.fps = fps
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []

    def __call__(self, frame: np.ndarray) -> None:
        if len(self.frames) < self.max_frames:
            self.frames.append(np.ascontiguousarray(frame, dtype=np.uint8))

    def write(self) -> str | None:
        """Write the mp4 and return its path (``None`` when there are no frames)."""
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


def unique_path(path: Path) -> Path:
    """``path`` itself, or ``stem-1.ext``, ``stem-2.ext``... if it already exists."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate

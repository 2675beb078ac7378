"""Demonstrations as a LeRobot dataset, written with LeRobot's own writer.

``vlaeval run --record-demos DIR`` makes each sim worker leave a raw ``.npz`` per
episode (:class:`~vlaeval.harness.recording.DemoRecorder`); the driver hands every
finished one to :class:`DemoWriter`, which appends it to the LeRobot dataset (format
v3.0) rooted at ``DIR`` through ``LeRobotDataset`` from the ``lerobot-dataset``
package (module ``ledataset``):

* features ``observation.images.<camera>`` (``image``: HWC uint8, stored as PNG in
  the parquet files), ``observation.state``, ``action``, ``next.success`` and
  ``next.done``, and the instruction as the frame's ``task``; ``fps`` 20.
  Frame ``t`` holds observation ``t`` and the action chosen from it; ``next.done``
  is set on the last frame, ``next.success`` on the last frame of a successful
  episode.
* Episodes are appended: an existing dataset is reopened (LeRobot's resume path),
  every episode is finalized on disk before the next one starts, and the key of each
  added episode is kept in ``DIR/vlaeval_episodes.jsonl``; an episode whose key is
  already there is skipped, so re-running a run (or another run of the same
  episodes) never duplicates it.
* :meth:`DemoWriter.add_episode` is called from executor threads: it only queues the
  episode; one writer thread converts them in order, and :meth:`DemoWriter.close`
  waits for it.

``lerobot-dataset`` imports ``torchvision`` at module level but, for image (not
video) features, only uses ``transforms.ToTensor`` when reading. The harness does
not install torchvision, so :func:`import_lerobot` provides that one class through a
stand-in module during the import (and removes it from ``sys.modules`` afterwards)
when the real package is absent.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import json
import logging
import os
import queue
import shutil
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np

from vlaeval.harness.specs import EpisodeResult, EpisodeSpec

log = logging.getLogger(__name__)

FPS = 20
SIDECAR = "vlaeval_episodes.jsonl"
STATE_NAMES = {8: ["eef_x", "eef_y", "eef_z", "eef_axis_angle_x", "eef_axis_angle_y", "eef_axis_angle_z",
                   "gripper_qpos_left", "gripper_qpos_right"]}
ACTION_NAMES = {7: ["dx", "dy", "dz", "drx", "dry", "drz", "gripper"]}


class DemoError(RuntimeError):
    """The dataset directory cannot take this episode (wrong features, not a dataset...)."""


def _torchvision_stand_in() -> types.ModuleType:
    """The part of torchvision that ``ledataset`` touches for image datasets."""
    import torch

    class ToTensor:
        """PIL image / HWC uint8 array -> CHW float32 tensor in [0, 1] (torchvision semantics)."""

        def __call__(self, pic: Any) -> "torch.Tensor":
            array = np.array(pic, copy=True)
            if array.ndim == 2:
                array = array[:, :, None]
            tensor = torch.from_numpy(array).permute(2, 0, 1).contiguous()
            return tensor.float().div(255) if tensor.dtype == torch.uint8 else tensor.float()

    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    root.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    transforms.__spec__ = importlib.machinery.ModuleSpec("torchvision.transforms", None)
    transforms.ToTensor = ToTensor  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]

    def _unavailable(*_: Any, **__: Any) -> None:
        raise RuntimeError("video decoding needs torchvision or torchcodec; vlaeval writes image datasets")

    root.set_video_backend = _unavailable  # type: ignore[attr-defined]
    root.__vlaeval_stand_in__ = True  # type: ignore[attr-defined]
    return root


def import_lerobot() -> Any:
    """``ledataset.datasets.lerobot_dataset`` (imported with the torchvision stand-in if needed)."""
    if "ledataset.datasets.lerobot_dataset" in sys.modules:
        return sys.modules["ledataset.datasets.lerobot_dataset"]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local dataset must never reach for the Hub
    try:
        import torchvision  # noqa: F401
    except ImportError:
        # Libraries that probe for torchvision at import time must see it missing.
        import datasets  # noqa: F401

        stand_in = _torchvision_stand_in()
        sys.modules["torchvision"] = stand_in
        sys.modules["torchvision.transforms"] = stand_in.transforms
        try:
            from ledataset.datasets import lerobot_dataset
        finally:
            if sys.modules.get("torchvision") is stand_in:
                sys.modules.pop("torchvision", None)
                sys.modules.pop("torchvision.transforms", None)
        return lerobot_dataset
    from ledataset.datasets import lerobot_dataset

    return lerobot_dataset


def load_dataset(root: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Open the dataset at ``root`` with ``LeRobotDataset`` (for tests and users)."""
    module = import_lerobot()
    root = Path(root)
    kwargs.setdefault("video_backend", "pyav")  # image datasets decode nothing; avoids a torchcodec probe
    with _quiet():
        return module.LeRobotDataset(repo_id=f"vlaeval/{root.name}", root=root, **kwargs)


@contextlib.contextmanager
def _quiet() -> Any:
    """No progress bars or statistics warnings from ``datasets``/``ledataset`` in the run's output."""
    import warnings

    from datasets.utils import logging as ds_logging

    # ledataset's own SuppressProgressBars turns the bars back on when it exits; keep them off
    ledataset_utils = sys.modules.get("ledataset.utils.utils")
    reenable = getattr(ledataset_utils, "enable_progress_bar", None)
    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    if reenable is not None:
        ledataset_utils.enable_progress_bar = lambda: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        if reenable is not None:
            ledataset_utils.enable_progress_bar = reenable
        if was_enabled:
            ds_logging.enable_progress_bar()


def demo_features(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """LeRobot features for a raw demo ``.npz`` (images, state, action, success/done)."""
    features: dict[str, dict[str, Any]] = {}
    for key, value in sorted(arrays.items()):
        if not key.startswith("observation."):
            continue
        name = key.split(".", 1)[1]
        if value.ndim == 4 and value.dtype == np.uint8:
            features[f"observation.images.{name}"] = {
                "dtype": "image", "shape": tuple(value.shape[1:]), "names": ["height", "width", "channels"],
            }
        elif name == "state" and value.ndim == 2:
            dim = int(value.shape[1])
            features["observation.state"] = {
                "dtype": "float32", "shape": (dim,), "names": STATE_NAMES.get(dim, [f"s{i}" for i in range(dim)]),
            }
    action = arrays["action"]
    dim = int(action.shape[1])
    features["action"] = {"dtype": "float32", "shape": (dim,), "names": ACTION_NAMES.get(dim, [f"a{i}" for i in range(dim)])}
    features["next.success"] = {"dtype": "bool", "shape": (1,), "names": None}
    features["next.done"] = {"dtype": "bool", "shape": (1,), "names": None}
    return features


def episode_frames(arrays: dict[str, np.ndarray], instruction: str, success: bool) -> list[dict[str, Any]]:
    """One LeRobot frame per action of the raw demo."""
    steps = int(arrays["action"].shape[0])
    frames = []
    for t in range(steps):
        frame: dict[str, Any] = {}
        for key, value in arrays.items():
            if not key.startswith("observation."):
                continue
            name = key.split(".", 1)[1]
            if value.ndim == 4 and value.dtype == np.uint8:
                frame[f"observation.images.{name}"] = np.ascontiguousarray(value[t])
            elif name == "state":
                frame["observation.state"] = np.asarray(value[t], dtype=np.float32)
        frame["action"] = np.asarray(arrays["action"][t], dtype=np.float32)
        last = t == steps - 1
        frame["next.done"] = np.array([last], dtype=bool)
        frame["next.success"] = np.array([bool(success and last)], dtype=bool)
        frame["task"] = instruction
        frames.append(frame)
    return frames


def _comparable(features: dict[str, dict[str, Any]]) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in features.items()}


class DemoWriter:
    """Append finished episodes' raw demos to the LeRobot dataset at ``root``."""

    def __init__(self, root: str | os.PathLike[str], suite: str = "", robot_type: str = "panda",
                 fps: int = FPS, background: bool = True):
        self.root = Path(root).expanduser()
        self.suite = suite
        self.repo_id = f"vlaeval/{suite or self.root.name}"
        self.robot_type = robot_type
        self.fps = int(fps)
        self.errors: list[str] = []
        self.added = 0
        self.skipped = 0
        self._lock = threading.Lock()
        self._keys = self._read_sidecar()
        self._queue: queue.Queue[tuple[str, dict[str, Any], dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        import_lerobot()  # fail at start-up, not after the first episode, when the package is missing
        if background:
            self._thread = threading.Thread(target=self._drain, name="vlaeval-demos", daemon=True)
            self._thread.start()

    # -- public -------------------------------------------------------------
    def add_episode(self, npz_path: str | os.PathLike[str], episode: EpisodeSpec, result: EpisodeResult) -> None:
        """Queue one finished episode (thread-safe; returns at once in background mode)."""
        item = (str(npz_path), episode.to_dict(), result.to_dict())
        if self._closed:
            raise RuntimeError("DemoWriter is closed")
        if self._thread is None:
            self._write_one(*item)
        else:
            self._queue.put(item)

    def close(self) -> None:
        """Wait until every queued episode is in the dataset."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        for error in self.errors:
            print(f"warning: demo not added to {self.root}: {error}", file=sys.stderr)

    @property
    def keys(self) -> set[str]:
        with self._lock:
            return set(self._keys)

    # -- internals ----------------------------------------------------------
    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._write_one(*item)

    def _write_one(self, npz_path: str, episode: dict[str, Any], result: dict[str, Any]) -> None:
        key = Path(npz_path).stem
        try:
            with self._lock:
                if key in self._keys:
                    self.skipped += 1
                    return
                self._append(npz_path, key, episode, result)
                self.added += 1
        except Exception as exc:  # one bad episode must not end the run
            log.exception("demo %s not added", npz_path)
            self.errors.append(f"{npz_path}: {type(exc).__name__}: {exc}")

    def _read_sidecar(self) -> set[str]:
        path = self.root / SIDECAR
        keys: set[str] = set()
        if path.exists():
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    keys.add(json.loads(line)["key"])
        return keys

    def _open(self, features: dict[str, dict[str, Any]]) -> Any:
        module = import_lerobot()
        info_path = self.root / "meta" / "info.json"
        if info_path.exists():
            info = json.loads(info_path.read_text())
            if info.get("total_episodes", 0) == 0:
                shutil.rmtree(self.root)  # created, then interrupted before its first episode
            else:
                stored = {k: v for k, v in info["features"].items() if k in features}
                if _comparable(stored) != _comparable(features) or set(features) - set(info["features"]):
                    raise DemoError(
                        f"{self.root} holds features {sorted(info['features'])} that do not match this episode's "
                        f"{sorted(features)}; use another --record-demos directory"
                    )
                return module.LeRobotDataset(repo_id=self.repo_id, root=self.root, video_backend="pyav")
        if self.root.exists():
            if any(self.root.iterdir()):
                raise DemoError(f"{self.root} exists and is not a LeRobot dataset")
            self.root.rmdir()
        return module.LeRobotDataset.create(
            repo_id=self.repo_id, fps=self.fps, features=features, root=self.root,
            robot_type=self.robot_type, use_videos=False, video_backend="pyav",
        )

    def _append(self, npz_path: str, key: str, episode: dict[str, Any], result: dict[str, Any]) -> None:
        with np.load(npz_path) as data:
            arrays = {k: data[k] for k in data.files}
        if "action" not in arrays or len(arrays["action"]) == 0:
            raise DemoError("no actions in the demo")
        features = demo_features(arrays)
        frames = episode_frames(arrays, episode.get("instruction", ""), bool(result.get("success")))
        with _quiet():
            dataset = self._open(features)
            try:
                for frame in frames:
                    dataset.add_frame(frame)
                dataset.save_episode()
                index = dataset.meta.total_episodes - 1
            finally:
                dataset.finalize()
        record = {
            "key": key, "episode_index": index, "frames": len(frames), "success": bool(result.get("success")),
            "status": result.get("status"), "suite": episode.get("suite"), "task_id": episode.get("task_id"),
            "init_state": episode.get("episode_index"), "seed": episode.get("seed"),
        }
        with open(self.root / SIDECAR, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._keys.add(key)

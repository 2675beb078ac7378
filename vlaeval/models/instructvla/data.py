"""Training data: a LeRobot on-disk reader, VLA-IT annotations, prompt sampling, chat data.

LeRobot layout (read with pandas/pyarrow; the ``lerobot`` package is not needed):

* ``meta/info.json``: ``codebase_version`` (``v2.x`` or ``v3.x``), ``fps``, ``features``
  (name -> ``{"dtype": "image"|"video"|"float32"..., "shape"}``), ``data_path`` / ``video_path``
  templates, ``chunks_size``.
* v2.x: one parquet per episode at ``data_path.format(episode_chunk=i // chunks_size,
  episode_index=i)``; ``meta/episodes.jsonl`` and ``meta/tasks.jsonl`` (``task_index``, ``task``).
* v3.x: many episodes per ``data/chunk-*/file-*.parquet``; ``meta/episodes/**.parquet`` and
  ``meta/tasks.parquet`` (task strings as the index, ``task_index`` column).
* Frame columns: ``episode_index``, ``frame_index``, ``index``, ``task_index``, the action and
  state vectors, and image features stored in the parquet as ``{"bytes", "path"}`` structs.
  ``video`` features are decoded with imageio/ffmpeg (whole file, cached) — slow, memory hungry.
"""

from __future__ import annotations

import io
import json
import random
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from PIL import Image, ImageEnhance

from vlaeval.models.instructvla.normalization import BoundsStats, dataset_statistics, normalize, pad_chunk
from vlaeval.models.instructvla.preprocessing import resize
from vlaeval.models.instructvla.prompts import CAPTION_PROMPTS, Turn, action_question, conversation_turns, meta_query_text

IMAGE_DTYPES = ("image", "video")


# ----- LeRobot layout -------------------------------------------------------------------------
@dataclass
class LeRobotLayout:
    root: Path
    info: dict[str, Any]
    episodes: pd.DataFrame
    tasks: dict[int, str]

    @property
    def major_version(self) -> int:
        return int(str(self.info.get("codebase_version", "v2.1")).lstrip("v").split(".")[0])

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return self.info["features"]

    def data_files(self) -> list[Path]:
        if self.major_version >= 3:
            return sorted((self.root / "data").glob("**/*.parquet"))
        chunk = int(self.info.get("chunks_size", 1000))
        template = self.info.get("data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
        return [self.root / template.format(episode_chunk=int(e) // chunk, episode_index=int(e)) for e in self.episodes["episode_index"]]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_layout(root: str | Path) -> LeRobotLayout:
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{root}: not a LeRobot dataset (no meta/info.json)")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    version = int(str(info.get("codebase_version", "v2.1")).lstrip("v").split(".")[0])
    if version >= 3:
        files = sorted((root / "meta" / "episodes").glob("**/*.parquet"))
        episodes = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()
        tasks_frame = pd.read_parquet(root / "meta" / "tasks.parquet")
        tasks = {int(row.task_index): str(task) for task, row in tasks_frame.iterrows()}
    else:
        episodes = pd.DataFrame(_read_jsonl(root / "meta" / "episodes.jsonl"))
        tasks = {int(t["task_index"]): str(t["task"]) for t in _read_jsonl(root / "meta" / "tasks.jsonl")}
    return LeRobotLayout(root, info, episodes.sort_values("episode_index").reset_index(drop=True), tasks)


def _pick(features: dict[str, Any], candidates: tuple[str, ...], what: str, explicit: str | None) -> str | None:
    if explicit is not None:
        if explicit not in features:
            raise KeyError(f"feature {explicit!r} not in dataset (features: {sorted(features)})")
        return explicit
    for name in candidates:
        if name in features:
            return name
    if what == "action":
        raise KeyError(f"no action feature among {candidates} (features: {sorted(features)})")
    return None


def _nbytes(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return int(getattr(value, "nbytes", 0))


class _FileCache:
    """A small LRU of decoded data (parquet image columns, video frames, resized images),
    bounded by an entry count and optionally by bytes."""

    def __init__(self, loader: Callable[[Any], Any], size: int = 4, max_bytes: int | None = None):
        self.loader, self.size, self.max_bytes = loader, size, max_bytes
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.bytes = 0

    def get(self, key: Any) -> Any:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = self.loader(key)
        self.items[key] = value
        self.bytes += _nbytes(value)
        while len(self.items) > 1 and (
            len(self.items) > self.size or (self.max_bytes is not None and self.bytes > self.max_bytes)
        ):
            self.bytes -= _nbytes(self.items.popitem(last=False)[1])
        return value


def decode_image(cell: Any) -> np.ndarray:
    if isinstance(cell, dict):
        cell = cell.get("bytes")
    if isinstance(cell, (bytes, bytearray)):
        return np.asarray(Image.open(io.BytesIO(cell)).convert("RGB"))
    array = np.asarray(cell)
    if array.ndim == 3 and array.shape[0] == 3:  # CHW
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).astype(np.uint8) if array.max() <= 1.0 else array.astype(np.uint8)
    return array


def _read_video(path: Path) -> np.ndarray:
    import imageio.v2 as imageio

    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        return np.stack([np.asarray(frame) for frame in reader])


def gripper_transform(kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """``libero``: raw -1 open / +1 close -> 1 open / 0 close (upstream ``1 - clip(a, 0, 1)``)."""
    if kind == "none":
        return lambda actions: actions
    if kind == "libero":
        def libero(actions: np.ndarray) -> np.ndarray:
            out = actions.copy()
            out[:, -1] = 1.0 - np.clip(out[:, -1], 0.0, 1.0)
            return out

        return libero
    raise ValueError(f"unknown gripper transform {kind!r} (expected none or libero)")


class LeRobotFrames:
    """Frame-level access to a LeRobot dataset: action chunks, state, images, instruction."""

    def __init__(
        self,
        root: str | Path,
        chunk_size: int,
        num_images: int = 1,
        image_keys: tuple[str, ...] | None = None,
        action_key: str | None = None,
        state_key: str | None = None,
        gripper: str = "none",
        name: str | None = None,
    ):
        self.layout = read_layout(root)
        features = self.layout.features
        self.name = name or self.layout.root.name
        self.chunk_size = chunk_size
        self.action_key = _pick(features, ("action", "actions"), "action", action_key)
        self.state_key = _pick(features, ("observation.state", "state"), "state", state_key)
        keys = image_keys or tuple(k for k, f in features.items() if f.get("dtype") in IMAGE_DTYPES)
        if len(keys) < num_images:
            raise KeyError(f"{root}: needs {num_images} image feature(s), found {list(keys)}")
        self.image_keys = tuple(keys[:num_images])
        self._load_index(gripper_transform(gripper))
        self._images = _FileCache(self._read_image_columns)
        self._videos = _FileCache(_read_video, size=2)

    def _load_index(self, transform: Callable[[np.ndarray], np.ndarray]) -> None:
        columns = ["episode_index", "frame_index", "task_index", self.action_key] + ([self.state_key] if self.state_key else [])
        frames = []
        for file_id, path in enumerate(self.layout.data_files()):
            table = pq.read_table(path, columns=columns).to_pandas()
            table["_file"] = file_id
            table["_row"] = np.arange(len(table))
            frames.append(table)
        index = pd.concat(frames, ignore_index=True).sort_values(["episode_index", "frame_index"], kind="stable")
        self.index = index.reset_index(drop=True)
        self.files = self.layout.data_files()
        self.actions = transform(np.stack(self.index[self.action_key].to_numpy()).astype(np.float64))
        self.states = np.stack(self.index[self.state_key].to_numpy()).astype(np.float64) if self.state_key else None
        episodes = self.index["episode_index"].to_numpy()
        starts = np.r_[0, np.flatnonzero(np.diff(episodes)) + 1]
        ends = np.r_[starts[1:], len(episodes)]
        self.episode_end = np.repeat(ends, ends - starts)
        self.num_episodes = len(starts)

    def __len__(self) -> int:
        return len(self.index)

    def _read_image_columns(self, file_id: int) -> Any:
        keys = [k for k in self.image_keys if self.layout.features[k]["dtype"] == "image"]
        return pq.read_table(self.files[file_id], columns=keys)

    def _video_frame(self, key: str, row: pd.Series) -> np.ndarray:
        episode = self.layout.episodes.set_index("episode_index").loc[int(row["episode_index"])]
        chunk = int(self.layout.info.get("chunks_size", 1000))
        template = self.layout.info["video_path"]
        if self.layout.major_version >= 3:
            path = template.format(video_key=key, chunk_index=int(episode[f"videos/{key}/chunk_index"]), file_index=int(episode[f"videos/{key}/file_index"]))
            offset = float(episode[f"videos/{key}/from_timestamp"])
        else:
            path = template.format(video_key=key, episode_chunk=int(row["episode_index"]) // chunk, episode_index=int(row["episode_index"]))
            offset = 0.0
        frames = self._videos.get(self.layout.root / path)
        position = int(round(offset * float(self.layout.info["fps"]))) + int(row["frame_index"])
        return frames[min(position, len(frames) - 1)]

    def images(self, i: int) -> list[np.ndarray]:
        row = self.index.iloc[i]
        out = []
        for key in self.image_keys:
            if self.layout.features[key]["dtype"] == "video":
                out.append(self._video_frame(key, row))
            else:
                out.append(decode_image(self._images.get(int(row["_file"])).column(key)[int(row["_row"])].as_py()))
        return out

    def chunk(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw actions ``i .. i+H-1`` within the episode and the validity mask (False past the end)."""
        steps = i + np.arange(self.chunk_size)
        valid = steps < self.episode_end[i]
        return self.actions[np.minimum(steps, self.episode_end[i] - 1)], valid

    def instruction(self, i: int) -> str:
        return self.layout.tasks.get(int(self.index.iloc[i]["task_index"]), "")

    def episode_key(self, i: int) -> str:
        """Join key for VLA-IT annotations: ``file_path/episode_id`` from episode metadata, else the index."""
        episode = int(self.index.iloc[i]["episode_index"])
        meta = self.layout.episodes
        if {"file_path", "episode_id"} <= set(meta.columns):
            row = meta.loc[meta["episode_index"] == episode].iloc[0]
            return f"{row['file_path']}/{row['episode_id']}"
        return str(episode)

    def statistics(self) -> dict[str, Any]:
        return dataset_statistics(self.actions, self.states, self.num_episodes)


# ----- VLA-IT annotations and prompt sampling ------------------------------------------------------
class VLAITAnnotations:
    """``{file_path: {episode_id: {"features": {"move_primitive": [...]}, "alt_instruction": {...}}}}``.

    A flat ``{episode_key: record}`` file (keys = LeRobot episode indices) is accepted too.
    """

    def __init__(self, records: dict[str, dict[str, Any]]):
        self.records = records

    @classmethod
    def from_file(cls, path: str | Path) -> "VLAITAnnotations":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        flat: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if isinstance(value, dict) and ({"features", "alt_instruction"} & set(value)):
                flat[str(key)] = value
            else:
                for episode_id, record in value.items():
                    flat[f"{key}/{episode_id}"] = record
        return cls(flat)

    def lookup(self, episode_key: str, frame_index: int) -> tuple[str | None, dict[str, Any] | None]:
        record = self.records.get(episode_key)
        if record is None:
            return None, None
        primitives = record.get("features", {}).get("move_primitive") or []
        primitive = primitives[frame_index] if frame_index < len(primitives) else None
        return primitive, record.get("alt_instruction")


@dataclass
class PromptSampler:
    """Upstream prompt mixture (§3.6); ``keep_none_primitive`` reproduces the literal "None" bug."""

    stage: str
    system: str
    num_meta: int
    primitive_prob: float = 0.2
    keep_none_primitive: bool = False

    def __call__(self, instruction: str, primitive: str | None, alt: dict[str, Any] | None, rng: random.Random) -> list[Turn]:
        tokens = meta_query_text(self.num_meta)
        if self.stage == "stage2":
            turns = self._instruction_turns(instruction, alt, rng, tokens)
            if turns is not None:
                return turns
        p = rng.random()
        if p < self.primitive_prob and (primitive is not None or (self.keep_none_primitive and self.stage == "stage2")):
            user, answer = action_question(instruction, "primitive"), f"{primitive} {tokens}"
        else:
            user, answer = action_question(instruction), tokens
        return [Turn("system", self.system), Turn("user", user, image=True), Turn("assistant", answer)]

    def _instruction_turns(self, instruction: str, alt: dict[str, Any] | None, rng: random.Random, tokens: str) -> list[Turn] | None:
        u = rng.random()
        if not alt:
            return None
        if 0.4 <= u < 0.6 and "Caption" in alt:
            pairs = [{"question": rng.choice(CAPTION_PROMPTS), "answer": alt["Caption"]}] + list(alt.get("QA") or [])
            qa = rng.choice(pairs)
            return [
                Turn("system", self.system),
                Turn("user", qa["question"], image=True),
                Turn("assistant", qa["answer"]),
                Turn("user", action_question(instruction)),
                Turn("assistant", tokens),
            ]
        kind = "CC" if 0.6 <= u < 0.8 else "CR" if u >= 0.8 else None
        if kind and alt.get(kind):
            qa = rng.choice(alt[kind])
            return [
                Turn("system", self.system),
                Turn("user", action_question(qa["question"], "reasoning"), image=True),
                Turn("assistant", f"{qa['answer']} {tokens}"),
            ]
        return None


# ----- image augmentation (upstream image_aug, PIL approximations of the TF ops) --------------------
def augment(image: np.ndarray, rng: random.Random) -> np.ndarray:
    """random_resized_crop(scale 0.9, ratio 1) -> brightness 0.2 -> contrast/saturation [0.8, 1.2] -> hue 0.05."""
    height, width = image.shape[:2]
    side_h, side_w = int(round(height * 0.9**0.5)), int(round(width * 0.9**0.5))
    top, left = rng.randint(0, height - side_h), rng.randint(0, width - side_w)
    pil = Image.fromarray(np.ascontiguousarray(image[top : top + side_h, left : left + side_w])).resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(pil).astype(np.float32) + rng.uniform(-0.2, 0.2) * 255.0
    pil = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    pil = ImageEnhance.Contrast(pil).enhance(rng.uniform(0.8, 1.2))
    pil = ImageEnhance.Color(pil).enhance(rng.uniform(0.8, 1.2))
    hsv = np.asarray(pil.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(round(rng.uniform(-0.05, 0.05) * 255))) % 256
    return np.asarray(Image.fromarray(hsv, mode="HSV").convert("RGB"))


# ----- datasets producing processor samples ----------------------------------------------------------
class ActionDataset:
    """LeRobot frames -> :class:`~vlaeval.models.instructvla.processor.Sample` for stage 1/2."""

    def __init__(
        self,
        frames: LeRobotFrames,
        processor: Any,
        stats: dict[str, Any],
        sampler: PromptSampler,
        annotations: VLAITAnnotations | None = None,
        image_aug: bool = False,
        image_size: int = 224,
        seed: int = 0,
        cache_mb: int = 1024,
    ):
        self.frames, self.processor, self.sampler = frames, processor, sampler
        self.annotations, self.image_aug, self.image_size, self.seed = annotations, image_aug, image_size, seed
        # decoding + resizing dominate a small model's step on CPU: keep resized frames for later epochs
        self._resized = _FileCache(self._load_resized, size=len(frames), max_bytes=cache_mb << 20)
        self.action_stats = BoundsStats.from_dict(stats["action"])
        self.state_stats = BoundsStats.from_dict(stats["proprio"]) if "proprio" in stats else None
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.frames)

    def _load_resized(self, i: int) -> list[np.ndarray]:
        images = [resize(im, (self.image_size, self.image_size)) for im in self.frames.images(i)]
        for image in images:
            image.setflags(write=False)  # shared by every epoch: nothing downstream may write to it
        return images

    def __getitem__(self, i: int) -> Any:
        rng = random.Random(hash((self.seed, self.epoch, int(i))))
        images = self._resized.get(int(i))
        if self.image_aug:
            images = [augment(im, rng) for im in images]
        raw, valid = self.frames.chunk(i)
        actions = pad_chunk(normalize(raw, self.action_stats), valid, self.action_stats).astype(np.float32)
        proprio = None
        if self.processor.cfg.use_state:
            if self.frames.states is None or self.state_stats is None:
                raise KeyError("the model uses robot state but the dataset has none")
            proprio = normalize(self.frames.states[i], self.state_stats).astype(np.float32)
        instruction = self.frames.instruction(i).lower()
        primitive, alt = None, None
        if self.annotations is not None:
            frame_index = int(self.frames.index.iloc[i]["frame_index"])
            primitive, alt = self.annotations.lookup(self.frames.episode_key(i), frame_index)
        turns = self.sampler(instruction, primitive, alt, rng)
        return self.processor.action_sample(images, instruction, actions=actions, proprio=proprio, turns=turns)


class ChatDataset:
    """LLaVA-format multimodal chat data (``[{"image": rel_path?, "conversations": [...]}]``)."""

    def __init__(self, json_path: str | Path, image_root: str | Path | None, processor: Any, max_tokens: int = 1024):
        self.records = json.loads(Path(json_path).read_text(encoding="utf-8"))
        self.image_root = Path(image_root) if image_root else Path(json_path).parent
        self.processor, self.max_tokens = processor, max_tokens

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Any:
        record = self.records[i]
        turns = conversation_turns(record["conversations"], self.processor.cfg.system_message)
        images = None
        if record.get("image"):
            images = [np.asarray(Image.open(self.image_root / record["image"]).convert("RGB"))]
            if not any(t.image for t in turns):
                first_user = next(j for j, t in enumerate(turns) if t.role == "user")
                turns[first_user] = Turn("user", turns[first_user].content, image=True)
        else:
            turns = [Turn(t.role, t.content) for t in turns]
        sample = self.processor.encode_turns(turns, images)
        if len(sample.input_ids) > self.max_tokens and not images:
            sample.input_ids, sample.labels = sample.input_ids[: self.max_tokens], sample.labels[: self.max_tokens]
        return sample

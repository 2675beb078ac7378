"""Tiny synthetic LeRobot datasets (v2.1 and v3.0 on-disk layouts) for tests and smoke runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

IMAGE_KEYS = ("observation.images.image", "observation.images.wrist_image")


def _png(image: np.ndarray) -> dict[str, object]:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _episode_frame(episode: int, length: int, task_index: int, start: int, rng: np.random.Generator, size: int) -> pd.DataFrame:
    actions = rng.uniform(-1, 1, size=(length, 7)).astype(np.float32)
    actions[:, -1] = rng.choice([-1.0, 1.0], size=length)
    data = {
        "action": list(actions),
        "observation.state": list(rng.normal(size=(length, 8)).astype(np.float32)),
        "timestamp": (np.arange(length) / 10.0).astype(np.float32),
        "frame_index": np.arange(length),
        "episode_index": np.full(length, episode),
        "index": np.arange(start, start + length),
        "task_index": np.full(length, task_index),
    }
    for key in IMAGE_KEYS:
        data[key] = [_png(rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)) for _ in range(length)]
    return pd.DataFrame(data)


def write_lerobot(
    root: str | Path,
    version: str = "v2.1",
    episodes: int = 2,
    length: int = 6,
    image_size: int = 32,
    seed: int = 0,
    tasks: tuple[str, ...] = ("Pick up the black bowl", "Open the drawer"),
) -> Path:
    """Write a dataset with 7-d actions (LIBERO gripper -1/+1), 8-d state and two PNG cameras."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    features = {
        "action": {"dtype": "float32", "shape": [7]},
        "observation.state": {"dtype": "float32", "shape": [8]},
        **{k: {"dtype": "image", "shape": [image_size, image_size, 3]} for k in IMAGE_KEYS},
        **{k: {"dtype": "int64", "shape": [1]} for k in ("frame_index", "episode_index", "index", "task_index")},
        "timestamp": {"dtype": "float32", "shape": [1]},
    }
    frames = [_episode_frame(e, length, e % len(tasks), e * length, rng, image_size) for e in range(episodes)]
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    info = {"codebase_version": version, "fps": 10, "features": features, "chunks_size": 1000, "total_episodes": episodes}
    if version.startswith("v2"):
        info["data_path"] = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
        for e, frame in enumerate(frames):
            path = root / info["data_path"].format(episode_chunk=0, episode_index=e)
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path)
        (meta / "episodes.jsonl").write_text(
            "".join(json.dumps({"episode_index": e, "tasks": [tasks[e % len(tasks)]], "length": length}) + "\n" for e in range(episodes))
        )
        (meta / "tasks.jsonl").write_text("".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks)))
    else:
        info["data_path"] = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
        path = root / "data" / "chunk-000" / "file-000.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.concat(frames, ignore_index=True).to_parquet(path)
        episodes_dir = meta / "episodes" / "chunk-000"
        episodes_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {"episode_index": range(episodes), "length": [length] * episodes, "tasks": [[tasks[e % len(tasks)]] for e in range(episodes)]}
        ).to_parquet(episodes_dir / "file-000.parquet")
        pd.DataFrame({"task_index": range(len(tasks))}, index=pd.Index(list(tasks), name="task")).to_parquet(meta / "tasks.parquet")
    (meta / "info.json").write_text(json.dumps(info, indent=1))
    return root


def write_annotations(path: str | Path, episodes: int = 2, length: int = 6) -> Path:
    """VLA-IT annotations in the flat layout (keys = LeRobot episode indices)."""
    record = {
        "features": {"move_primitive": ["move down, rotate clockwise"] * (length - 2) + ["stop", "stop"]},
        "alt_instruction": {
            "Caption": "A table with a black bowl and a drawer.",
            "QA": [{"question": "What is on the table?", "answer": "A black bowl."}],
            "CR": [{"question": "Move the bowl to the left.", "answer": "I will move the bowl."}],
            "CC": [{"question": "I am hungry, give me a container.", "answer": "I will pick up the bowl."}],
        },
    }
    Path(path).write_text(json.dumps({str(e): record for e in range(episodes)}))
    return Path(path)


def write_chat(root: str | Path, samples: int = 3, image_size: int = 32) -> Path:
    """LLaVA-format chat JSON with images (and one text-only sample)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    records = []
    for i in range(samples):
        name = f"images/{i}.png"
        Image.fromarray(rng.integers(0, 255, size=(image_size, image_size, 3), dtype=np.uint8)).save(root / name)
        records.append({"image": name, "conversations": [{"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": f"Object {i}."}]})
    records.append({"conversations": [{"from": "human", "value": "Say hi."}, {"from": "gpt", "value": "Hi."}]})
    (root / "chat.json").write_text(json.dumps(records))
    return root / "chat.json"

"""Build VLA-IT-style evaluation data from a recorded run (first frames + instructions).

    python -m vlaeval.suites.vla_it.build RUN_DIR OUT_DIR [--annotations FILE] [--annotator MOD:FUNC]

For every finished episode of RUN_DIR that has a recording, the first frame is taken from the
raw demonstration (``<run>/demos/raw/<key>.npz``: the first observation, lossless) or else
from the video (``<run>/videos/<key>.mp4``, whose first frame is the first observation), and
saved as ``OUT_DIR/language_evaluation/<key>_first_frame.jpg``. ``OUT_DIR/
language_evaluation_with_gt.json`` gets one record per episode in InstructVLA's schema,
``{"hashkey", "subset", "annotation": {"Caption", "QA", "CR", "CC"}, "source": {...}}``, so the
``vla-it*`` suites read it directly (``--protocol data_dir=OUT_DIR``).

What goes into an annotation:

* ``--annotations FILE``: a JSON object mapping an episode key, a task id, or an instruction
  to a (partial) annotation dict, e.g. human- or GPT-written captions and QA pairs.
* ``--annotator module:function``: called as ``function(image, instruction, episode)``
  (HWC uint8 array, str, the stored episode row) and returning a partial annotation dict --
  the hook for an automatic annotator such as InstructVLA's GPT-4o pipeline.
* Templates from the instruction (unless ``--no-templates``), so the instruction suite works
  without any annotator: ``CR`` = the instruction itself -> "I will <instruction>.", ``CC`` =
  "Could you <instruction>, please?" -> "I will <instruction>.", ``QA`` = "What is the robot
  asked to do?" -> the instruction. Captions come only from annotations or the annotator.

Later sources override earlier ones per field (templates < annotations file < annotator).
The subset (task of the ``vla-it`` suites) is the run's suite name unless ``--subset`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vlaeval.suites.vla_it.data import ANNOTATION_FILE

IMAGE_DIR = "language_evaluation"
CAMERA_PREFERENCE = ("agentview", "image", "rgb", "primary")


def first_frame(run_dir: Path, row: dict[str, Any], camera: str = "") -> np.ndarray | None:
    """The episode's first observation image: from the raw demo if kept, else the video's first frame."""
    demo = run_dir / "demos" / "raw" / f"{row['key']}.npz"
    recorded = (row.get("outputs") or {}).get("demo")
    for path in filter(None, [Path(recorded) if recorded else None, demo]):
        if path.is_file():
            with np.load(path) as arrays:
                images = [k for k in arrays.files if k.startswith("observation.") and arrays[k].ndim == 4]
                if images:
                    name = _pick_camera([k.removeprefix("observation.") for k in images], camera)
                    return np.asarray(arrays[f"observation.{name}"][0], dtype=np.uint8)
    video = Path(row["video"]) if row.get("video") else run_dir / "videos" / f"{row['key']}.mp4"
    if not video.is_file():
        return None
    import imageio.v2 as imageio

    with imageio.get_reader(video, format="FFMPEG") as reader:
        return np.asarray(reader.get_data(0), dtype=np.uint8)


def _pick_camera(names: list[str], wanted: str) -> str:
    if wanted:
        if wanted not in names:
            raise ValueError(f"camera {wanted!r} not recorded (have {', '.join(names)})")
        return wanted
    for preferred in CAMERA_PREFERENCE:
        if preferred in names:
            return preferred
    return sorted(names)[0]


def _sentence(instruction: str) -> str:
    text = " ".join(instruction.strip().split()).rstrip(".!?")
    return text[:1].lower() + text[1:] if text else text


def template_annotation(instruction: str) -> dict[str, Any]:
    task = _sentence(instruction)
    if not task:
        return {}
    reply = f"I will {task}."
    return {
        "CR": [{"question": task[:1].upper() + task[1:] + ".", "answer": reply}],
        "CC": [{"question": f"Could you {task}, please?", "answer": reply}],
        "QA": [{"question": "What is the robot asked to do?", "answer": task[:1].upper() + task[1:] + "."}],
    }


def _load_annotator(spec: str) -> Callable[..., dict[str, Any]]:
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"--annotator must look like module:function, got {spec!r}")
    return getattr(importlib.import_module(module), name)


def build(
    run_dir: str | Path,
    out_dir: str | Path,
    annotations: dict[str, dict[str, Any]] | None = None,
    annotator: Callable[..., dict[str, Any]] | None = None,
    templates: bool = True,
    subset: str = "",
    camera: str = "",
    include_failed: bool = True,
) -> dict[str, Any]:
    """Write the dataset; returns counts (``records``, ``skipped_no_frame``, ...)."""
    from PIL import Image

    from vlaeval.harness.store import RunStore

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    store = RunStore(run_dir)
    try:
        rows = store.episodes()
    finally:
        store.close()
    annotations = annotations or {}
    (out_dir / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    records, counts = [], {"episodes": len(rows), "records": 0, "skipped_no_frame": 0, "skipped_status": 0}
    for row in sorted(rows, key=lambda r: (r["suite"], r["task_index"], r["episode_index"], r["seed"])):
        if row["status"] == "error" or (not include_failed and not row["success"]):
            counts["skipped_status"] += 1
            continue
        frame = first_frame(run_dir, row, camera)
        if frame is None:
            counts["skipped_no_frame"] += 1
            continue
        key = row["key"]
        Image.fromarray(frame).save(out_dir / IMAGE_DIR / f"{key}_first_frame.jpg", quality=95)
        annotation: dict[str, Any] = template_annotation(row["instruction"]) if templates else {}
        for lookup in (row["task_id"], row["instruction"], key):
            annotation.update(annotations.get(lookup) or {})
        if annotator is not None:
            annotation.update(annotator(frame, row["instruction"], row) or {})
        records.append({
            "hashkey": key,
            "subset": subset or row["suite"],
            "annotation": annotation,
            "source": {"run_dir": str(run_dir), "suite": row["suite"], "task_id": row["task_id"],
                       "episode_index": row["episode_index"], "seed": row["seed"],
                       "instruction": row["instruction"], "success": bool(row["success"])},
        })
    (out_dir / ANNOTATION_FILE).write_text(json.dumps(records, indent=2, ensure_ascii=False))
    counts["records"] = len(records)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlaeval.suites.vla_it.build",
                                     description="Build VLA-IT-style evaluation data from a recorded vlaeval run.")
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--annotations", help="JSON: {episode key | task id | instruction: annotation dict}")
    parser.add_argument("--annotator", help="module:function(image, instruction, episode) -> annotation dict")
    parser.add_argument("--no-templates", action="store_true", help="no instruction-derived CR/CC/QA items")
    parser.add_argument("--subset", default="", help="task name in the vla-it suites [default: the run's suite]")
    parser.add_argument("--camera", default="", help="camera of the raw demos to take the frame from")
    parser.add_argument("--successes-only", action="store_true", help="skip episodes the policy failed")
    args = parser.parse_args(argv)
    annotations = json.loads(Path(args.annotations).read_text()) if args.annotations else None
    counts = build(args.run_dir, args.out_dir, annotations=annotations,
                   annotator=_load_annotator(args.annotator) if args.annotator else None,
                   templates=not args.no_templates, subset=args.subset, camera=args.camera,
                   include_failed=not args.successes_only)
    print(json.dumps(counts))
    return 0 if counts["records"] else 1


if __name__ == "__main__":
    sys.exit(main())

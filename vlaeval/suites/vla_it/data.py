"""Reading VLA-IT evaluation data (InstructVLA's embodied captioning / QA / instruction sets).

Accepted layouts in a data directory (``data_dir`` protocol parameter or
``$VLAEVAL_VLA_IT_DATA``):

* InstructVLA's published validation assets: ``language_evaluation_with_gt.json`` (a list of
  ``{"hashkey": str, "annotation": {"Caption": str, "QA": [{question, answer}, ...],
  "CR": [...], "CC": [...]}}``) with images ``<hashkey>_first_frame.jpg`` under
  ``language_evaluation/`` (what the evaluation script reads) or ``language_evaluation/images/``
  (what its README draws); the directory may also be the repository's ``mm_evaluation`` parent.
* The training annotation layout ``{file_path: {episode_id: {"features": ..., "alt_instruction":
  {...}}}}`` (``bridge_instruction.json``, ``fractal_instruction.json``): records get the key
  ``<file_path>_<episode_id>`` and need a first-frame image under that key.
* Any directory with JSON files in either schema; records may add ``"subset"`` (task name)
  and ``"image"`` (path relative to the JSON file). :mod:`vlaeval.suites.vla_it.build` writes
  this from recorded runs.

Keys are opaque strings (they may contain ``/``). The subset of a record is its ``subset``
field, else ``val`` for the published file name, else the JSON file's stem.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlaeval.harness.suite import SelectionError

ANNOTATION_FILE = "language_evaluation_with_gt.json"
DATA_ENV = "VLAEVAL_VLA_IT_DATA"
IMAGE_DIRS = ("language_evaluation", "language_evaluation/images", "images", "")
IMAGE_SUFFIXES = ("_first_frame.jpg", "_first_frame.png")
KINDS = ("caption", "qa", "instruction")
DEFAULT_SUBSET = "val"


class DataMissing(SelectionError):
    """No VLA-IT data where the suite looks (the message says where and how to get it)."""


@dataclass(frozen=True)
class Item:
    key: str
    subset: str
    kind: str
    question: str
    """The question (QA, instruction) or '' (caption, whose prompt is fixed)."""
    answer: str
    image: Path


@dataclass
class VlaItData:
    root: Path
    files: list[Path]
    fingerprint: str
    items: dict[tuple[str, str], list[Item]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    """Records left out, by reason (no image, no field for a kind)."""

    def subsets(self, kind: str) -> list[str]:
        return sorted(s for k, s in self.items if k == kind)

    def get(self, kind: str, subset: str) -> list[Item]:
        return self.items.get((kind, subset), [])


def resolve_root(protocol: dict[str, Any]) -> Path:
    root = str(protocol.get("data_dir") or os.environ.get(DATA_ENV) or "")
    if not root:
        raise DataMissing(
            f"no VLA-IT data: set ${DATA_ENV} or --protocol data_dir=DIR to a folder with {ANNOTATION_FILE} "
            "and language_evaluation/ (HF dataset ShuaiYang03/InstructVLA_embodied_mm_evaluation_assets), "
            "or build one from a run with `python -m vlaeval.suites.vla_it.build RUN_DIR OUT_DIR`"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataMissing(f"VLA-IT data directory {path} does not exist")
    return path


def annotation_files(root: Path, annotation: str = "") -> list[Path]:
    if annotation:
        path = Path(annotation).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise DataMissing(f"VLA-IT annotation file {path} does not exist")
        return [path]
    for candidate in (root / ANNOTATION_FILE, root / "mm_evaluation" / ANNOTATION_FILE):
        if candidate.is_file():
            return [candidate]
    files = sorted(p for p in root.glob("*.json") if p.is_file())
    if not files:
        raise DataMissing(
            f"no {ANNOTATION_FILE} (or other VLA-IT JSON) in {root}; expected InstructVLA's validation assets "
            "(HF dataset ShuaiYang03/InstructVLA_embodied_mm_evaluation_assets) unpacked there"
        )
    return files


def _records(payload: Any, default_subset: str) -> list[dict[str, Any]] | None:
    """Flatten one JSON document to ``{key, subset, annotation, image?}``; None if it is another schema."""
    if isinstance(payload, list):
        if not all(isinstance(r, dict) and "annotation" in r and ("hashkey" in r or "key" in r) for r in payload):
            return None
        return [{"key": str(r.get("hashkey", r.get("key"))), "subset": str(r.get("subset") or default_subset),
                 "annotation": r["annotation"] or {}, "image": r.get("image")} for r in payload]
    if isinstance(payload, dict) and payload and all(isinstance(v, dict) for v in payload.values()):
        out = []
        for file_path, episodes in payload.items():
            for episode_id, record in episodes.items():
                if not isinstance(record, dict) or not ({"alt_instruction", "features"} & set(record)):
                    return None
                if record.get("alt_instruction"):
                    out.append({"key": f"{file_path}_{episode_id}", "subset": default_subset,
                                "annotation": record["alt_instruction"], "image": None})
        return out
    return None


def find_image(base: Path, key: str, explicit: str | None = None) -> Path | None:
    if explicit:
        path = Path(explicit)
        path = path if path.is_absolute() else base / path
        return path if path.is_file() else None
    for folder in IMAGE_DIRS:
        for suffix in IMAGE_SUFFIXES:
            path = Path(os.path.join(base, folder, key + suffix))
            if path.is_file():
                return path
    return None


def _entry(annotation: dict[str, Any], kind: str, entry_index: int, instruction_field: str) -> tuple[str, str] | None:
    if kind == "caption":
        caption = annotation.get("Caption")
        return ("", str(caption)) if isinstance(caption, str) and caption.strip() else None
    entries = annotation.get("QA" if kind == "qa" else instruction_field) or []
    if not isinstance(entries, list) or len(entries) <= entry_index:
        return None
    entry = entries[entry_index] or {}
    question, answer = entry.get("question"), entry.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        return None
    return question, answer


def load(root: Path, annotation: str = "", entry_index: int = 0, instruction_field: str = "CC") -> VlaItData:
    if instruction_field not in ("CC", "CR"):
        raise SelectionError(f"instruction_field must be CC or CR, not {instruction_field!r}")
    files = annotation_files(root, annotation)
    digest = hashlib.sha256()
    data = VlaItData(root=root, files=[], fingerprint="")
    for path in files:
        raw = path.read_bytes()
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            if annotation:
                raise DataMissing(f"{path} is not valid JSON: {exc}") from None
            continue
        default_subset = DEFAULT_SUBSET if path.name == ANNOTATION_FILE else path.stem
        records = _records(payload, default_subset)
        if records is None:
            if annotation or len(files) == 1:
                raise DataMissing(f"{path} is not in a VLA-IT annotation schema (see vlaeval.suites.vla_it.data)")
            continue
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(raw).digest())
        data.files.append(path)
        for record in records:
            image = find_image(path.parent, record["key"], record.get("image"))
            if image is None:
                data.skipped["no image"] = data.skipped.get("no image", 0) + 1
                continue
            for kind in KINDS:
                entry = _entry(record["annotation"], kind, entry_index, instruction_field)
                if entry is None:
                    data.skipped[f"no {kind}"] = data.skipped.get(f"no {kind}", 0) + 1
                    continue
                data.items.setdefault((kind, record["subset"]), []).append(
                    Item(record["key"], record["subset"], kind, entry[0], entry[1], image))
    if not data.files:
        raise DataMissing(f"no VLA-IT annotation file in {root}")
    if not data.items:
        raise DataMissing(
            f"no usable VLA-IT sample in {', '.join(str(f) for f in data.files)}: "
            f"images are looked up as <dir>/language_evaluation/<hashkey>_first_frame.jpg ({data.skipped})"
        )
    data.fingerprint = digest.hexdigest()[:16]
    return data

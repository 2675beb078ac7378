"""VLMEvalKit's TSV format: one row per question, images inline as base64.

Columns: ``index``; ``image`` (base64 PNG/JPEG, a list of them written as a Python list literal,
or -- when 64 characters or fewer -- the ``index`` of another row whose image it shares);
optional ``image_path``; ``question``; ``answer``; options ``A``..``Z`` (empty = absent);
``hint``; ``category``; ``l2-category``; ``split``. Read with pandas' defaults, as VLMEvalKit
does: cells such as ``None`` or ``NA`` read as missing, and a numeric option column with blanks
reads as floats (option ``7`` is shown as ``7.0``) -- the prompts are VLMEvalKit's, quirks included.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlaeval.harness.suite import SelectionError

OPTION_LETTERS = tuple(string.ascii_uppercase)


class DataMissing(SelectionError):
    """The benchmark data is not where the suite looks for it (one line, with the fix)."""


def file_md5(path: Path, _cache: dict[tuple[str, int, float], str] = {}) -> str:  # noqa: B006 - process cache
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime)
    if key not in _cache:
        digest = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _cache[key] = digest.hexdigest()
    return _cache[key]


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN
    except Exception:
        return False


def as_list(value: Any) -> list[str]:
    """A cell that may hold a Python list literal (several images / answers) -> list of strings."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = "" if is_missing(value) else str(value)
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = ast.literal_eval(text)
            if isinstance(parsed, list):
                return [str(v) for v in parsed]
        except (ValueError, SyntaxError):
            pass
    return [text]


def decode_image(data: str) -> np.ndarray:
    from PIL import Image

    raw = base64.b64decode(data)
    with Image.open(io.BytesIO(raw)) as image:
        return np.asarray(image.convert("RGB"))


def encode_image(image: Any, fmt: str = "PNG") -> str:
    """Base64 of an image (HWC uint8 array or PIL image), as VLMEvalKit stores it."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


@dataclass
class TsvData:
    path: Path
    md5: str
    rows: list[dict[str, Any]]
    images: dict[str, Any] = field(default_factory=dict)
    """index -> image cell after resolving references to other rows."""

    def row_images(self, row: dict[str, Any]) -> list[np.ndarray]:
        index = str(row["index"])
        cell = self.images.get(index)
        if cell is not None and cell != "":
            return [decode_image(b) for b in as_list(cell)]
        if not is_missing(row.get("image_path")):
            from PIL import Image

            out = []
            for name in as_list(row["image_path"]):
                path = Path(name) if os.path.isabs(name) else self.path.parent / "images" / name
                with Image.open(path) as image:
                    out.append(np.asarray(image.convert("RGB")))
            return out
        return []


def load_tsv(path: Path) -> TsvData:
    """Read a VLMEvalKit TSV; images stay base64 until a sample asks for them."""
    import pandas as pd

    frame = pd.read_csv(path, sep="\t")
    if "index" not in frame or "question" not in frame:
        raise ValueError(f"{path} is not a VLMEvalKit TSV (needs the columns index and question)")
    images: dict[str, Any] = {}
    if "image" in frame:
        cells = {str(i): ("" if is_missing(c) else str(c)) for i, c in zip(frame["index"], frame["image"])}
        for key, cell in cells.items():
            if 0 < len(cell) <= 64:
                target = cells.get(cell, "")
                if len(target) <= 64:
                    raise ValueError(f"{path}: row {key} points at image of row {cell!r}, which has none")
                cell = target
            images[key] = cell
        frame = frame.drop(columns=["image"])
    rows = frame.to_dict(orient="records")
    return TsvData(path=path, md5=file_md5(path), rows=rows, images=images)


def options(row: dict[str, Any]) -> dict[str, str]:
    """The answer options of a row, in letter order (missing cells are not options)."""
    return {c: str(row[c]) for c in OPTION_LETTERS if c in row and not is_missing(row[c])}


def write_tsv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write rows (with ``image`` as base64 or an array) in VLMEvalKit's TSV format."""
    import pandas as pd

    out = []
    for row in rows:
        row = dict(row)
        if isinstance(row.get("image"), np.ndarray):
            row["image"] = encode_image(row["image"])
        elif isinstance(row.get("image"), list):
            row["image"] = str([encode_image(i) if isinstance(i, np.ndarray) else i for i in row["image"]])
        out.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(out).to_csv(path, sep="\t", index=False)
    return path

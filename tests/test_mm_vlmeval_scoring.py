"""VLMEvalKit's per-item scoring rules (and InstructVLA's variants) on tables of tricky cases.

Expected values are worked out by hand from the published rules (VLMEvalKit e8e78f05 and the
InstructVLA fork), including their quirks.
"""

from __future__ import annotations

import pytest

from vlaeval.suites.vlmeval import aggregate, scoring

CHOICES = {"A": "cat", "B": "dog", "C": "teddy bear", "D": "rabbit"}


@pytest.mark.parametrize("answer, upstream, fork", [
    ("A", "A", "A"),
    ("The answer is B.", "B", "B"),
    ("B. dog", "B", "B"),
    ("(C) teddy bear", "C", "C"),
    ("Answer: A", "A", "A"),
    ("The correct answer is **C**", "C", "C"),
    ("teddy bear", "C", "C"),  # no letter: the one option whose text occurs
    ("Sorry, I can't help with images of people yet.", "Z", "Z"),
    ("Z", "Z", "Z"),
    ("", None, None),
    ("It is a dog or a cat", None, None),  # two option texts: undecided
    ("A and B are both plausible, but I'd pick B", None, None),  # two letters, no "answer is"
    # two letters; upstream's "answer is X" pattern decides, the fork falls back to option text ("cat")
    ("A cat is sleeping on the sofa, so the answer is B", "B", "A"),
    # one letter outside the last five tokens: upstream refuses (and the answer is too long for the
    # text fallback); the fork takes any single letter
    ("I think it is D because rabbits have long ears and the image shows one", None, "D"),
    ("Failed to obtain answer via API", None, None),
])
def test_mcq_extraction(answer, upstream, fork):
    assert scoring.can_infer(answer, dict(CHOICES), "vlmevalkit") == upstream
    assert scoring.can_infer(answer, dict(CHOICES), "instructvla") == fork


def test_mcq_text_fallback_length_limit_is_upstream_only():
    long_answer = "the picture clearly shows a small rabbit sitting on the grass near the fence"
    assert scoring.can_infer(long_answer, dict(CHOICES), "vlmevalkit") is None  # longer than 2x the option texts
    assert scoring.can_infer(long_answer, dict(CHOICES), "instructvla") == "D"


@pytest.mark.parametrize("answer, upstream, fork", [
    ("Yes", "Yes", "Yes"),
    ("Yes.", "Yes", "Yes"),
    ("No, there is no cat.", "No", "No"),
    ("yes and no", "Unknown", "Yes"),  # the fork looks at the first word first
    ("Not sure", "Unknown", "No"),  # ...so "Not" counts as "no" there
    ("nobody knows", "Unknown", "No"),
    ("There is no dog, yes.", "Unknown", "Unknown"),
    ("I think so: yes!", "Yes", "Yes"),
    ("", "Unknown", "Unknown"),
])
def test_yes_no_extraction(answer, upstream, fork):
    assert scoring.yorn_extract(answer, "vlmevalkit") == upstream
    assert scoring.yorn_extract(answer, "instructvla") == fork


def test_process_punctuation_rules():
    assert scoring.process_punctuation("hello, world") == "hello world"  # ", " present: deleted
    assert scoring.process_punctuation("a-b") == "a b"  # no space around: replaced by a space
    assert scoring.process_punctuation("1,000 cars") == "1000 cars"  # a digit comma anywhere: all deleted
    assert scoring.process_punctuation("end.") == "end" and scoring.process_punctuation("3.5") == "3.5"
    assert scoring.process_punctuation("it is 2.") == "it is 2."  # after a digit it stays, as in VLMEvalKit
    assert scoring.process_punctuation("." * 40) == "." * 8  # VLMEvalKit removes at most 32 periods


@pytest.mark.parametrize("gt, pred, expected", [
    (["Hello World"], "hello world", 1.0),
    (["invoice"], "invoices", 1 - 1 / 8),  # distance 1, longer string 8
    (["abc"], "xyz", 0.0),
    (["  Total  Amount "], "total amount", 1.0),  # whitespace collapsed before the distance
    (["ab  cd"], "abxcd", 1 - 1 / 6),  # ...but divided by the raw length (6, not 5)
    (["abcd"], "abxy", 0.5),  # exactly 0.5 is kept
    (["abcd"], "axyz", 0.0),  # 0.25 is below the threshold
    (["nope", "Invoice"], "invoices", 1 - 1 / 8),  # best reference
])
def test_anls_by_hand(gt, pred, expected):
    assert scoring.anls(pred, gt) == pytest.approx(expected)


@pytest.mark.parametrize("gt, pred, upstream, fork", [
    ("10", "10.4", True, True),
    ("10", "10.6", False, False),
    ("50%", "0.5", True, False),  # upstream divides percentages by 100, the fork does not
    ("1,000", "1000", False, True),  # the fork drops thousands separators
    ("100", "95.5", True, True),
    ("100", "95.2", True, False),  # fork: |100 - 95.2| / 95.2 = 5.04 % of the *prediction*
    ("Yes", "yes", True, True),
    ("0", "0", True, True),  # a zero target is compared as text
    ("0", "0.0", False, False),
])
def test_relaxed_accuracy(gt, pred, upstream, fork):
    assert scoring.relaxed_accuracy(pred, [gt], "vlmevalkit") == float(upstream)
    assert scoring.relaxed_accuracy(pred, [gt], "instructvla") == float(fork)


def test_vqa_accuracy_by_hand():
    # "two" normalises to "2": six of ten answers are "2" -> every leave-one-out subset has >= 3 -> 1
    assert scoring.vqa_score("2", ["2"] * 4 + ["two"] * 2 + ["3"] * 4) == 1.0
    assert scoring.vqa_score("4", ["2"] * 10) == 0.0
    # two of ten say "red": leaving one of them out leaves 1 match (1/3), leaving a "blue" out leaves 2 (2/3)
    expected = (2 * (1 / 3) + 8 * (2 / 3)) / 10
    for pred in ("red", "Red.", "the red"):  # punctuation and articles are normalised away
        assert scoring.vqa_score(pred, ["red"] * 2 + ["blue"] * 8) == pytest.approx(expected)
    assert scoring.vqa_normalize("Isnt it two?") == "isn't it 2"


def test_ocrbench_hits():
    assert scoring.ocrbench_hit("The text says HELLO world", ["hello"], "Regular Text Recognition")
    assert not scoring.ocrbench_hit("goodbye", ["hello"], "Regular Text Recognition")
    hme = scoring.OCRBENCH_HME
    assert scoring.ocrbench_hit("x^2+1", ["x^2 + 1"], hme)  # spaces removed for formulas
    assert not scoring.ocrbench_hit("X^2+1", ["x^2 + 1"], hme)  # case kept for formulas


def test_judge_prompts_carry_the_item():
    prompt = scoring.mcq_judge_prompt("What animal is this", {"A": "cat", "B": "dog"}, "a kitten")
    assert prompt.endswith("Question: What animal is this?\nOptions: There are several options: \nA. cat\nB. dog\n\n"
                           "Answer: a kitten\nYour output: ")
    grade = scoring.mmvet_judge_prompt("What is 2+2?", "4<OR>four", "It is 4")
    assert grade.endswith("What is 2+2? | 4 <OR> four | It is 4 | ")
    assert scoring.parse_grade("0.7") == 0.7 and scoring.parse_grade("1.5") is None
    assert scoring.parse_grade("about 0.5") is None


def item(hit, judged=1, **meta):
    metrics = {"judged": judged, "hit_exact_matching": float(hit if judged else 0)}
    if judged:
        metrics["hit"] = float(hit)
    return metrics, meta


def test_mme_acc_plus_by_hand():
    items = [
        item(1, category="OCR", image_id="a"), item(1, category="OCR", image_id="a"),  # both right
        item(1, category="OCR", image_id="b"), item(0, category="OCR", image_id="b"),
        item(1, category="code_reasoning", image_id="c"), item(1, category="code_reasoning", image_id="c"),
        item(0, category="code_reasoning", image_id="d"), item(1, 0, category="code_reasoning", image_id="d"),
    ]
    out = aggregate.mme(items)
    assert out["category/OCR"] == pytest.approx(75.0 + 50.0)  # acc 3/4, acc+ 1/2 images
    # acc over the 3 judged answers: 2/3; acc+: image c right, image d wrong already (its judged answer
    # is wrong, so the unjudged one cannot change that): 1/2
    assert out["category/code_reasoning"] == pytest.approx(200 / 3 + 50.0)
    assert out["perception"] == pytest.approx(125.0) and out["reasoning"] == pytest.approx(200 / 3 + 50.0)
    assert out["reasoning_exact_matching"] == pytest.approx(50.0 + 50.0)  # unjudged counted wrong
    assert out["n_unjudged"] == 1


def test_hallusion_figure_and_question_accuracy_by_hand():
    def h(hit, s, f, q, cat="VD"):
        return item(hit, index=f"{cat}_x_y_{s}_{f}_{q}", category=cat, **{"l2-category": "chart"})

    items = [h(1, 0, 0, 0), h(1, 0, 0, 1), h(1, 0, 1, 0), h(0, 0, 1, 1)]
    out = aggregate.hallusion(items)
    assert out["aAcc"] == 75.0
    assert out["fAcc"] == 50.0  # figure 0 all right, figure 1 not
    assert out["qAcc"] == 50.0  # question 0 right on both figures, question 1 not
    assert out["category/VD/aAcc"] == 75.0


def test_circular_groups():
    items = [
        item(1, index=1, g_index=1, category="x"), item(1, index=1_000_001, g_index=1, category="x"),
        item(1, index=2, g_index=2, category="x"), item(0, index=1_000_002, g_index=2, category="x"),
        item(1, index=3, g_index=3, category="y"), item(0, 0, index=1_000_003, g_index=3, category="y"),
        item(0, index=4, g_index=4, category="y"), item(0, 0, index=1_000_004, g_index=4, category="y"),
    ]
    out = aggregate.mcq(items, circular=True)
    # groups: 1 hit, 2 miss, 3 unjudged (no wrong rotation, one unreadable), 4 miss (a wrong rotation decides)
    assert out["n_groups"] == 4 and out["n_unjudged_groups"] == 1
    assert out["Overall"] == pytest.approx(100 / 3)
    assert out["Overall_exact_matching"] == 25.0
    assert out["category/x"] == 50.0 and out["category/y"] == 0.0


def test_ocrbench_and_mmvet_aggregation():
    out = aggregate.ocrbench([
        ({"hit": 1.0}, {"category": "Regular Text Recognition"}),
        ({"hit": 1.0}, {"category": "Digit String Recognition"}),
        ({"hit": 0.0}, {"category": "Doc-oriented VQA"}),
        ({"hit": 1.0}, {"category": scoring.OCRBENCH_HME}),
    ])
    assert out["Text Recognition"] == 2 and out["Final Score"] == 3 and out["Final Score Norm"] == 0.3
    mmvet = aggregate.mmvet([
        ({"judged": 1, "score": 1.0}, {"category": "rec,ocr"}),
        ({"judged": 1, "score": 0.5}, {"category": "rec"}),
        ({"judged": 0}, {"category": "math"}),
    ])
    assert mmvet["Overall"] == 75.0 and mmvet["rec"] == 75.0 and mmvet["ocr"] == 100.0
    assert "math" not in mmvet and mmvet["n_unjudged"] == 1 and mmvet["category/rec_ocr"] == 100.0

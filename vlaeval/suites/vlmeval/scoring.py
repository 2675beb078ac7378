"""Deterministic per-item scoring rules of VLMEvalKit, re-implemented, with InstructVLA's variants.

``variant="vlmevalkit"`` follows upstream VLMEvalKit (read at commit e8e78f05);
``variant="instructvla"`` follows the fork that InstructVLA evaluated with
(``InternRobotics/InstructVLA:mm_evaluation/vlmeval``), which differs in three places:

* MCQ option extraction: a single option letter anywhere in the answer counts (upstream:
  only among the last five tokens, plus an ``answer is X`` pattern), and the option-text
  fallback has no length limit.
* Yes/no extraction: an answer that starts with "yes"/"no" is taken as such before the
  word test (upstream: Unknown when both words occur).
* ChartQA relaxed accuracy: spaces and thousands separators are removed, percentages are
  not divided by 100, and the 5 % tolerance is relative to the *prediction*.

Corpus aggregation (MME acc+, HallusionBench fAcc/qAcc, MMBench circular groups, OCRBench
counts, MM-Vet capabilities) lives in :mod:`vlaeval.suites.vlmeval.aggregate`.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

VARIANTS = ("vlmevalkit", "instructvla")

# -- multiple choice ---------------------------------------------------------------------------

REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_ANSWER_IS = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")
_SPLIT_CHARS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"scoring variant must be one of {', '.join(VARIANTS)}, not {variant!r}")


def can_infer_option(answer: str, choices: Mapping[str, str], variant: str = "vlmevalkit") -> str | None:
    """The option letter an answer names, ``Z`` for a refusal, or None."""
    _check_variant(variant)
    if "Failed to obtain answer via API" in answer:
        return None
    if any(refusal in answer for refusal in REFUSALS):
        return "Z"
    tokens = [t.strip() for t in answer.translate(_SPLIT_CHARS).split()]
    named = [c for c in choices if c in tokens]
    if len(named) == 1:
        letter = named[0]
        if variant == "instructvla" or tokens.index(letter) > len(tokens) - 5:
            return letter
    elif not named and ("Z" in tokens) + ("" in tokens) == 1:
        return "Z"
    if variant == "vlmevalkit":
        match = _ANSWER_IS.search(answer or "")
        if match and match.group(1).upper() in choices:
            return match.group(1).upper()
    return None


def can_infer_text(answer: str, choices: Mapping[str, str], variant: str = "vlmevalkit") -> str | None:
    """The single option whose text occurs in the answer (case-insensitive), or None."""
    answer = answer.lower()
    if variant == "vlmevalkit" and len(answer) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    hits = [k for k, v in choices.items() if str(v).lower() in answer]
    return hits[0] if len(hits) == 1 else None


def can_infer(answer: str, choices: Mapping[str, str], variant: str = "vlmevalkit") -> str | None:
    answer = str(answer)
    return can_infer_option(answer, choices, variant) or can_infer_text(answer, choices, variant)


def option_list_text(choices: Mapping[str, str]) -> str:
    return "There are several options: \n" + "".join(f"{k}. {v}\n" for k, v in choices.items())


def mcq_judge_prompt(question: str, choices: Mapping[str, str], prediction: str) -> str:
    """VLMEvalKit's prompt asking an LLM which option an answer means.

    The English version only: VLMEvalKit switches to a Chinese prompt for Chinese questions
    (MMBench-CN, CCBench), which no suite here uses.
    """
    return (
        "You are an AI assistant who will help me to match "
        "an answer with several options of a single-choice question. "
        "You are provided with a question, several options, and an answer, "
        "and you need to find which option is most similar to the answer. "
        "If the meaning of all options are significantly different from the answer, output Z. "
        "Your should output a single uppercase character in A, B, C, D (if they are valid options), and Z. \n"
        "Example 1: \n"
        "Question: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
        "Answer: a cute teddy bear\nYour output: A\n"
        "Example 2: \n"
        "Question: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
        "Answer: Spider\nYour output: Z\n"
        "Example 3: \n"
        f"Question: {question}?\nOptions: {option_list_text(choices)}\nAnswer: {prediction}\nYour output: "
    )


# -- yes / no ------------------------------------------------------------------------------------

_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
# As VLMEvalKit @ e8e78f05 (vlmeval/smp/misc.py): a period goes unless a digit stands on either side, so
# "42." keeps its period. (The original VQA challenge code wrote "(?!<=\d)", a lookahead in disguise that
# strips it; VLMEvalKit's lookbehind does not, and agreement with VLMEvalKit is what we test.)
_LONE_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")


def process_punctuation(text: str) -> str:
    """The VQA evaluation's punctuation rule (also used for yes/no extraction)."""
    out = text
    strip_all = _COMMA_BETWEEN_DIGITS.search(text) is not None
    for p in _PUNCT:
        if strip_all or (p + " " in text or " " + p in text):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # VLMEvalKit passes re.UNICODE (== 32) where the replacement count goes: at most 32 periods go
    return _LONE_PERIOD.sub("", out, count=32)


def yorn_extract(answer: str, variant: str = "vlmevalkit") -> str:
    """``Yes``, ``No`` or ``Unknown``."""
    _check_variant(variant)
    lowered = str(answer).lower()
    if variant == "instructvla":
        if lowered.startswith("yes"):
            return "Yes"
        if lowered.startswith("no"):
            return "No"
    words = process_punctuation(lowered).split()
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes and not has_no:
        return "Yes"
    if has_no and not has_yes:
        return "No"
    return "Unknown"


def yorn_judge_prompt(question: str, prediction: str) -> str:
    return (
        "You are an AI assistant who will help me to match an answer with two options of a question. "
        "The options are only Yes / No. "
        "You are provided with a question and an answer, "
        "and you need to find which option (Yes / No) is most similar to the answer. "
        "If the meaning of all options are significantly different from the answer, output Unknown. "
        "Your should output a single word among the following 3 choices: Yes, No, Unknown.\n"
        "Example 1: \n"
        "Question: Is the word in this image 'Hello'?\nAnswer: The word in this image is 'Hello'.\nYour output: Yes\n"
        "Example 2: \n"
        "Question: Is the word in this image 'Hello'?\n"
        "Answer: The word in this image is not 'Hello'.\nYour output: No\n"
        "Example 3: \n"
        f"Question: {question}?\nAnswer: {prediction}\nYour output: "
    )


# -- VQA accuracy (TextVQA) -------------------------------------------------------------------------

_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
            "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
# The VQA evaluation's contraction table: written-without-apostrophe form -> canonical form.
_CONTRACTIONS = dict(pair.split("=") for pair in """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've
hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's
howd=how'd howll=how'll hows=how's Id've=I'd've I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd
itd've=it'd've it'dve=it'd've itll=it'll let's=let's maam=ma'am mightnt=mightn't
mightnt've=mightn't've mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've
neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at
'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's shouldve=should've
shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's
someoned=someone'd someoned've=someone'd've someone'dve=someone'd've someonell=someone'll
someones=someone's somethingd=something'd somethingd've=something'd've something'dve=something'd've
somethingll=something'll thats=that's thered=there'd thered've=there'd've there'dve=there'd've
therere=there're theres=there's theyd=they'd theyd've=they'd've they'dve=they'd've theyll=they'll
theyre=they're theyve=they've twas='twas wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've
werent=weren't whatll=what'll whatre=what're whats=what's whatve=what've whens=when's whered=where'd
wheres=where's whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's
whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't
wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll
yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've
you'dve=you'd've youll=you'll youre=you're youve=you've
""".split())


def process_digit_article(text: str) -> str:
    words = [_NUMBERS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def vqa_normalize(answer: str) -> str:
    answer = str(answer).replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer))


def vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """VQA accuracy: mean over leave-one-out subsets of min(1, #other answers equal to the prediction / 3)."""
    gts = [vqa_normalize(a) for a in answers]
    pred = vqa_normalize(prediction)
    scores = []
    for i in range(len(gts)):
        others = gts[:i] + gts[i + 1:]
        scores.append(min(1.0, sum(g == pred for g in others) / 3))
    return sum(scores) / len(scores) if scores else 0.0


# -- ANLS (DocVQA, InfoVQA) ------------------------------------------------------------------------

def levenshtein(a: str, b: str) -> int:
    if len(a) > len(b):
        a, b = b, a
    previous = list(range(len(a) + 1))
    for j, cb in enumerate(b, start=1):
        current = [j]
        for i, ca in enumerate(a, start=1):
            current.append(previous[i - 1] if ca == cb else 1 + min(previous[i - 1], previous[i], current[-1]))
        previous = current
    return previous[-1]


def anls_distance(answer: str, prediction: str) -> float:
    """Normalised Levenshtein distance as VLMEvalKit computes it.

    The edit distance is taken between lower-cased, whitespace-collapsed strings, but divided by
    the longer of the *raw* lengths (a VLMEvalKit detail that slightly favours padded strings).
    """
    gt = " ".join(answer.strip().lower().split())
    pred = " ".join(prediction.strip().lower().split())
    length = max(len(answer.upper()), len(prediction.upper()))
    return 0.0 if length == 0 else levenshtein(gt, pred) / length


def anls(prediction: str, answers: Sequence[str], threshold: float = 0.5) -> float:
    """ANLS of one question: 1 - the smallest distance to an answer, 0 when below ``threshold``."""
    if not answers:
        return 0.0
    score = 1.0 - min(anls_distance(a, prediction) for a in answers)
    return 0.0 if score < threshold else score


# -- relaxed accuracy (ChartQA) --------------------------------------------------------------------

def _to_float(text: str, variant: str) -> float | None:
    try:
        if variant == "instructvla":
            text = text.replace(" ", "").strip()
            if text.endswith("%"):
                text = text.rstrip("%")
            return float(text.replace(",", ""))
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_correctness(target: str, prediction: str, variant: str = "vlmevalkit",
                        max_relative_change: float = 0.05) -> bool:
    """Numeric answers within 5 % of the target, others equal ignoring case.

    ``instructvla``: the fork calls this with the arguments swapped, so the tolerance is relative
    to the prediction; its number parsing also drops spaces and commas and keeps percentages as is.
    """
    _check_variant(variant)
    if variant == "instructvla":
        target, prediction = prediction, target
    prediction, target = str(prediction), str(target)
    p, t = _to_float(prediction, variant), _to_float(target, variant)
    if p is not None and t:
        return abs(p - t) / abs(t) <= max_relative_change
    return prediction.lower() == target.lower()


def relaxed_accuracy(prediction: str, answers: Sequence[str], variant: str = "vlmevalkit") -> float:
    pred = str(prediction).strip()
    return float(max((relaxed_correctness(a, pred, variant) for a in answers), default=False))


def exact_accuracy(prediction: str, answers: Sequence[str]) -> float:
    pred = str(prediction).strip().lower()
    return float(max((a.strip().lower() == pred for a in answers), default=False))


# -- OCRBench ------------------------------------------------------------------------------------------

OCRBENCH_HME = "Handwritten Mathematical Expression Recognition"


def ocrbench_hit(prediction: str, answers: Sequence[str], category: str) -> bool:
    """An answer occurs in the prediction: lower-cased, or, for formulas, with spaces removed (case kept)."""
    pred = str(prediction)
    for answer in answers:
        if category == OCRBENCH_HME:
            if answer.strip().replace("\n", " ").replace(" ", "") in pred.strip().replace("\n", " ").replace(" ", ""):
                return True
        elif answer.lower().strip().replace("\n", " ") in pred.lower().strip().replace("\n", " "):
            return True
    return False


# -- MM-Vet grading ----------------------------------------------------------------------------------

_MMVET_EXAMPLES = """
Compare the ground truth and prediction from AI models, to give a correctness score for the prediction.
<AND> in the ground truth means it is totally right
only when all elements in the ground truth are present in the prediction,
and <OR> means it is totally right when any one element in the ground truth is present in the prediction.
The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right).
Just complete the last space of the correctness score.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0
What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries
Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes,
while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues
because the names of these countries do not accurately represent their landscapes. |
The meme talks about Iceland and Greenland. It's pointing out that despite their names,
Iceland is not very icy and Greenland isn't very green. | 0.4
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries
Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes,
while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues
because the names of these countries do not accurately represent their landscapes. |
The meme is using humor to point out the misleading nature of Iceland's and Greenland's names.
Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow.
The text 'This is why I have trust issues' is a playful way to suggest
that these contradictions can lead to distrust or confusion.
The humor in this meme is derived from the unexpected contrast between the names of the countries
and their actual physical characteristics. | 1.0
"""


def mmvet_judge_prompt(question: str, answer: str, prediction: str) -> str:
    """The few-shot grading prompt MM-Vet is scored with (0.0-1.0)."""
    gt = str(answer).replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    return _MMVET_EXAMPLES + "\n" + " | ".join([question, gt, str(prediction), ""])


def parse_grade(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None

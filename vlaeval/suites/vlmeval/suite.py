"""Dataset suites for the general multimodal benchmarks, read from VLMEvalKit TSVs.

Tasks are the TSV's categories (``category`` column; ``all`` when there is none) and an
episode is one row. The model gets the row's images and a prompt built the way
VLMEvalKit's dataset builds it (``prompt=vlmevalkit``, default) or the way InstructVLA's
model wrapper does (``prompt=instructvla``). Scoring is native and deterministic
(:mod:`~vlaeval.suites.vlmeval.scoring`); ``scoring=instructvla`` selects the rules of the
VLMEvalKit fork InstructVLA reported with. An LLM judge is used only where VLMEvalKit
uses one (MM-Vet; MCQ / yes-no answers the rules cannot read) and only when configured
(:mod:`~vlaeval.suites.vlmeval.judge`). ``backend=vlmeval`` additionally hands the stored
predictions to an installed VLMEvalKit (:mod:`~vlaeval.suites.vlmeval.delegate`).

Protocol parameters (all recorded with the results):

``data_dir``   directory holding ``<NAME>.tsv`` (default ``$VLAEVAL_MM_DATA``, then ``$LMUData``)
``tsv``        explicit TSV path (overrides ``data_dir``)
``md5``        ``pinned`` (refuse a TSV whose md5 is not VLMEvalKit's), ``off``, or an md5 to require
``prompt``     ``vlmevalkit`` | ``instructvla``
``scoring``    ``vlmevalkit`` | ``instructvla``
``judge``, ``judge_base_url``   LLM judge (empty: offline; see :mod:`.judge`)
``backend``    ``native`` | ``vlmeval``
``max_new_tokens``, ``system_prompt``   generation options passed to the model

Per item (stored): ``hit`` (MCQ, yes/no, OCRBench) or ``score`` (VQA metrics 0-1, MM-Vet
grade), ``judged`` (0 when the item needed a judge and none was configured: then it has no
``hit``/``score``), ``hit_exact_matching`` (MCQ, yes/no: right by the rules alone), and the
answer, extracted option, method (``rule``/``judge``/``judge_failed``/``none``) and the TSV
fields corpus scoring needs. ``success`` is ``hit``/``score`` >= 0.5 on a judged item, so an
unjudged item reads as a failure in success rates. Corpus scores:
:mod:`~vlaeval.suites.vlmeval.aggregate`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from vlaeval.harness.specs import EpisodeResult, EpisodeSpec, SuiteSpec, TaskSpec
from vlaeval.harness.suite import Selection, SelectionError
from vlaeval.harness.text import DatasetSuite, Sample, TextRequest
from vlaeval.suites.vlmeval import aggregate, scoring
from vlaeval.suites.vlmeval.datasets import BENCHMARKS, Benchmark
from vlaeval.suites.vlmeval.judge import Judge, judge_from_protocol
from vlaeval.suites.vlmeval.tsv import (
    OPTION_LETTERS,
    DataMissing,
    TsvData,
    as_list,
    file_md5,
    is_missing,
    load_tsv,
    options,
)

SUITE_VERSION = "1"
DATA_ENV = "VLAEVAL_MM_DATA"

DEFAULT_PROTOCOL: dict[str, Any] = {
    "data_dir": "",
    "tsv": "",
    "md5": "pinned",
    "prompt": "vlmevalkit",
    "scoring": "vlmevalkit",
    "judge": "",
    "judge_base_url": "",
    "backend": "native",
    "max_new_tokens": 512,
    "system_prompt": "",
}
VQA_SUFFIX = "\nAnswer the question using a single word or phrase."
IVLA_MCQ_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
IVLA_MCQ_SUFFIX_CN = "\n请直接回答选项字母。"
IVLA_OPEN_SUFFIX = "\nAnswer the question directly."
IVLA_OPEN_SUFFIX_CN = "\n请直接回答问题。"
_CJK = re.compile(r"[\u4e00-\u9fff]")
PROMPT_STYLES = ("vlmevalkit", "instructvla")
BACKENDS = ("native", "vlmeval")
MCQ_JUDGE_TRIES = 3
GRADE_TRIES = 5


def tsv_path(bench: Benchmark, protocol: dict[str, Any]) -> tuple[Path | None, str]:
    """Where the suite reads its TSV, and how to describe that place in an error."""
    if protocol.get("tsv"):
        return Path(str(protocol["tsv"])).expanduser(), str(protocol["tsv"])
    root = protocol.get("data_dir") or os.environ.get(DATA_ENV) or ""
    if not root and os.environ.get("LMUData") and Path(os.environ["LMUData"]).is_dir():
        root = os.environ["LMUData"]
    if not root:
        return None, f"${DATA_ENV}/{bench.name}.tsv"
    path = Path(str(root)).expanduser() / f"{bench.name}.tsv"
    return path, str(path)


class VLMEvalSuite(DatasetSuite):
    batch_size = 8

    def __init__(self, benchmark: Benchmark):
        self.bench = benchmark
        self.spec = SuiteSpec(name=benchmark.suite, version=SUITE_VERSION, backend="dataset",
                              protocol=dict(DEFAULT_PROTOCOL), description=benchmark.description)
        self._active = dict(self.spec.protocol)
        self._loaded: dict[tuple[str, str], tuple[TsvData, dict[str, list[int]]]] = {}

    # -- data ------------------------------------------------------------------------------
    def episodes(self, selection: Selection) -> list[EpisodeSpec]:
        protocol = self.protocol(selection.protocol_overrides)
        for key, allowed in (("prompt", PROMPT_STYLES), ("scoring", scoring.VARIANTS), ("backend", BACKENDS)):
            if protocol.get(key) not in allowed:
                raise SelectionError(f"{key} must be one of {', '.join(allowed)}, not {protocol.get(key)!r}")
        self._active = protocol
        self.data()  # missing or altered data: one clear error before anything runs
        return super().episodes(selection)

    def data(self, protocol: dict[str, Any] | None = None) -> tuple[TsvData, dict[str, list[int]]]:
        """The TSV (md5-checked) and, per task, the row positions in file order."""
        protocol = protocol or self._active
        path, shown = tsv_path(self.bench, protocol)
        if path is None or not path.is_file():
            raise DataMissing(
                f"{self.bench.suite}: no {self.bench.name} data at {shown}; download {self.bench.url} "
                f"(md5 {self.bench.md5}) there, or point --protocol data_dir=DIR / ${DATA_ENV} at its folder"
            )
        wanted = str(protocol.get("md5") or "pinned")
        ident = (str(path.resolve()), wanted)
        if ident not in self._loaded:
            expected = self.bench.md5 if wanted == "pinned" else wanted
            if wanted != "off":
                actual = file_md5(path)
                if actual != expected:
                    raise DataMissing(
                        f"{self.bench.suite}: {path} has md5 {actual}, expected {expected} "
                        f"({self.bench.url}); pass --protocol md5=off to evaluate a different copy"
                    )
            data = load_tsv(path)
            tasks: dict[str, list[int]] = {}
            for pos, row in enumerate(data.rows):
                tasks.setdefault(self._task_of(row), []).append(pos)
            self._loaded[ident] = (data, dict(sorted(tasks.items())))
        return self._loaded[ident]

    @staticmethod
    def _task_of(row: dict[str, Any]) -> str:
        category = row.get("category")
        return "all" if is_missing(category) or str(category) == "" else str(category)

    def tasks(self) -> list[TaskSpec]:
        """One task per category; none while the data is missing (``episodes`` then says why)."""
        try:
            _, tasks = self.data()
        except DataMissing:
            return []
        return [
            TaskSpec(suite=self.spec.name, task_id=name, instruction=f"{self.bench.name}: {name}", index=i,
                     n_init_states=len(positions), max_steps=1, group=self.bench.kind)
            for i, (name, positions) in enumerate(tasks.items())
        ]

    def _row(self, episode: EpisodeSpec) -> tuple[TsvData, dict[str, Any]]:
        data, tasks = self.data(episode.protocol)
        positions = tasks.get(episode.task_id)
        if positions is None or episode.episode_index >= len(positions):
            raise DataMissing(f"{self.bench.suite}: no item {episode.episode_index} in task {episode.task_id!r}")
        return data, data.rows[positions[episode.episode_index]]

    # -- prompts ---------------------------------------------------------------------------
    def prompt(self, row: dict[str, Any], style: str) -> str:
        if style not in ("vlmevalkit", "instructvla"):
            raise ValueError(f"prompt must be vlmevalkit or instructvla, not {style!r}")
        question = str(row["question"])
        kind = self.bench.kind
        if kind == "mcq":
            return (_mcq_prompt_vek if style == "vlmevalkit" else _mcq_prompt_ivla)(row)
        if style == "vlmevalkit":
            return question + VQA_SUFFIX if kind == "vqa" else question
        if kind == "yorn":
            if self.bench.suite == "mme":
                return question + " Answer the question using a single word or phrase."
            return question + " Please answer yes or no. Answer the question using a single word or phrase."
        if kind in ("vqa", "ocrbench"):
            return question + VQA_SUFFIX
        return question

    def sample(self, episode: EpisodeSpec) -> Sample:
        data, row = self._row(episode)
        protocol = episode.protocol
        request = TextRequest(
            prompt=self.prompt(row, str(protocol.get("prompt", "vlmevalkit"))),
            images=data.row_images(row),
            options={"max_new_tokens": int(protocol.get("max_new_tokens") or 512),
                     "system_prompt": str(protocol.get("system_prompt") or "")},
        )
        references = [str(row["answer"])] if self.bench.kind in ("mcq", "yorn", "mmvet") else as_list(row["answer"])
        meta = {k: _plain(row.get(k)) for k in ("index", "category", "l2-category", "split") if k in row}
        if self.bench.circular and _is_int(row.get("index")):
            meta["g_index"] = int(float(row["index"])) % 1_000_000
        if self.bench.suite == "mme":
            meta["image_id"] = (str(row["image_path"]) if not is_missing(row.get("image_path"))
                                else hashlib.md5(str(data.images.get(str(row["index"]), "")).encode()).hexdigest())
        return Sample(request, references=references, extra={"row": row, "meta": meta, "data_md5": data.md5})

    # -- scoring ---------------------------------------------------------------------------
    def score(self, sample: Sample, answer: str, episode: EpisodeSpec) -> EpisodeResult:
        protocol = episode.protocol
        variant = str(protocol.get("scoring", "vlmevalkit"))
        judge = judge_from_protocol(protocol)
        row = sample.extra["row"]
        kind = self.bench.kind
        outputs: dict[str, Any] = {"answer": answer, "references": sample.references, "prompt": sample.request.prompt,
                                   "meta": sample.extra["meta"], "data_md5": sample.extra["data_md5"],
                                   "judge": judge.model if judge else ""}
        if kind == "mcq":
            metrics = self._score_mcq(row, answer, variant, judge, outputs)
        elif kind == "yorn":
            metrics = self._score_yorn(row, answer, variant, judge, outputs)
        elif kind == "vqa":
            metric = self.bench.vqa_metric
            refs = sample.references
            value = (scoring.vqa_score(answer, refs) if metric == "vqa_score"
                     else scoring.anls(answer, refs) if metric == "anls"
                     else scoring.relaxed_accuracy(answer, refs, variant) if metric == "relaxed_accuracy"
                     else scoring.exact_accuracy(answer, refs))
            metrics = {"score": float(value), "judged": 1}
        elif kind == "ocrbench":
            metrics = {"hit": float(scoring.ocrbench_hit(answer, sample.references, str(row.get("category")))),
                       "judged": 1}
        else:
            metrics = self._score_mmvet(row, answer, judge, outputs)
        value = metrics.get("hit", metrics.get("score"))
        success = bool(metrics.get("judged")) and value is not None and value >= 0.5
        return EpisodeResult(status="success" if success else "failure", success=success, steps=1,
                             metrics=metrics, outputs=outputs)

    def _score_mcq(self, row: dict[str, Any], answer: str, variant: str, judge: Judge | None,
                   outputs: dict[str, Any]) -> dict[str, Any]:
        choices = options(row)
        truth = str(row["answer"])
        if self.bench.suite == "mmmu" and "A" not in choices:  # open question: VLMEvalKit's 2-option rewrite
            choices = {"A": truth, "B": "Other Answers"}
        if self.bench.suite == "mmmu" and truth not in OPTION_LETTERS:  # VLMEvalKit: a non-letter answer -> A
            truth = "A"
        extracted = scoring.can_infer(answer, choices, variant)
        method = "rule" if extracted else "none"
        if extracted is None and judge is not None:
            prompt = scoring.mcq_judge_prompt(str(row["question"]), choices, answer)
            for attempt in range(MCQ_JUDGE_TRIES):
                reply = judge.generate(prompt, attempt=attempt)
                extracted = scoring.can_infer(reply, choices, variant)
                if extracted:
                    method = "judge"
                    break
            else:
                method = "judge_failed"
        outputs.update(extracted=extracted or "", method=method, truth=truth)
        metrics: dict[str, Any] = {"judged": int(extracted is not None),
                                   "hit_exact_matching": float(method == "rule" and extracted == truth)}
        if extracted is not None:
            metrics["hit"] = float(extracted == truth)
        return metrics

    def _score_yorn(self, row: dict[str, Any], answer: str, variant: str, judge: Judge | None,
                    outputs: dict[str, Any]) -> dict[str, Any]:
        truth = str(row["answer"])
        extracted = scoring.yorn_extract(answer, variant)
        method = "rule" if extracted != "Unknown" else "none"
        if extracted == "Unknown" and judge is not None:
            prompt = scoring.yorn_judge_prompt(str(row["question"]), answer)
            for attempt in range(GRADE_TRIES):
                extracted = scoring.yorn_extract(judge.generate(prompt, temperature=0.5 * attempt, attempt=attempt),
                                                 variant)
                if extracted != "Unknown":
                    method = "judge"
                    break
            else:
                method = "judge_failed"
        outputs.update(extracted=extracted, method=method)
        known = extracted != "Unknown"
        metrics: dict[str, Any] = {"judged": int(known),
                                   "hit_exact_matching": float(method == "rule" and extracted == truth)}
        if known:
            metrics["hit"] = float(extracted == truth)
        return metrics

    def _score_mmvet(self, row: dict[str, Any], answer: str, judge: Judge | None,
                     outputs: dict[str, Any]) -> dict[str, Any]:
        if judge is None:
            outputs.update(method="none")
            return {"judged": 0}
        prompt = scoring.mmvet_judge_prompt(str(row["question"]), str(row["answer"]), answer)
        log = []
        for attempt in range(GRADE_TRIES):
            reply = judge.generate(prompt, temperature=0.5 * attempt, attempt=attempt)
            grade = scoring.parse_grade(reply)
            if grade is not None:
                outputs.update(method="judge", judge_log=log + [reply])
                return {"judged": 1, "score": grade}
            log.append(reply)
        outputs.update(method="judge_failed", judge_log=log)
        return {"judged": 1, "score": 0.0, "judge_failed": 1}  # VLMEvalKit's rule after 5 unusable grades

    # -- corpus ----------------------------------------------------------------------------
    def headline(self) -> tuple[str, str]:
        return self.bench.column or self.bench.suite, self.bench.primary

    def corpus_metrics(self, episodes: list[dict[str, Any]]) -> dict[str, float]:
        rows = [e for e in episodes if e.get("suite", self.spec.name) == self.spec.name]
        done = [e for e in rows if e.get("status") != "error"]
        items = [(e.get("metrics") or {}, (e.get("outputs") or {}).get("meta") or {}) for e in done]
        kind = self.bench.kind
        if kind == "mcq":
            out = aggregate.mcq(items, circular=self.bench.circular)
        elif kind == "yorn":
            out = aggregate.mme(items) if self.bench.suite == "mme" else (
                aggregate.hallusion(items) if self.bench.suite == "hallusionbench" else aggregate.yorn(items))
        elif kind == "vqa":
            out = aggregate.vqa(items)
        elif kind == "ocrbench":
            out = aggregate.ocrbench(items)
        else:
            out = aggregate.mmvet(items)
        out["n_error"] = float(len(rows) - len(done))
        protocol = (done[0].get("protocol") if done else None) or self._active
        if str(protocol.get("backend", "native")) == "vlmeval" and done:
            from vlaeval.suites.vlmeval.delegate import delegate_scores

            data, _ = self.data(protocol)
            predictions = {str((e.get("outputs") or {}).get("meta", {}).get("index")): e["outputs"]["answer"]
                           for e in done}
            for key, value in delegate_scores(self.bench, data, predictions, protocol).items():
                out[f"vlmeval/{key}"] = value
        return out


def _plain(value: Any) -> Any:
    if is_missing(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _is_int(value: Any) -> bool:
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError):
        return False


def _mcq_prompt_vek(row: dict[str, Any]) -> str:
    choices = options(row)
    prompt = f"Hint: {row['hint']}\n" if not is_missing(row.get("hint")) else ""
    prompt += f"Question: {row['question']}\n"
    if choices:
        prompt += "Options:\n" + "".join(f"{k}. {v}\n" for k, v in choices.items())
        prompt += "Please select the correct answer from the options above. \n"
    return prompt


def _mcq_prompt_ivla(row: dict[str, Any]) -> str:
    question = str(row["question"])
    if not is_missing(row.get("hint")):
        question = f"{row['hint']}\n{question}"
    choices = options(row)
    for key, value in choices.items():
        question += f"\n{key}. {value}"
    cjk = bool(_CJK.search(question))
    if choices:
        return question + (IVLA_MCQ_SUFFIX_CN if cjk else IVLA_MCQ_SUFFIX)
    return question + (IVLA_OPEN_SUFFIX_CN if cjk else IVLA_OPEN_SUFFIX)


def make_suite(name: str) -> VLMEvalSuite:
    return VLMEvalSuite(BENCHMARKS[name])


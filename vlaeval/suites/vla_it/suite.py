"""VLA-IT embodied language suites: captioning, QA and instruction response on first frames.

Follows InstructVLA's evaluation (``mm_evaluation/VLA_IT_InstructVLA.py`` + ``Evaluator.py``):
one image (the episode's first frame) and one single-turn prompt per item, system prompt
"You are a helpful assistant.", greedy decoding.

* ``caption``: the fixed prompt "Describe what’s on the table. Don’t mention the robot arm."
  (typographic apostrophes, as published) against ``annotation.Caption``.
* ``qa``: ``annotation.QA[0].question`` verbatim against its answer.
* ``instruction``: ``annotation.CC[0].question`` (context creation) verbatim against its answer
  (``instruction_field=CR`` uses the command-rewrite entries instead).

``prompt_template=train_style`` wraps instruction questions the way InstructVLA's training
does ("What action should the robot take to {question}? First answer my question.");
any other string containing ``{question}`` is used as the template.

Per item (stored with the episode): ``exact_match``, ``refined_exact_match`` and the cosine
similarity of sentence embeddings (``sbert`` = all-mpnet-base-v2 when cached locally,
otherwise ``sbert_minilm``; ``simcse`` when its weights are cached), all on InstructVLA's
normalised text (:func:`~vlaeval.suites.mm.metrics.ivla_normalize`). ``success`` mirrors
refined EM. Per task kind (:meth:`VlaItSuite.corpus_metrics`, from stored outputs): BLEU-1..4,
METEOR, ROUGE-L, CIDEr over the whole kind (CIDEr's IDF depends on the set scored, so kinds are
never merged), and the means (with standard errors) of the per-item metrics. Scales are
InstructVLA's printed ones: 0-1, CIDEr 0-10 (the paper's tables show x100, CIDEr as is).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vlaeval.harness.specs import EpisodeResult, EpisodeSpec, SuiteSpec, TaskSpec
from vlaeval.harness.suite import Selection, SelectionError
from vlaeval.harness.text import DatasetSuite, Sample, TextRequest
from vlaeval.suites.mm import metrics as mm
from vlaeval.suites.vla_it import data as vdata

log = logging.getLogger(__name__)
_WARNED: set[str] = set()

SUITE_VERSION = "1"
CAPTION_PROMPT = "Describe what\u2019s on the table. Don\u2019t mention the robot arm."
SYSTEM_PROMPT = "You are a helpful assistant."
TRAIN_STYLE = "What action should the robot take to {question}? First answer my question."
PER_ITEM = ("exact_match", "refined_exact_match")
KIND_INSTRUCTIONS = {
    "caption": CAPTION_PROMPT,
    "qa": "answer a question about the scene",
    "instruction": "respond to an instruction given in context",
}

DEFAULT_PROTOCOL: dict[str, Any] = {
    "data_dir": "",
    "annotation": "",
    "entry_index": 0,
    "instruction_field": "CC",
    "prompt_template": "compat",
    "caption_prompt": CAPTION_PROMPT,
    "system_prompt": SYSTEM_PROMPT,
    "max_new_tokens": 256,
    "max_length": 1024,
    "sbert_model": "auto",
    "simcse_model": "auto",
    "tokenizer": "auto",
    "meteor": "auto",
}


class VlaItSuite(DatasetSuite):
    batch_size = 8

    def __init__(self, name: str, kinds: tuple[str, ...], description: str):
        self.kinds = kinds
        self.umbrella = len(kinds) > 1
        self.spec = SuiteSpec(name=name, version=SUITE_VERSION, backend="dataset", protocol=dict(DEFAULT_PROTOCOL),
                              description=description)
        self._active = dict(self.spec.protocol)
        self._cache: dict[tuple[Any, ...], vdata.VlaItData] = {}

    # -- data -------------------------------------------------------------------------------
    def episodes(self, selection: Selection) -> list[EpisodeSpec]:
        protocol = self.protocol(selection.protocol_overrides)
        template = str(protocol.get("prompt_template") or "compat")
        if template not in ("compat", "train_style") and "{question}" not in template:
            raise SelectionError(f"prompt_template must be compat, train_style or contain {{question}}: {template!r}")
        self._check_models(protocol)
        self._active = protocol
        self._tasks(strict=True)  # missing data: one clear error before anything runs
        return super().episodes(selection)

    def data(self, protocol: dict[str, Any] | None = None) -> vdata.VlaItData:
        protocol = protocol or self._active
        root = vdata.resolve_root(protocol)
        ident = (str(root.resolve()), str(protocol.get("annotation") or ""), int(protocol.get("entry_index") or 0),
                 str(protocol.get("instruction_field") or "CC"))
        if ident not in self._cache:
            self._cache[ident] = vdata.load(root, ident[1], ident[2], ident[3])
        return self._cache[ident]

    def tasks(self) -> list[TaskSpec]:
        """Tasks ``<subset>`` (``<kind>/<subset>`` for ``vla-it``); none while the data is missing."""
        return self._tasks(strict=False)

    def _tasks(self, strict: bool) -> list[TaskSpec]:
        try:
            data = self.data()
        except vdata.DataMissing:
            if strict:
                raise
            return []
        out: list[TaskSpec] = []
        for kind in self.kinds:
            for subset in data.subsets(kind):
                out.append(TaskSpec(
                    suite=self.spec.name,
                    task_id=f"{kind}/{subset}" if self.umbrella else subset,
                    instruction=KIND_INSTRUCTIONS[kind],
                    index=len(out),
                    n_init_states=len(data.get(kind, subset)),
                    max_steps=1,
                    group=kind,
                ))
        if not out and strict:
            raise vdata.DataMissing(
                f"{self.spec.name}: the VLA-IT data in {data.root} has no {'/'.join(self.kinds)} items "
                f"(skipped: {data.skipped})"
            )
        return out

    def kind_and_subset(self, task_id: str) -> tuple[str, str]:
        if self.umbrella:
            kind, _, subset = task_id.partition("/")
            return kind, subset
        return self.kinds[0], task_id

    # -- prompts / samples ------------------------------------------------------------------
    @staticmethod
    def prompt(item: vdata.Item, protocol: dict[str, Any]) -> str:
        if item.kind == "caption":
            return str(protocol.get("caption_prompt") or CAPTION_PROMPT)
        template = str(protocol.get("prompt_template") or "compat")
        if template == "compat" or (template == "train_style" and item.kind == "qa"):
            return item.question
        if template == "train_style":
            return TRAIN_STYLE.format(question=item.question)
        if "{question}" not in template:
            raise SelectionError(f"prompt_template must be compat, train_style or contain {{question}}: {template!r}")
        return template.format(question=item.question)

    def sample(self, episode: EpisodeSpec) -> Sample:
        kind, subset = self.kind_and_subset(episode.task_id)
        items = self.data(episode.protocol).get(kind, subset)
        if episode.episode_index >= len(items):
            raise vdata.DataMissing(f"{self.spec.name}: no item {episode.episode_index} in {episode.task_id!r}")
        item = items[episode.episode_index]
        from PIL import Image

        with Image.open(item.image) as image:
            pixels = np.asarray(image.convert("RGB"))
        protocol = episode.protocol
        request = TextRequest(
            prompt=self.prompt(item, protocol),
            images=[pixels],
            options={"max_new_tokens": int(protocol.get("max_new_tokens") or 256),
                     "system_prompt": str(protocol.get("system_prompt") or "")},
        )
        extra = {"item": item, "data": self.data(protocol).fingerprint}
        return Sample(request, references=[item.answer], extra=extra)

    # -- scoring ----------------------------------------------------------------------------
    def _check_models(self, protocol: dict[str, Any]) -> None:
        """Explicitly requested embedding models must load before any sample is run."""
        for spec, loader in ((protocol.get("sbert_model"), mm.load_sbert),
                             (protocol.get("simcse_model"), mm.load_simcse)):
            if spec not in ("auto", "off", None, ""):
                try:
                    loader(str(spec))
                except mm.EmbedderUnavailable as exc:
                    raise SelectionError(str(exc)) from None

    @staticmethod
    def embedders(protocol: dict[str, Any]) -> list[mm.Embedder]:
        out = []
        for spec, loader in ((protocol.get("sbert_model") or "auto", mm.load_sbert),
                             (protocol.get("simcse_model") or "auto", mm.load_simcse)):
            try:
                embedder = loader(str(spec))
            except mm.EmbedderUnavailable as exc:
                if spec != "auto":
                    raise
                if str(exc) not in _WARNED:
                    _WARNED.add(str(exc))
                    log.warning("embedding similarity left out: %s", exc)
                embedder = None
            if embedder is not None:
                out.append(embedder)
        return out

    def score(self, sample: Sample, answer: str, episode: EpisodeSpec) -> EpisodeResult:
        protocol = episode.protocol
        item: vdata.Item = sample.extra["item"]
        max_length = int(protocol.get("max_length") or 1024)
        pred = mm.ivla_normalize(answer, max_length)
        refs = [mm.ivla_normalize(r, max_length) for r in sample.references]
        metrics: dict[str, Any] = {
            "exact_match": mm.exact_match(pred, refs),
            "refined_exact_match": mm.refined_exact_match(pred, refs),
        }
        models = {}
        for embedder in self.embedders(protocol):
            metrics[embedder.key] = embedder.similarities([pred], [refs])[0]
            models[embedder.key] = embedder.model_id
        success = bool(metrics["refined_exact_match"])
        outputs = {"answer": answer, "references": list(sample.references), "key": item.key,
                   "prompt": sample.request.prompt, "normalized_answer": pred, "normalized_references": refs,
                   "embedding_models": models, "data_fingerprint": sample.extra.get("data", "")}
        return EpisodeResult(status="success" if success else "failure", success=success, steps=1,
                             metrics=metrics, outputs=outputs)

    # -- corpus -----------------------------------------------------------------------------
    def headline(self) -> tuple[str, str] | None:
        """CIDEr of a single-kind suite (the umbrella mixes kinds: its cell stays the success rate)."""
        return None if self.umbrella else (self.spec.name, "CIDEr")

    def corpus_metrics(self, episodes: list[dict[str, Any]]) -> dict[str, float]:
        """Per task kind (and per subset when there are several): coco metrics + per-item means."""
        rows = [e for e in episodes if e.get("suite", self.spec.name) == self.spec.name]
        protocol = next((e.get("protocol") for e in rows if e.get("protocol")), None) or self._active
        out: dict[str, float] = {}
        for kind in self.kinds:
            mine = [e for e in rows if self.kind_and_subset(e["task_id"])[0] == kind]
            if not mine:
                continue
            prefix = f"{kind}/" if self.umbrella else ""
            out.update(self._block(mine, protocol, prefix))
            subsets = sorted({self.kind_and_subset(e["task_id"])[1] for e in mine})
            if len(subsets) > 1:
                for subset in subsets:
                    sub = [e for e in mine if self.kind_and_subset(e["task_id"])[1] == subset]
                    out.update(self._block(sub, protocol, f"{prefix}{subset}/"))
        return out

    @staticmethod
    def _block(rows: list[dict[str, Any]], protocol: dict[str, Any], prefix: str) -> dict[str, float]:
        done = [e for e in rows if e.get("status") != "error"]
        out: dict[str, float] = {f"{prefix}n": float(len(done)), f"{prefix}n_error": float(len(rows) - len(done))}
        if not done:
            return out
        max_length = int(protocol.get("max_length") or 1024)
        predictions, references = {}, {}
        for e in done:
            ident = f"{e['task_id']}#{e['episode_index']}#{e.get('seed', 0)}"
            outputs = e.get("outputs") or {}
            predictions[ident] = mm.ivla_normalize(outputs.get("answer", ""), max_length)
            references[ident] = [mm.ivla_normalize(r, max_length) for r in outputs.get("references", [])]
        coco = mm.caption_scores(predictions, references, tokenizer=str(protocol.get("tokenizer") or "auto"),
                                 meteor=str(protocol.get("meteor") or "auto"))
        for name, value in coco.scores.items():
            out[prefix + name] = value
        out[prefix + "ptb_java"] = float(coco.info.get("ptb_java", False))
        names = sorted({k for e in done for k in (e.get("metrics") or {})})
        for name in names:
            values = [e["metrics"][name] for e in done if name in e.get("metrics", {})]
            mean, se = mm.mean_and_se(values)
            out[prefix + name] = mean
            out[prefix + name + "_se"] = se
        return out


def export_ivla_predictions(episodes: list[dict[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write InstructVLA's prediction files (cap.json, qa.json, instruct.json: ``{key, response, gt}``).

    So the same answers can be scored by InstructVLA's own ``Evaluator.py`` for a cross-check.
    """
    names = {"caption": "cap.json", "qa": "qa.json", "instruction": "instruct.json"}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grouped: dict[str, list[dict[str, str]]] = {}
    for e in episodes:
        if e.get("status") == "error" or not str(e.get("suite", "")).startswith("vla-it"):
            continue
        kind = e["task_id"].partition("/")[0] if e["suite"] == "vla-it" else e["suite"].removeprefix("vla-it-")
        outputs = e.get("outputs") or {}
        grouped.setdefault(kind, []).append({"key": outputs.get("key", ""), "response": outputs.get("answer", ""),
                                             "gt": (outputs.get("references") or [""])[0]})
    written = {}
    for kind, rows in grouped.items():
        path = out_dir / names.get(kind, f"{kind}.json")
        path.write_text(json.dumps(rows, indent=4, ensure_ascii=False))
        written[kind] = path
    return written

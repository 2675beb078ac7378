"""General multimodal benchmarks in VLMEvalKit's TSV format (MMMU, MMStar, MME, OCRBench, ...).

See :mod:`vlaeval.suites.vlmeval.suite` for the protocol and :mod:`.scoring` for the rules.
"""

from __future__ import annotations

from vlaeval.suites.vlmeval.datasets import BENCHMARKS, Benchmark
from vlaeval.suites.vlmeval.suite import VLMEvalSuite, make_suite


def make_mmmu() -> VLMEvalSuite:
    return make_suite("mmmu")


def make_mmstar() -> VLMEvalSuite:
    return make_suite("mmstar")


def make_ai2d() -> VLMEvalSuite:
    return make_suite("ai2d")


def make_realworldqa() -> VLMEvalSuite:
    return make_suite("realworldqa")


def make_scienceqa() -> VLMEvalSuite:
    return make_suite("scienceqa")


def make_mmbench() -> VLMEvalSuite:
    return make_suite("mmbench")


def make_mme() -> VLMEvalSuite:
    return make_suite("mme")


def make_hallusionbench() -> VLMEvalSuite:
    return make_suite("hallusionbench")


def make_ocrbench() -> VLMEvalSuite:
    return make_suite("ocrbench")


def make_chartqa() -> VLMEvalSuite:
    return make_suite("chartqa")


def make_textvqa() -> VLMEvalSuite:
    return make_suite("textvqa")


def make_docvqa() -> VLMEvalSuite:
    return make_suite("docvqa")


def make_infovqa() -> VLMEvalSuite:
    return make_suite("infovqa")


def make_mmvet() -> VLMEvalSuite:
    return make_suite("mmvet")


__all__ = ["BENCHMARKS", "Benchmark", "VLMEvalSuite", "make_suite"] + [f"make_{name}" for name in BENCHMARKS]

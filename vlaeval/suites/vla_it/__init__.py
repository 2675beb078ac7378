"""VLA-IT (InstructVLA) embodied language suites: ``vla-it-caption``, ``vla-it-qa``,
``vla-it-instruction`` and ``vla-it`` (all three; tasks ``caption/<subset>``, ...).

Data: InstructVLA's validation assets or any directory in the same schema
(:mod:`vlaeval.suites.vla_it.data`), found through ``--protocol data_dir=DIR`` or
``$VLAEVAL_VLA_IT_DATA``; :mod:`vlaeval.suites.vla_it.build` makes such a directory from a
recorded run. Prompts and metrics: :mod:`vlaeval.suites.vla_it.suite`.
"""

from __future__ import annotations

from vlaeval.suites.vla_it.suite import (CAPTION_PROMPT, SYSTEM_PROMPT, VlaItSuite,
                                         export_ivla_predictions)


def make_vla_it_caption() -> VlaItSuite:
    return VlaItSuite("vla-it-caption", ("caption",), "VLA-IT scene captioning on first frames (InstructVLA)")


def make_vla_it_qa() -> VlaItSuite:
    return VlaItSuite("vla-it-qa", ("qa",), "VLA-IT scene question answering (InstructVLA)")


def make_vla_it_instruction() -> VlaItSuite:
    return VlaItSuite("vla-it-instruction", ("instruction",),
                      "VLA-IT instruction response, context creation (InstructVLA)")


def make_vla_it() -> VlaItSuite:
    return VlaItSuite("vla-it", ("caption", "qa", "instruction"), "VLA-IT caption + QA + instruction (InstructVLA)")


__all__ = ["CAPTION_PROMPT", "SYSTEM_PROMPT", "VlaItSuite", "export_ivla_predictions", "make_vla_it",
           "make_vla_it_caption", "make_vla_it_instruction", "make_vla_it_qa"]

"""The general multimodal benchmarks, as VLMEvalKit distributes them (one TSV each).

Names, download URLs and md5 sums are VLMEvalKit's (identical in upstream and in
InstructVLA's fork); a TSV whose md5 differs is refused unless ``md5=off``.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE = "https://opencompass.openxlab.space/utils"


@dataclass(frozen=True)
class Benchmark:
    suite: str
    """vlaeval suite name."""
    name: str
    """VLMEvalKit dataset name = TSV file stem."""
    kind: str
    """``mcq``, ``yorn``, ``vqa``, ``ocrbench`` or ``mmvet``."""
    url: str
    md5: str
    vqa_metric: str = ""
    """For ``vqa``: ``vqa_score`` (TextVQA), ``anls`` (DocVQA, InfoVQA), ``relaxed_accuracy`` (ChartQA)."""
    circular: bool = False
    """MMBench: option-rotated copies (index k*1e6 + g); a question counts only if every rotation is right."""
    description: str = ""
    primary: str = "Overall"
    """The corpus metric that the papers report."""
    column: str = ""
    """Leaderboard column (the benchmark's name in published tables); default: the suite name."""


BENCHMARKS: dict[str, Benchmark] = {
    b.suite: b
    for b in [
        Benchmark("mmmu", "MMMU_DEV_VAL", "mcq", f"{BASE}/VLMEval/MMMU_DEV_VAL.tsv", "585e8ad75e73f75dcad265dfd0417d64",
                  description="MMMU dev+val (papers report the validation split)", primary="Overall_validation",
                  column="mmmu-val"),
        Benchmark("mmstar", "MMStar", "mcq", f"{BASE}/VLMEval/MMStar.tsv", "e1ecd2140806c1b1bbf54b43372efb9e",
                  description="MMStar multiple choice"),
        Benchmark("ai2d", "AI2D_TEST", "mcq", f"{BASE}/VLMEval/AI2D_TEST.tsv", "0f593e0d1c7df9a3d69bf1f947e71975",
                  description="AI2D diagrams, test split"),
        Benchmark("realworldqa", "RealWorldQA", "mcq", f"{BASE}/VLMEval/RealWorldQA.tsv",
                  "4de008f55dc4fd008ca9e15321dc44b7", description="RealWorldQA multiple choice"),
        Benchmark("scienceqa", "ScienceQA_TEST", "mcq", f"{BASE}/benchmarks/ScienceQA/ScienceQA_TEST.tsv",
                  "e42e9e00f9c59a80d8a5db35bc32b71f", description="ScienceQA (image questions), test split"),
        Benchmark("mmbench", "MMBench_DEV_EN_V11", "mcq", f"{BASE}/benchmarks/MMBench/MMBench_DEV_EN_V11.tsv",
                  "30c05be8f2f347a50be25aa067248184", circular=True,
                  description="MMBench dev-en v1.1, circular evaluation", column="mmbench-dev-en-v1.1"),
        Benchmark("mme", "MME", "yorn", f"{BASE}/VLMEval/MME.tsv", "b36b43c3f09801f5d368627fb92187c3",
                  description="MME yes/no; perception and reasoning scores (acc + acc+)", primary="perception",
                  column="mme-p"),
        Benchmark("hallusionbench", "HallusionBench", "yorn", f"{BASE}/VLMEval/HallusionBench.tsv",
                  "0c23ac0dc9ef46832d7a24504f2a0c7c", description="HallusionBench yes/no; aAcc, fAcc, qAcc",
                  primary="aAcc"),
        Benchmark("ocrbench", "OCRBench", "ocrbench", f"{BASE}/VLMEval/OCRBench.tsv",
                  "e953d98a987cc6e26ef717b61260b778", description="OCRBench; final score out of 1000",
                  primary="Final Score"),
        Benchmark("chartqa", "ChartQA_TEST", "vqa", f"{BASE}/VLMEval/ChartQA_TEST.tsv",
                  "c902e0aa9be5582a7aad6dcf52734b42", vqa_metric="relaxed_accuracy",
                  description="ChartQA test; relaxed accuracy (5% numeric tolerance)"),
        Benchmark("textvqa", "TextVQA_VAL", "vqa", f"{BASE}/VLMEval/TextVQA_VAL.tsv",
                  "b233b31f551bbf4056f2f955da3a92cd", vqa_metric="vqa_score",
                  description="TextVQA val; VQA accuracy over 10 answers"),
        Benchmark("docvqa", "DocVQA_VAL", "vqa", f"{BASE}/VLMEval/DocVQA_VAL.tsv",
                  "d5ee77e1926ff10690d469c56b73eabf", vqa_metric="anls", description="DocVQA val; ANLS"),
        Benchmark("infovqa", "InfoVQA_VAL", "vqa", f"{BASE}/VLMEval/InfoVQA_VAL.tsv",
                  "2342e9c225222f0ef4dec545ebb126fe", vqa_metric="anls", description="InfographicVQA val; ANLS"),
        Benchmark("mmvet", "MMVet", "mmvet", f"{BASE}/VLMEval/MMVet.tsv", "748aa6d4aa9d4de798306a63718455e3",
                  description="MM-Vet; graded by an LLM judge (needs --protocol judge=...)", column="mm-vet"),
    ]
}

"""``backend=vlmeval``: score stored predictions with an installed VLMEvalKit, in a subprocess.

The harness never imports VLMEvalKit (its import disables SSL verification, seeds torch and
pulls torchvision); this file doubles as the script that runs in the VLMEvalKit environment:

    python delegate.py --dataset MME --predictions preds.tsv --out result.json [--judge MODEL]

It calls ``vlmeval.dataset.build_dataset(name).evaluate(predictions, model=judge)``, which
writes VLMEvalKit's usual files next to the predictions, and dumps the returned table as
flat JSON. The driver side (:func:`delegate_scores`) writes the predictions in VLMEvalKit's
format (the TSV's columns without ``image``, plus ``prediction``), points ``LMUData`` at a
folder holding the benchmark TSV, runs the script with ``$VLAEVAL_VLMEVAL_PYTHON`` (default:
``$VLAEVAL_HOME/envs/vlmeval/bin/python`` when that venv exists, else this interpreter) and
returns the numbers, which the suite stores as ``vlmeval/<name>`` next to its native scores
(in VLMEvalKit's own units: MCQ fractions, VQA percent, ...).

The PyPI distribution of VLMEvalKit is ``ms-vlmeval`` (import name ``vlmeval``); installing it
pulls torchvision and a CUDA torch, so give it its own venv. VLMEvalKit scores the TSV linked
into ``LMUData`` as it is: the script turns off its ``download_file`` (which would replace a TSV
whose md5 is not the pinned one, i.e. any ``md5=off`` copy, with the official file), so nothing
is downloaded at scoring time. With no judge configured the script passes ``exact_matching``. The work folder is
``$VLAEVAL_HOME/vlmeval/<dataset>-<hash of predictions and judge>``, so VLMEvalKit's caches
(judge pickles) are reused when the same predictions are scored again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PYTHON_ENV = "VLAEVAL_VLMEVAL_PYTHON"


# -- the script side (runs in VLMEvalKit's environment; stdlib + pandas + vlmeval only) ---------------

def flatten_result(result: Any) -> dict[str, float]:
    """VLMEvalKit's evaluate() return value (DataFrame or dict) -> {name: number}."""
    out: dict[str, float] = {}

    def put(key: str, value: Any) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return
        if not math.isnan(number):
            out[key] = number

    if isinstance(result, dict):
        for key, value in result.items():
            put(str(key), value)
        return out
    columns = [str(c) for c in getattr(result, "columns", [])]
    records = result.to_dict(orient="records") if columns else []
    if "Category" in columns and "acc" in columns:  # MM-Vet style: one row per category
        for rec in records:
            put(str(rec["Category"]), rec["acc"])
    elif "split" in columns:  # MCQ / HallusionBench style: one row per split
        for rec in records:
            split = str(rec["split"])
            for key, value in rec.items():
                if key != "split":
                    put(str(key) if split in ("none", "Overall") else f"{key}_{split}", value)
    else:
        for rec in records:
            for key, value in rec.items():
                put(str(key), value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--judge", default="exact_matching")
    parser.add_argument("--nproc", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        import vlmeval
        from vlmeval.dataset import build_dataset
    except ImportError as exc:
        Path(args.out).write_text(json.dumps({"ok": False, "error": f"cannot import vlmeval: {exc}"}))
        return 3
    _keep_local_data()
    dataset = build_dataset(args.dataset)
    if dataset is None:
        Path(args.out).write_text(json.dumps({"ok": False, "error": f"vlmeval does not know {args.dataset}"}))
        return 4
    result = dataset.evaluate(args.predictions, model=args.judge, nproc=args.nproc)
    try:
        import importlib.metadata as md

        version = next((md.version(d) for d in ("ms-vlmeval", "vlmeval") if _has_dist(md, d)), "")
    except Exception:
        version = ""
    fork = _module_exists("vlmeval.vlm.eagle2.InstructVLA")
    Path(args.out).write_text(json.dumps({
        "ok": True, "result": flatten_result(result), "version": version or getattr(vlmeval, "__version__", ""),
        "instructvla_fork": fork,
    }))
    return 0


def _keep_local_data() -> None:
    """Make VLMEvalKit use the TSV in ``$LMUData`` as it is, and never download.

    VLMEvalKit re-downloads a benchmark TSV whose md5 is not the pinned one, writing over the
    file in ``$LMUData`` -- which here is a link to the copy being scored (``md5=off``) -- and it
    fetches a missing one from the network. Its ``download_file`` is replaced, in every loaded
    ``vlmeval`` module, by one that keeps an existing file and refuses to fetch anything else.
    """
    try:
        import vlmeval.smp.file as smp_file
    except ImportError:  # not a full VLMEvalKit (a stand-in): nothing to patch
        return
    original = getattr(smp_file, "download_file", None)
    if original is None:
        return

    def keep_local(url: str, filename: str | None = None) -> str:
        if filename and os.path.exists(filename):
            print(f"vlaeval: VLMEvalKit wanted to download {url} over {filename}; using the local file",
                  file=sys.stderr)
            return filename
        raise RuntimeError(f"VLMEvalKit tried to download {url}; backend=vlmeval scores offline")

    for name, module in list(sys.modules.items()):
        if (name == "vlmeval" or name.startswith("vlmeval.")) and getattr(module, "download_file", None) is original:
            module.download_file = keep_local


def _has_dist(md: Any, name: str) -> bool:
    try:
        md.version(name)
        return True
    except md.PackageNotFoundError:
        return False


def _module_exists(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# -- the driver side ------------------------------------------------------------------------------

class DelegationError(RuntimeError):
    pass


def vlmeval_python() -> str:
    """``$VLAEVAL_VLMEVAL_PYTHON``, else the venv at ``$VLAEVAL_HOME/envs/vlmeval`` if built, else this interpreter."""
    from vlaeval.harness.envs import envs_dir

    override = os.environ.get(PYTHON_ENV)
    if override:
        return override
    venv = envs_dir() / "vlmeval" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def delegate_scores(bench: Any, data: Any, predictions: dict[str, str], protocol: dict[str, Any]) -> dict[str, float]:
    """Score ``predictions`` (TSV index -> answer) with VLMEvalKit; returns its flat metrics."""
    import pandas as pd

    from vlaeval.harness.envs import vlaeval_home
    from vlaeval.suites.vlmeval.judge import OFFLINE

    judge = str(protocol.get("judge") or "").strip()
    judge = "exact_matching" if judge.lower() in OFFLINE else judge
    digest = hashlib.sha256(json.dumps([data.md5, sorted(predictions.items()), judge,
                                        str(protocol.get("judge_base_url") or "")]).encode()).hexdigest()[:16]
    work = vlaeval_home() / "vlmeval" / f"{bench.name}-{digest}"
    lmu = work / "LMUData"
    lmu.mkdir(parents=True, exist_ok=True)
    link = lmu / f"{bench.name}.tsv"
    if not link.exists():
        try:
            link.symlink_to(Path(data.path).resolve())
        except OSError:
            import shutil

            shutil.copyfile(data.path, link)
    rows = [dict(r, prediction=predictions[str(r["index"])]) for r in data.rows if str(r["index"]) in predictions]
    if len(rows) != len(predictions):
        raise DelegationError(f"{len(predictions) - len(rows)} predictions have no row in {data.path}")
    pred_path = work / f"vlaeval_{bench.name}.tsv"
    pd.DataFrame(rows).to_csv(pred_path, sep="\t", index=False)
    out_path = work / "result.json"
    env = dict(os.environ, LMUData=str(lmu), PRED_FORMAT="tsv")
    if protocol.get("judge_base_url"):
        env["OPENAI_API_BASE"] = str(protocol["judge_base_url"]).rstrip("/") + "/chat/completions"
    if judge != "exact_matching" and not env.get("OPENAI_API_KEY"):
        env["OPENAI_API_KEY"] = os.environ.get("VLAEVAL_JUDGE_API_KEY", "") or "EMPTY"
    python = vlmeval_python()
    cmd = [python, str(Path(__file__).resolve()), "--dataset", bench.name, "--predictions", str(pred_path),
           "--out", str(out_path), "--judge", judge]
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, check=False)
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    if proc.returncode != 0 or not result.get("ok"):
        reason = result.get("error") or (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DelegationError(
            f"backend=vlmeval failed with {python}: {reason if isinstance(reason, str) else reason[0]} "
            f"(install ms-vlmeval in its own venv and set ${PYTHON_ENV}; files in {work})"
        )
    out = {k: float(v) for k, v in result["result"].items()}
    out["instructvla_fork"] = float(bool(result.get("instructvla_fork")))
    return out


if __name__ == "__main__":
    # Run as a script, Python puts this folder first on sys.path, where datasets.py would shadow
    # Hugging Face's ``datasets`` (and tsv.py, judge.py ... other modules) inside VLMEvalKit's imports.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _here]
    sys.exit(main())

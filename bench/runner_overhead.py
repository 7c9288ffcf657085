"""Median wall time the runner adds per run (papermill + fresh kernel + imports + result handling) over
executing the same notebook cells in-process in an already-warm interpreter. Interleaved repeats.

    python bench/runner_overhead.py [--repeats 3]
"""
import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from lowres import config, runner

STUDY, OVERRIDES = "quickstart", {"epochs": 1}


def in_process(plan, params, out_dir: Path) -> float:
    """Run the notebook's code cells in this (warm) process with the runner's parameters injected."""
    nb = nbformat.read(plan.notebook, as_version=4)
    namespace = {**config.to_dict(params), "run_id": config.run_id(STUDY, params), "output_dir": str(out_dir)}
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    start = time.perf_counter()
    cwd = os.getcwd()
    os.chdir(plan.notebook.parent)
    try:
        for source in cells:
            exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 - benchmark replays the notebook
    finally:
        os.chdir(cwd)
    return time.perf_counter() - start


def through_runner(plan, params) -> float:
    start = time.perf_counter()
    outcome = runner.execute_one(plan, params, timeout=None, kernel_name=runner.KERNEL_NAME)
    assert outcome.status == "ok", outcome.message
    return time.perf_counter() - start


def main(repeats: int) -> None:
    os.environ["LOWRES_OUTPUTS"] = tempfile.mkdtemp(prefix="lowres-bench-")
    plan = config.load_params(STUDY, "smoke", {**OVERRIDES, "seed": list(range(repeats + 1))})
    in_process(plan, plan.runs[0], Path(tempfile.mkdtemp()))  # warm-up: imports, tiny-model cache
    pairs = []
    for params in plan.runs[1:]:
        runner_s = through_runner(plan, params)
        direct_s = in_process(plan, params, Path(tempfile.mkdtemp()))
        pairs.append((runner_s, direct_s))
        print(f"seed {params.seed}: runner {runner_s:6.2f} s   in-process {direct_s:6.2f} s   added {runner_s - direct_s:5.2f} s")
    added = statistics.median(r - d for r, d in pairs)
    ratio = statistics.median(r / d for r, d in pairs)
    print(f"median overhead per run: {added:.2f} s (target < 3 s); runner/in-process wall ratio: {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    main(parser.parse_args().repeats)

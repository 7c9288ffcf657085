"""What the runner adds per run, warm (kernels forked from a server that imported the stack once) and cold
(a fresh interpreter per kernel), against the same runs executed in one Python process.

Three arms, each a fresh process timed from start to finish, so each pays its own imports once:
  one process   the quickstart notebook's code cells replayed for every grid point in one interpreter
  cold runner   `lowres run quickstart ... --no-warm --force` (one fresh kernel per run)
  warm runner   `lowres run quickstart ... --force` (the default: one forked kernel per run)
Added per run = (arm wall - one-process wall) / runs. The ratio printed last: warm grid / one process.

    python bench/runner_overhead.py [--runs 4]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

STUDY, SETS = "quickstart", ("epochs=1",)
REPO = Path(__file__).resolve().parent.parent


def replay(runs: int) -> None:
    """The in-process arm: every grid point's code cells in this interpreter, one after the other."""
    from lowres import config

    plan = config.load_params(STUDY, "smoke", {**config.parse_overrides(SETS), "seed": list(range(runs))})
    nb = nbformat.read(plan.notebook, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    os.chdir(plan.notebook.parent)
    for params in plan.runs:
        namespace = {**config.to_dict(params), "output_dir": tempfile.mkdtemp(), "display": lambda *a, **k: None}
        for source in cells:
            exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 - the benchmark replays the notebook


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall


def main(runs: int) -> None:
    env = {**os.environ, "LOWRES_OUTPUTS": tempfile.mkdtemp(prefix="lowres-bench-"), "MPLBACKEND": "Agg"}
    lowres = [sys.executable, "-m", "lowres.cli", "run", STUDY, "--set", f"seed={list(range(runs))}",
              *[a for s in SETS for a in ("--set", s)], "--force"]
    timed(lowres[:-1] + ["--no-warm"], env)  # warm-up: tiny-model cache, compiled bytecode
    arms = {"one process": [sys.executable, __file__, "--replay", str(runs)],
            "cold runner": lowres + ["--no-warm"], "warm runner": lowres}
    walls = {name: timed(command, env) for name, command in arms.items()}
    base = walls["one process"]
    for name, wall in walls.items():
        added = (wall - base) / runs
        print(f"{name:<12} {runs} runs in {wall:6.1f} s   added per run {added:+5.2f} s   vs one process "
              f"{wall / base:4.2f}x")
    print(f"warm runner: {(walls['warm runner'] - base) / runs:.2f} s added per run (target < 3 s); "
          f"grid / one process: {walls['warm runner'] / base:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--replay", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    replay(args.replay) if args.replay else main(args.runs)

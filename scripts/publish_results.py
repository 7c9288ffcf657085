"""Publish the reference results of one profile: `python scripts/publish_results.py docs/results/cpu`.

Builds the cross-study report of outputs/ into DEST (HTML, its figures as PNG, and the report's own tables:
anchors.csv, status.csv, quality_cost.csv), then adds every study's collected runs (tables/<study>.csv, every
column), the machine load each study ran under (load.csv), and the machine (env.txt, env.json). Nothing of
outputs/ is copied: no checkpoints, no kernels' logs, no executed notebooks. DEST/README.md (the verdicts
claim by claim and why, the commands) is written by hand from anchors.csv; the tests check the two agree.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

LEFT_OUT = ("report.ipynb", "kernel.log")  # the page says it all; the notebook would repeat it with paths


def study_tables(dest: Path) -> dict:
    """tables/<study>.csv for each study with results; {study: collected frame}."""
    from lowres import report, results

    tables = dest / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    frames = {study: frame for study, frame in report.collect_all().items() if not frame.empty}
    for study, frame in frames.items():
        frame.to_csv(tables / f"{study}.csv", index=False)
    return frames


def load_table(frames: dict):
    """Per study: runs, runs measured under other processes' load, and the most other processes used."""
    import pandas as pd

    rows = []
    for study, frame in frames.items():
        contended = frame.get("summary.contended", pd.Series(dtype=bool)).fillna(False).astype(bool)
        others = pd.to_numeric(frame.get("summary.other_cpu_cores"), errors="coerce")
        rows.append({"study": study, "runs": len(frame), "ok": int((frame["status"] == "ok").sum()),
                     "contended_runs": int(contended.sum()), "max_other_cpu_cores": others.max(),
                     "mean_other_cpu_cores": others.mean()})
    return pd.DataFrame(rows)


def write_env(dest: Path) -> None:
    from lowres.env import describe, fingerprint

    info = fingerprint()
    (dest / "env.txt").write_text(describe(info) + "\n")
    (dest / "env.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def publish(dest: Path) -> int:
    from lowres import report

    dest.mkdir(parents=True, exist_ok=True)
    ok, html = report.build_report(None, dest)
    for name in LEFT_OUT:
        (dest / name).unlink(missing_ok=True)
    frames = study_tables(dest)
    load_table(frames).to_csv(dest / "load.csv", index=False)
    write_env(dest)
    print(f"report: {html}; tables of {len(frames)} studies in {dest / 'tables'}")
    return 0 if ok and html else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="folder to publish into, e.g. docs/results/cpu")
    parser.add_argument("--clean", action="store_true", help="remove DEST's tables/ first (a study no longer in outputs/ keeps no table); the report's "
                             "own files are replaced by `lowres report` itself")
    args = parser.parse_args(argv)
    if args.clean:
        shutil.rmtree(args.dest / "tables", ignore_errors=True)
    return publish(args.dest.resolve())


if __name__ == "__main__":
    sys.exit(main())

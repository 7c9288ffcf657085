"""Build a study notebook from its plain-text source (cells split by lines starting with `# %%`).

`# %% [markdown]` starts a markdown cell; `# %% parameters STUDY` a code cell tagged `parameters` whose source is
generated from the study's Params (`lowres.studies.parameters_cell`): the source file holds no parameter values.
A plain `# %% parameters` (the report, which is not a study) keeps the literals written below it.
With --execute, the notebook runs once (defaults = the offline smoke run, outputs to a temp dir) and keeps
outputs and execution counts only in cells marked `# NBVAL_CHECK_OUTPUT`, as nbval needs.
Usage: python scripts/build_notebook.py notebooks/src/00_quickstart.py [--execute]
Authoring in a .py keeps notebook diffs reviewable; the .ipynb beside it is what users open.
"""
import argparse
import os
import tempfile
from pathlib import Path

import nbformat

NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"


def parse_cells(text: str) -> list:
    from lowres.studies import parameters_cell

    cells, kind, tags, lines, study = [], None, [], [], None

    def flush():
        if kind is None:
            return
        source = parameters_cell(study) if study else "\n".join(lines).strip("\n")
        if kind == "markdown":
            source = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in source.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell_tags = tags + (["nbval-check"] if source.lstrip().startswith(NBVAL_MARK) else [])
            cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": cell_tags} if cell_tags else {}))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            header = line[4:].strip()
            kind = "markdown" if header == "[markdown]" else "code"
            study = header.split()[1] if header.startswith("parameters ") else None  # else: literal cell
            tags, lines = (["parameters"] if header.startswith("parameters") else []), []
        else:
            lines.append(line)
    flush()
    return cells


def execute_keeping_checked_outputs(nb, cwd: Path):
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as out:
        os.environ["LOWRES_OUTPUTS"] = out
        # store_widget_state=False: ipywidgets state (tens of kB of layout models) must not land in git
        NotebookClient(nb, kernel_name="lowres", timeout=900, store_widget_state=False,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.lstrip().startswith(NBVAL_MARK):
            cell.outputs, cell.execution_count = [], None
    return nb


def notebook_from_source(src: Path):
    """The notebook a source file describes, outputs empty (what tests compare the committed .ipynb with)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "lowres", "display_name": "Python (lowres)", "language": "python"},
                   "language_info": {"name": "python"}}
    nb.cells = parse_cells(src.read_text())
    for i, cell in enumerate(nb.cells):
        cell.id = f"{src.stem.split('_')[0]}-{i:02d}"  # stable ids keep diffs small
    return nb


def build(src: Path, execute: bool) -> Path:
    dst = src.parent.parent / (src.stem + ".ipynb")
    nb = notebook_from_source(src)
    if execute:
        nb = execute_keeping_checked_outputs(nb, dst.parent)
    nbformat.write(nb, dst)
    return dst


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--execute", action="store_true")
    args = parser.parse_args()
    for source in args.sources:
        print("built", build(source, args.execute))

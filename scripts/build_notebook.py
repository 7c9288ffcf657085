"""Build a study notebook from a plain-text cell list (cells split by lines starting with `# %%`).

`# %% [markdown]` starts a markdown cell, `# %% parameters` a code cell tagged `parameters`.
Usage: python scripts/build_notebook.py notebooks/src/00_quickstart.py notebooks/00_quickstart.ipynb
Authoring in a .py keeps notebook diffs reviewable; the .ipynb is what users open.
"""
import sys

import nbformat


def parse_cells(text: str) -> list:
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        source = "\n".join(lines).strip("\n")
        if kind == "markdown":
            source = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in source.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags} if tags else {}))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            header = line[4:].strip()
            kind = "markdown" if header == "[markdown]" else "code"
            tags, lines = (["parameters"] if header == "parameters" else []), []
        else:
            lines.append(line)
    flush()
    return cells


def main(src: str, dst: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "lowres", "display_name": "Python (lowres)", "language": "python"},
                   "language_info": {"name": "python"}}
    nb.cells = parse_cells(open(src).read())
    nbformat.write(nb, dst)


if __name__ == "__main__":
    main(*sys.argv[1:3])

"""The report as a document: tables as scrollable HTML (every column, three significant figures, no index,
text wrapped, nothing cut to "..."), figures saved under descriptive names, an HTML export that requests
nothing from the network, and CSS that prints."""
from __future__ import annotations

import html
import io
import math
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent / "report_template"
TEMPLATE = "lowres_report"
NBVAL_TAG = "nbval-check"  # scripts/build_notebook.py tags the cells whose output nbval compares
CSS = """
.lowres-scroll { overflow-x: auto; max-width: 100%; margin: 0.3em 0 1em 0; }
.lowres-scroll table { border-collapse: collapse; font-size: 12.5px; table-layout: auto; width: max-content; }
.lowres-scroll th, .lowres-scroll td { padding: 3px 8px; border-bottom: 1px solid #ddd; vertical-align: top;
  text-align: right; }
.lowres-scroll table thead tr th { background: #f3f3f3; text-align: left; }
.lowres-scroll table td.text { text-align: left; white-space: normal; max-width: 22em; }
.lowres-scroll caption { caption-side: top; text-align: left; font-style: italic; padding: 2px 0; }
.lowres-banner { border-left: 4px solid #c77c02; background: #fff8e6; padding: 0.5em 1em; margin: 0.5em 0 1em 0; }
.verdict-reproduced { color: #176b17; font-weight: 600; }
.verdict-not-reproduced { color: #a11; font-weight: 600; }
img { max-width: 100%; height: auto; }
@media print { .lowres-scroll { overflow: visible; } .lowres-scroll table { font-size: 9px; }
  .lowres-scroll td.text { max-width: none; } }
"""


def cell_text(value) -> tuple[str, bool]:
    """(display text, is text) of one cell: numbers to three significant figures, whole numbers as integers,
    missing values as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int) or (hasattr(value, "dtype") and "int" in str(value.dtype)):
        return f"{int(value):,}", False
    if isinstance(value, float) or hasattr(value, "dtype"):
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return f"{int(number):,}", False
        return f"{number:.3g}", False
    return str(value), True


def table_html(frame, caption: str | None = None) -> str:
    """A DataFrame as a scrollable HTML table: every column and row, no index, no truncation."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for value in record:
            text, is_text = cell_text(value)
            css = f"text verdict-{text.replace(' ', '-')}" if is_text and text in ("reproduced", "not reproduced") \
                else ("text" if is_text else "")
            cells.append(f"<td class='{css}'>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f"<div class='lowres-scroll'><table>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def style_html() -> str:
    """The report's CSS, for the notebook view in JupyterLab (the HTML export carries it in its head)."""
    return f"<style>{CSS}</style>"


def show_table(frame, caption: str | None = None) -> None:
    from IPython.display import HTML, display

    display(HTML(table_html(frame, caption)))


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def show_figure(figure, name: str) -> None:
    """Display a figure as a PNG whose file, in the HTML export, is `<name>.png`; then close the figure."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    if figure is None:
        return
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    display(Image(data=buffer.getvalue(), format="png"), metadata={"filename": f"{slug(name)}.png"})


def exporter():
    """nbconvert's HTML exporter on the offline template, code hidden, figures extracted to files."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExtractOutputPreprocessor, TagRemovePreprocessor

    exp = HTMLExporter(extra_template_basedirs=[str(TEMPLATE_DIR)], template_name=TEMPLATE, exclude_input=True,
                       exclude_input_prompt=True, exclude_output_prompt=True)
    exp.register_preprocessor(ExtractOutputPreprocessor(), enabled=True)
    # cells nbval checks print rounded text summaries of tables the page already shows: not in the document
    exp.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={NBVAL_TAG}), enabled=True)
    return exp

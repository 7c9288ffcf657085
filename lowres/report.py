"""The cross-study report: every study's results, the published anchors, quality vs cost, the selector's plan.

`notebooks/07_report.ipynb` calls these functions; `lowres report` executes that notebook with papermill and
exports it to HTML with the figures as PNG files beside it. A study without results is listed as "not run";
a study's own analysis functions (`lowres/studies/<study>/analysis.py`: key_table/key_figure) draw its section;
a study without an analysis module, or whose analysis fails on these results, gets a generic table and the
section says why. Run-level costs (energy, latency, memory, strategy, quality) are the run summaries
(`lowres.summary`). Nothing here raises on odd results: a failed or invalid run is listed, never crashes the report.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lowres.memory import GB
from lowres.paths import outputs_dir as default_outputs_dir
from lowres.paths import project_root

NOTEBOOK = Path("notebooks") / "07_report.ipynb"
REPORT_NAME = "report"
DEMO_SUMMARY = "demo_summary.json"
FIXTURE_FINGERPRINT = "fixture-not-a-machine"
STATUSES = ("ok", "failed", "oom", "timeout", "invalid")  # invalid: a result.json that fails the schema
GENERIC_ROWS = 30


# ---------------------------------------------------------------------------------------------- collecting
def resolve_outputs(outputs=None) -> Path:
    return Path(outputs).expanduser().resolve() if outputs else default_outputs_dir()


def study_names(outputs=None) -> list[str]:
    """Every registered study in notebook order, then any other folder of results in `outputs`."""
    from lowres import studies

    base = resolve_outputs(outputs)
    found = {p.parent.parent.name for p in base.glob("*/*/result.json")} if base.is_dir() else set()
    known = studies.names()
    return [*known, *sorted(found - set(known) - {REPORT_NAME})]


def collect_all(outputs=None) -> dict:
    """{study: lowres.results.collect(study)} for every study (an empty DataFrame when it has no results)."""
    from lowres.results import collect

    base = resolve_outputs(outputs)
    return {study: collect(study, base) for study in study_names(base)}


def is_fixture(frames: dict) -> bool:
    return any("env.fingerprint" in f and (f["env.fingerprint"] == FIXTURE_FINGERPRINT).any() for f in frames.values())


PROFILE_MEANING = {  # what each profile's runs can and cannot show beside a published figure
    "smoke": "tiny random-init models on synthetic data: they show that every study runs and what each "
             "measurement looks like; they cannot stand beside a published figure",
    "cpu": "pretrained MiniLM-sized models on real data (subsets) on a CPU: real quality, time and memory; "
           "no FP16, DataParallel or GPU energy, and CPU energy is measured only where RAPL is readable",
    "gpu": "the published model sizes on one CUDA GPU with NVML energy: comparable where the published "
           "configuration was run",
    "paper": "the published grids on 2+ GPUs",
}


def runs_by_profile(frames: dict) -> dict:
    """{profile: number of runs} over every study (None: a notebook run by hand or an older result)."""
    import collections

    counts = collections.Counter()
    for frame in frames.values():
        if "profile" in frame:
            counts.update(str(p) if isinstance(p, str) else "not recorded" for p in frame["profile"])
    return dict(counts)


def energy_sources(frames: dict) -> list[str]:
    found = set()
    for frame in frames.values():
        if "summary.energy_source" in frame:
            found |= {s.strip() for v in frame["summary.energy_source"].dropna() for s in str(v).split(",")}
    return sorted(found)


def contended_runs(frames: dict) -> list[str]:
    return [rid for frame in frames.values() if "summary.contended" in frame
            for rid, flag in zip(frame["run_id"], frame["summary.contended"]) if flag is True]


def banner(outputs, frames: dict) -> str:
    """What the page rests on, before any figure: which profiles produced it and what they can and cannot
    show, where energy figures come from, runs measured under other processes' load, fabricated data."""
    from lowres.meters.contention import CONTENDED_SHARE

    total = sum(len(f) for f in frames.values())
    lines = [f"**{total} runs** from `{resolve_outputs(outputs)}`."]
    for profile, n in sorted(runs_by_profile(frames).items()):
        meaning = PROFILE_MEANING.get(profile, "runs whose profile was not recorded (run by hand or by an older "
                                               "lowres); their comparability is judged from model and data alone")
        lines.append(f"- **{profile}** ({n} runs): {meaning}.")
    sources = energy_sources(frames)
    if sources:
        estimate_only = set(sources) <= {"codecarbon-estimate", "unavailable"}
        lines.append(f"- **Energy** comes from: {', '.join(sources)}"
                     + ("; a codecarbon estimate of the whole machine (CPU load x TDP), not a measurement: energy "
                        "claims are not measurable here." if estimate_only else "."))
    contended = contended_runs(frames)
    if contended:
        lines.append(f"- **{len(contended)} run(s) measured under load**: other processes kept more than "
                     f"{CONTENDED_SHARE:.0%} of the CPU cores busy during them; their times and energy include that "
                     f"load (flagged in the tables).")
    if is_fixture(frames):
        lines.insert(0, "**FABRICATED TEST DATA (the test fixture): these figures are not measurements.** Run "
                        "`lowres report` (or `make demo`) for a report of your own results.\n")
    lines.insert(len(lines) - sum(line.startswith("- ") for line in lines), "")  # a paragraph, then the list
    return "<div class='lowres-banner'>\n\n" + "\n".join(lines) + "\n\n</div>"


def demo_notes(out_dir) -> dict:
    """{study: message} from the demo's summary in `out_dir` (why a study did not run), if there is one."""
    path = Path(out_dir) / DEMO_SUMMARY if out_dir else None
    if not path or not path.is_file():
        return {}
    return {row["study"]: row["message"] for row in json.loads(path.read_text()) if row.get("message")}


def status_table(frames: dict, notes: dict | None = None):
    """One row per study: runs by status and its state (`not run` when it has no results)."""
    import pandas as pd

    rows = []
    for study, frame in frames.items():
        counts = frame["status"].value_counts().to_dict() if "status" in frame else {}
        bad = sum(counts.get(s, 0) for s in STATUSES[1:])
        state = "not run" if frame.empty else ("ok" if not bad else f"{bad} run(s) did not succeed")
        contended = int(frame["summary.contended"].fillna(False).astype(bool).sum()) if "summary.contended" in frame else 0
        rows.append({"study": study, "runs": len(frame), **{s: counts.get(s, 0) for s in STATUSES},
                     "under load": contended, "state": state, "note": (notes or {}).get(study, "")})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- sections
@dataclasses.dataclass
class Section:
    """What the report shows for one study: a title, lines of text, captioned tables, one figure."""

    study: str
    lines: list = dataclasses.field(default_factory=list)
    tables: list = dataclasses.field(default_factory=list)  # [(caption, DataFrame)]
    figure: object = None


ANALYSIS_ERRORS = (KeyError, ValueError, TypeError, IndexError, ZeroDivisionError)  # odd data, not a bug in lowres


def analysis_module(study: str):
    """(module, None) or (None, why): the study's analysis module with key_table and key_figure."""
    from lowres import studies

    module = studies.analysis(study)
    if module is None:
        return None, f"study `{study}` has no analysis module"
    missing = [f for f in ("key_table", "key_figure") if not hasattr(module, f)]
    return (None, f"`{module.__name__}` lacks {', '.join(missing)}") if missing else (module, None)


def failed_runs(frame):
    bad = frame[frame["status"] != "ok"] if "status" in frame else frame.iloc[0:0]
    columns = [c for c in ("run_id", "status", "error") if c in bad]
    return bad[columns].reset_index(drop=True)


def loaded_runs(frame):
    """Runs measured while other processes loaded the machine (lowres.meters.contention), with that load."""
    if "summary.contended" not in frame:
        return frame.iloc[0:0]
    loaded = frame[frame["summary.contended"].fillna(False).astype(bool)]
    return loaded[["run_id", "summary.other_cpu_cores"]].rename(
        columns={"summary.other_cpu_cores": "CPU cores others kept busy"}).reset_index(drop=True)


def generic_table(frame):
    """The ok runs: run id, the params that vary, every metric, training time."""
    ok = frame[frame["status"] == "ok"]
    params = [c for c in ok if c.startswith("params.") and ok[c].map(str).nunique() > 1]
    metrics = [c for c in ok if c.startswith("metrics.")]
    timing = [c for c in ("train.wall_s", "eval.wall_s") if c in ok]
    return ok[["run_id", *params, *metrics, *timing]].head(GENERIC_ROWS).reset_index(drop=True)


def study_section(study: str, frame, outputs=None) -> Section:
    section = Section(study)
    if frame.empty:
        section.lines.append(f"**not run**: no results in `{resolve_outputs(outputs) / study}`; "
                             f"run `lowres run {study} --profile smoke`.")
        return section
    counts = frame["status"].value_counts().to_dict()
    section.lines.append(", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(frame)} runs.")
    failures = failed_runs(frame)
    if not failures.empty:
        section.tables.append(("Runs that did not succeed", failures))
    loaded = loaded_runs(frame)
    if not loaded.empty:
        section.tables.append(("Runs measured under other processes' load (times and energy include it)", loaded))
    if not (frame["status"] == "ok").any():
        section.lines.append("No successful run to analyse.")
        return section
    add_analysis(section, frame)
    return section


def add_analysis(section: Section, frame) -> None:
    """The study's key table and figure; on any problem, say so and show the generic table."""
    module, why = analysis_module(section.study)
    if module is not None:
        try:
            section.tables.append(("Key table", module.key_table(frame)))
            section.figure = figure_of(module.key_figure(frame))
            return
        except ANALYSIS_ERRORS as err:  # results the analysis cannot read must not stop the report
            why = f"its analysis failed on these results ({type(err).__name__}: {err})"
            close(section.figure)
            section.figure = None
    section.lines.append(f"{why}: a generic table of its results instead.")
    section.tables.append(("Results (generic table)", generic_table(frame)))


def figure_of(axes_or_figure):
    return getattr(axes_or_figure, "figure", axes_or_figure)


def close(figure) -> None:
    if figure is not None:
        import matplotlib.pyplot as plt

        plt.close(figure)


def show(section: Section) -> None:
    """Render a section in the notebook: heading, text, tables (scrollable HTML), its named figure."""
    from IPython.display import Markdown, display

    from lowres.report_html import show_figure, show_table

    display(Markdown(f"### {section.study}\n\n" + "\n\n".join(section.lines)))
    for caption, table in section.tables:
        show_table(table, caption)
    show_figure(section.figure, f"{section.study}_key_figure")


# ---------------------------------------------------------------------------------------------- quality vs cost
POINT_STUDIES = ("quickstart", "distil_vs_bert", "lora", "prompting", "rag")
POINT_COLUMNS = {"study": "study", "run_id": "run_id", "summary.strategy": "strategy", "summary.model": "model",
                 "summary.dataset": "dataset", "summary.quality": "accuracy", "summary.energy_j": "energy_j",
                 "summary.energy_source": "energy source", "summary.energy_scope": "energy scope",
                 "summary.latency_ms": "latency_ms", "summary.latency_kind": "latency kind",
                 "summary.peak_memory_bytes": "peak_memory_gb", "summary.memory_kind": "memory kind",
                 "summary.contended": "under load", "summary.hardware": "hardware"}


def strategy_points(frames: dict):
    """One row per ok classification run with an accuracy: strategy, model, dataset, accuracy and its costs,
    all read from the run summaries."""
    import pandas as pd

    parts = []
    for study in POINT_STUDIES:
        frame = frames.get(study)
        if frame is None or frame.empty or "summary.quality_metric" not in frame:
            continue
        ok = frame[(frame["status"] == "ok") & (frame["summary.quality_metric"] == "accuracy")]
        parts.append(pd.DataFrame({name: ok[c] if c in ok else None for c, name in POINT_COLUMNS.items()}))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=list(POINT_COLUMNS.values()))
    points = pd.concat(parts, ignore_index=True).dropna(subset=["accuracy"]).reset_index(drop=True)
    return points.assign(peak_memory_gb=pd.to_numeric(points["peak_memory_gb"], errors="coerce") / GB)


def draw_front(ax, data, cost: str) -> None:
    from lowres.analysis import pareto_front

    for _, group in data.groupby("dataset"):
        group = group[pareto_front(group, cost)].sort_values(cost)
        ax.plot(group[cost], group["accuracy"], "k--", lw=1, drawstyle="steps-post")


def cost_panels(points) -> list[tuple[str, str, object]]:
    """(column, axis label, the points it may hold): energy (its source and scope named), latency per request
    at batch 1 and batched time per example as two panels (never one axis), peak memory (its kind named)."""
    from lowres.summary import BATCHED, PER_REQUEST

    def named(column, kinds):
        found = sorted({str(v) for v in points[column].dropna()}) if column in points else []
        return ", ".join(found) or kinds

    energy = f"energy of the run (J)\n{named('energy source', 'no source')}; scope: {named('energy scope', '-')}"
    return [("energy_j", energy, points),
            ("latency_ms", "latency per request, batch 1 (ms)", points[points["latency kind"] == PER_REQUEST]),
            ("latency_ms", "time per example, batched (ms)", points[points["latency kind"] == BATCHED]),
            ("peak_memory_gb", f"peak memory (GB): {named('memory kind', '-')}", points)]


def pareto_figure(points):
    """Accuracy against each cost, one panel each (see cost_panels), the Pareto front per dataset dashed."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if points.empty:
        return None
    points = points.assign(dataset=points["dataset"].map(str))
    panels = cost_panels(points)
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), sharey=True)
    orders = {"hue_order": sorted(points["strategy"].unique()), "style_order": sorted(points["dataset"].unique())}
    shown = [i for i, (cost, _, data) in enumerate(panels) if data[cost].notna().any()]
    for i, (ax, (cost, label, data)) in enumerate(zip(axes, panels)):
        data = data.dropna(subset=[cost])
        if data.empty:
            ax.text(0.5, 0.5, "not measured by these runs", ha="center", va="center", transform=ax.transAxes)
            ax.set(xlabel=label, xticks=[])
            continue
        sns.scatterplot(data=data, x=cost, y="accuracy", hue="strategy", style="dataset", s=70, ax=ax,
                        legend=i == shown[-1], **orders)
        draw_front(ax, data, cost)
        if data[cost].max() > 100 * max(data[cost].min(), 1e-12):
            ax.set_xscale("log")
        ax.set_xlabel(label, fontsize=9)
    axes[0].set_ylabel("accuracy")
    for ax in axes:
        if ax.get_legend() is not None:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), fontsize=8)
    figure.suptitle("Accuracy against cost (every successful classification run; dashed: Pareto front per dataset)",
                    fontsize=10)
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------------------------------------- selector
def recommendation(outputs=None, task: str = "classification", latency_ms: float = 200.0,
                   dataset_size: int | None = 10_000):
    """The selector's plan for this machine, calibrated by results measured on it; a clear line otherwise."""
    from lowres import selector
    from lowres.env import fingerprint

    try:
        return selector.recommend(task, latency_ms=latency_ms, dataset_size=dataset_size,
                                  fingerprint=fingerprint()["fingerprint"], outputs=resolve_outputs(outputs))
    except selector.SelectorError as err:
        return f"the selector could not recommend: {err}"


def selector_inputs(task: str, latency_ms: float, dataset_size: int | None) -> str:
    """Markdown: the inputs the plan below answers, and where each came from."""
    from lowres import selector

    found = selector.detect()
    size = f"{dataset_size:,} labelled examples" if dataset_size else "no labelled data"
    return (f"The plan answers: **{task}**, a latency budget of **{latency_ms:g} ms** per request and **{size}** "
            f"(the report notebook's parameters `selector_task`, `selector_latency_ms`, `selector_dataset_size`: "
            f"change them to ask another question), on **{found['hardware'].upper()}** with "
            f"**{found['memory_gb']:g} GB** {'of GPU memory' if found['hardware'] == 'gpu' else 'of RAM'} "
            f"(detected on the machine that built this report). Measured runs count only when they were measured "
            f"on this same hardware; the plan's basis says how many were used and why the others were not.")


def save_tables(out_dir, **tables) -> list:
    """Each table as <out_dir>/<name>.csv (nothing when out_dir is None); returns the paths."""
    if not out_dir:
        return []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = Path(out_dir) / f"{name}.csv"
        table.to_csv(path, index=False)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------- lowres report
MANIFEST = ".lowres-report.json"  # what the last `lowres report` wrote in its --out folder


def written_before(out: Path) -> list[str]:
    """Paths (relative to `out`) the previous report export wrote there, from its manifest."""
    try:
        listed = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    return [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []


def check_out_dir(out: Path, name: str = REPORT_NAME) -> None:
    """Refuse an --out folder whose report files were not written by lowres (they would be overwritten)."""
    from lowres.config import ParamsError

    ours = set(written_before(out))
    for target in (f"{name}.html", f"{name}.ipynb", f"{name}_files"):
        path = out / target
        if path.exists() and target not in ours and not (path.is_dir() and not any(path.iterdir())):
            raise ParamsError(f"--out {str(out)!r} already holds {target}, which lowres report did not write; "
                              f"valid: an empty folder, a folder of an earlier `lowres report`, or a new path")


def remove_written_before(out: Path, name: str = REPORT_NAME) -> None:
    """Delete the figure files the previous export wrote (never anything else in the folder; the page and the
    executed notebook are rewritten in place)."""
    for relative in written_before(out):
        path = out / relative
        if relative.startswith(f"{name}_files/") and path.is_file():
            path.unlink()


def export_html(notebook: Path, out: Path, name: str = REPORT_NAME) -> Path:
    """HTML without code and without network requests (lowres.report_html), the figures as PNG files under
    their descriptive names in <out>/<name>_files/."""
    import nbformat

    from lowres.report_html import CSS, exporter

    files_dir = f"{name}_files"
    remove_written_before(out)
    body, resources = exporter().from_notebook_node(
        nbformat.read(notebook, as_version=4),
        resources={"unique_key": "figure", "output_files_dir": files_dir, "lowres_css": CSS})
    written = [f"{name}.html", f"{name}.ipynb", files_dir, "kernel.log"]
    for relative, data in resources.get("outputs", {}).items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(str(relative))
    html = out / f"{name}.html"
    html.write_text(body, encoding="utf-8")
    (out / MANIFEST).write_text(json.dumps(written))
    return html


def build_report(outputs=None, out=None, kernel_name: str = "lowres") -> tuple[bool, Path | None]:
    """Execute the report notebook on `outputs` into `out`, export HTML; (notebook ran cleanly, html path)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from lowres.kernels import manager_class_for
    from lowres.runner import check_kernel

    if out is not None:  # outputs/report is lowres' own; a folder the user names may hold their files
        check_out_dir(Path(out).resolve())
    outputs, out = resolve_outputs(outputs), Path(out or resolve_outputs(outputs) / REPORT_NAME).resolve()
    out.mkdir(parents=True, exist_ok=True)
    check_kernel(kernel_name)
    notebook, executed = project_root() / NOTEBOOK, out / f"{REPORT_NAME}.ipynb"
    ok = True
    try:
        pm.execute_notebook(str(notebook), str(executed), parameters={"outputs_dir": str(outputs), "out_dir": str(out)},
                            kernel_name=kernel_name, cwd=str(notebook.parent), progress_bar=True, log_output=False,
                            kernel_manager_class=manager_class_for(None, out / "kernel.log"))
    except PapermillExecutionError as err:  # papermill saved the notebook up to the error; export it anyway
        ok = False
        print(f"the report notebook stopped: {getattr(err, 'ename', type(err).__name__)}: "
              f"{getattr(err, 'evalue', err)}")
    html = export_html(executed, out) if executed.is_file() else None
    return ok, html


def run_report(args) -> int:
    """`lowres report [--out DIR]`: the report of outputs/ as HTML (figures as PNG files beside it)."""
    ok, html = build_report(None, getattr(args, "out", None))
    print(f"HTML report: {html}" if html else "no report written")
    return 0 if ok and html else 1

# %% [markdown]
# # 07 · Report: every study side by side, with the published figures
# What each adaptation choice (precision, parallelism, model size, LoRA, quantization, prompting, RAG) cost and
# delivered on the machines that produced these results, next to the published reference figures, each with a
# verdict, and what the selector recommends for this machine. `lowres report` (or `make demo`) runs this notebook
# on your own `outputs/` and exports it as HTML; opened as is, it shows the test fixture (fabricated figures,
# labelled as such).
# %% parameters
outputs_dir = "../tests/fixtures/report_outputs"
out_dir = None
selector_task = "classification"
selector_latency_ms = 200.0
selector_dataset_size = 10000
# %%
from IPython.display import HTML, Markdown, display

from lowres import anchors, report, report_html

frames = report.collect_all(outputs_dir)
display(HTML(report_html.style_html()), Markdown(report.banner(outputs_dir, frames)))
# %% [markdown]
# ## 1 · Runs per study
# A study with no results is listed as *not run*; failed, out-of-memory, timed-out and invalid runs are counted,
# not hidden, and so are runs measured while other processes loaded the machine.
# %%
status = report.status_table(frames, report.demo_notes(out_dir))
report_html.show_table(status)
# %%
# NBVAL_CHECK_OUTPUT
print(status[["study", "runs", "ok", "failed", "oom", "state"]].to_string(index=False))
# %% [markdown]
# ## 2 · Each study: its key table and figure
# Drawn by the study's own `key_table` / `key_figure` (in `lowres/studies/STUDY/analysis.py`, the functions its
# notebook uses); a study without an analysis module gets a generic table of its results, and the section says so.
# %%
for study, frame in frames.items():
    report.show(report.study_section(study, frame, outputs_dir))
# %% [markdown]
# ## 3 · Published figures next to ours
# Each row is one published claim. Ours is computed only from runs that can stand beside it (real data, a pretrained
# model of the published family or a declared stand-in, the compared configurations actually run), with its 95%
# interval (over seeds, else binomial on the examples scored), and ends in a verdict: **reproduced** (our interval
# meets the published figure), **not reproduced**, **not comparable** (what differs) or **not measurable here**
# (what this machine lacks). The ratio ours / published is given only where the two can stand side by side.
# %%
anchor_table = anchors.anchor_table(frames)
report_html.show_table(anchor_table[["claim", "published", "verdict", "why", "ours (95% interval)", "stand-in",
                                     "ratio", "our hardware", "their hardware", "energy source", "seeds", "runs",
                                     "how", "note"]])
# %%
# NBVAL_CHECK_OUTPUT
print(anchors.anchor_summary(anchor_table))
# %%
report_html.show_table(anchors.sources_table(), "Sources")
# %% [markdown]
# ## 4 · Quality against cost across strategies
# Every successful classification run with an accuracy, by strategy, against the energy of the run (its source and
# scope on the axis), its latency - per request at batch 1 and batched time per example on separate axes, never
# mixed - and its peak memory (of the kind named). The dashed line is the Pareto front per dataset.
# %%
points = report.strategy_points(frames)
report_html.show_figure(report.pareto_figure(points), "quality_vs_cost")
report_html.show_table(points, "The points of the figure")
# %% [markdown]
# ## 5 · What the selector recommends for this machine
# %%
display(Markdown(report.selector_inputs(selector_task, selector_latency_ms, selector_dataset_size)))
report.recommendation(outputs_dir, selector_task, selector_latency_ms, selector_dataset_size)
# %%
saved = report.save_tables(out_dir, status=status, anchors=anchor_table, quality_cost=points)
Markdown("The tables of this page as CSV: " + (", ".join(f"`{path.name}`" for path in saved) or "not saved (no out_dir)"))

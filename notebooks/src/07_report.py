# %% [markdown]
# # 07 · Report: every study side by side, with the published figures
# What each adaptation choice (precision, parallelism, model size, LoRA, quantization, prompting, RAG) cost and
# delivered on the machines that produced these results, next to the published reference figures, and what the
# selector recommends for this machine. Opened as is, this notebook shows the **test fixture** (fabricated
# figures, labelled as such); `lowres report` (or `make demo`) runs it on your own `outputs/` and exports HTML.
# %% parameters
outputs_dir = "../tests/fixtures/report_outputs"
out_dir = None
selector_task = "classification"
selector_latency_ms = 200.0
selector_dataset_size = 10000
# %%
from IPython.display import Markdown, display

from lowres import anchors, report

frames = report.collect_all(outputs_dir)
display(Markdown(report.provenance(outputs_dir, frames)))
# %% [markdown]
# ## 1 · Runs per study
# A study with no results is listed as *not run*; failed, out-of-memory and timed-out runs are counted, not hidden.
# %%
# NBVAL_CHECK_OUTPUT
status = report.status_table(frames, report.demo_notes(out_dir))
print(status.to_string(index=False))
# %% [markdown]
# ## 2 · Each study: its key table and figure
# Drawn by the study's own `key_table` / `key_figure` (lowres/studies/<study>/analysis.py, the functions its notebook
# uses); a study without an analysis module gets a generic table of its results, and the section says so.
# %%
for study, frame in frames.items():
    report.show(report.study_section(study, frame, outputs_dir))
# %% [markdown]
# ## 3 · Published figures next to ours
# Each headline figure of the sources beside ours, with the ratio ours / published (the middle of a published
# range), the hardware both ran on, the source of our energy figures and our number of seeds. A figure we cannot
# compute from these results says *not measured* and why. Smoke runs (tiny models, synthetic data) are not
# comparable with the papers' models; the `cpu` and `gpu` profiles are.
# %%
anchor_table = anchors.anchor_table(frames)
anchor_table
# %%
# NBVAL_CHECK_OUTPUT
print(anchors.anchor_summary(anchor_table))
# %%
anchors.sources_table()
# %% [markdown]
# ## 4 · Quality against cost across strategies
# Every successful classification run with an accuracy: accuracy against energy (training + evaluation, with the
# source named in each study's results), latency per example and peak memory. The dashed line is the Pareto front
# per dataset (no other run is both more accurate and cheaper).
# %%
points = report.strategy_points(frames)
report.show_figure(report.pareto_figure(points))
points
# %% [markdown]
# ## 5 · What the selector recommends for this machine
# Calibrated by the results above that were measured on this machine (same hardware fingerprint); rules only otherwise.
# %%
report.recommendation(outputs_dir, selector_task, selector_latency_ms, selector_dataset_size)
# %%
report.save_tables(out_dir, status=status, anchors=anchor_table, quality_cost=points)

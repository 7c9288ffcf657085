# %% [markdown]
# # 06 · Strategy selector: which adaptation fits this task on this hardware?
# A task and an environment in, a ready plan out: strategy (full fine-tuning, LoRA, prompting, RAG), model(s),
# precision/quantization, batch size and parallelism, with the reasons. The rules are data; where they conflict,
# the memory estimator decides (the highest precision that fits, with a 10% margin); where this machine has
# measured results of the other studies, the measured quality-cost Pareto front decides among the strategies
# that satisfy the constraints. Resolution order: `docs/selector.md`. The same plan from a shell:
# `lowres recommend --task qa --hardware cpu --memory-gb 16 --latency-ms 400`.
# %% parameters selector
# %%
import seaborn as sns

import lowres
import lowres.probe  # as lowres.probe: `probe` is a parameter
from lowres import memory, selector, widgets

run = lowres.start_run("selector", globals())
params = run.params
print(run.run_id, "->", run.location)
# %% [markdown]
# ## 1 · The rules, in priority order
# Step 1 narrows the strategies (a rule that would leave none is overruled by the ones above it); steps 2 and 3
# take the first rule that matches. The precision rules give the allowed precisions; the estimator picks the
# highest one that fits.
# %%
selector.rules_table()
# %% [markdown]
# ## 2 · The design's three worked examples
# %%
# NBVAL_CHECK_OUTPUT
examples = selector.examples_table()
print(examples[["example", "task", "hardware", "memory_gb", "strategy", "models", "precision", "matches"]]
      .to_string(index=False))
print(memory.parameter_summary("bert-base-uncased"))
# %% [markdown]
# ## 3 · Estimated memory vs batch size
# Full fine-tuning = weights + gradients + AdamW states + activations; LoRA = frozen weights + adapter states +
# activations (frozen linears keep no inputs). The dashed line is this notebook's budget minus the 10% margin.
# %%
estimates = memory.estimate_table(["distilbert-base-uncased", "bert-base-uncased"], methods=("full", "lora"),
                                  precisions=("fp32", "fp16"), seq_len=128)
grid = sns.relplot(data=estimates, x="batch_size", y="required_gb", hue="model", style="method", col="precision",
                   kind="line", marker="o", height=3.5, aspect=1.1)
grid.set(xscale="log", yscale="log", xlabel="batch size", ylabel="required memory (GB)")
grid.refline(y=params.memory_gb * (1 - memory.SAFETY_MARGIN), linestyle="--", color="gray")
run.save_figure(grid.figure, "memory_vs_batch.png")
# %% [markdown]
# ## 4 · The plan for the parameters above
# Measured results count only when this notebook describes this machine (same hardware fingerprint).
# %%
fingerprint = selector.matching_fingerprint(params.hardware, params.memory_gb, selector.detect())
plan = selector.recommend(params.task, params.hardware, params.memory_gb, params.latency_ms, params.dataset_size,
                          params.gpus, params.accuracy_priority, params.seq_len, fingerprint=fingerprint,
                          model=params.model, train_hours=params.train_hours)
plan
# %% [markdown]
# ## 5 · Probe: the plan on this machine for a minute (measured beside estimated; saved so the next plan here is
# calibrated by it). Set `probe = True` (the plan's model must be on this machine, else set `model`), or press
# *Probe this plan* in the form below; from a shell: `lowres recommend ... --probe`.
# %%
probe_report = (lowres.probe.probe(plan, params.probe_seconds, params.seq_len) if params.probe and fingerprint
                else "not probed: probe is off, or the parameters describe another machine than this one")
probe_report
# %% [markdown]
# ## 6 · Try it: the form (pre-filled with the parameters; `widgets.selector_form()` pre-fills from detection)
# %%
widgets.selector_form({k: getattr(params, k) for k in ("task", "hardware", "memory_gb", "gpus", "latency_ms",
                                                        "dataset_size", "accuracy_priority", "model",
                                                        "train_hours")},
                      fingerprint=fingerprint)
# %%
run.save(metrics={**selector.plan_metrics(plan), "worked_examples_matching": int(examples["matches"].sum())})

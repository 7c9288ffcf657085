# %% [markdown]
# # 03 · DistilBERT vs BERT: fine-tuning energy and its scaling with tokens
# Wang, Na, Strubell, Friedler and Luccioni (2023) found that fine-tuning energy grows linearly with the tokens
# processed (padding included) and with wall time, and that DistilBERT needs about half the energy of BERT-base.
# One run of this notebook fine-tunes **one twin** (`variant`) of a BERT/DistilBERT pair on one task; the twins see
# identical batches, so their costs compare token for token. Training is cut into Meter windows of a few steps each,
# which gives the (tokens, wall time, energy) points of a least-squares fit within the run.
#
# Defaults = the offline smoke run (tiny-bert on synthetic sentiment, seconds on a CPU). The grid:
# `lowres run distil_vs_bert --profile smoke|cpu|gpu|paper` (both twins, two padding modes, tasks, seeds); the last
# section analyses every finished run of the study.
#
# **Energy on a CPU without RAPL counters is a codecarbon estimate** (CPU load × TDP), not a measurement: each
# figure names its source, and the same fits are shown on wall time, which is measured.
# %% parameters distil_vs_bert
# %%
import matplotlib.pyplot as plt
import pandas as pd

import lowres
from lowres import devices, energy_fit, models, train
from lowres.data.modules import fill_counts
from lowres.meters.callback import MeterCallback, StepWindows
from lowres.studies.distil_vs_bert import analysis, steps

run = lowres.start_run("distil_vs_bert", globals())
params = run.params
run.seed_everything()
print(run.run_id, "->", run.location, "| model:", params.model, "| task:", params.task,
      "| torch threads:", devices.set_threads(params.threads))
# %% [markdown]
# ## 1 · Data: tokens one epoch processes with this padding mode
# `padded_tokens` is what the model computes on (the paper's "tokens processed"); `tokens` are the real ones.
# %%
tokenizer = models.load_tokenizer(params.model)
datamodule = steps.load_datamodule(params, tokenizer)
epoch_tokens = datamodule.epoch_token_counts("train")
# %%
# NBVAL_CHECK_OUTPUT
print(f"{params.dataset} ({params.task}): {len(datamodule.train_set)} train / {len(datamodule.val_set)} val "
      f"features, padding={params.padding}, max_length={params.max_length}")
print(f"one epoch: {epoch_tokens['real_tokens']} real tokens, {epoch_tokens['padded_tokens']} padded "
      f"({epoch_tokens['padded_tokens'] / epoch_tokens['real_tokens']:.2f} padded/real) in {epoch_tokens['batches']} batches")
# %% [markdown]
# ## 2 · Model, and the FLOPs of one training step
# FLOPs of a forward + backward pass on the run's first batch (identical for both twins), counted by torch's
# `FlopCounterMode`; the optimizer step is not counted. A twin built like DistilBERT (one layer in two of its
# teacher: `minilm-half` from `minilm`) costs about half its teacher's FLOPs per token; `distill_steps` > 0 first
# distils it towards the teacher on the run's sentences, labels dropped.
# %%
net, module = steps.build_module(params, datamodule)
flops = steps.step_flops(net, steps.reference_batch(datamodule))
# %%
# NBVAL_CHECK_OUTPUT
print(f"{params.model}: {models.count_parameters(net)['total'] / 1e6:.2f} M parameters, "
      f"{flops['step_flops'] / 1e9:.3f} GFLOP per training step on {flops['step_padded_tokens']} padded tokens "
      f"= {flops['flops_per_padded_token'] / 1e6:.1f} MFLOP per token")
# %% [markdown]
# ## 3 · Fine-tune under the Meter
# `train` / `train_epoch_<n>` windows come from `MeterCallback`; `steps_<i>` windows from `StepWindows`:
# about `fit_windows` windows whose lengths cycle through 1 : 2 : 3 parts of the steps, so their token counts spread
# even under `max_length` padding. The first step (`steps_warmup`: lazy optimizer state, allocations) stays out of
# the fits. Validation is left out of the fit loop so the windows hold training only; the `eval` window scores the
# validation split afterwards.
# %%
window_steps = energy_fit.window_sizes(steps.total_steps(params, datamodule) - 1, params.fit_windows)
windows = StepWindows(run.meter, window_steps, warmup_steps=1)
trainer = train.fit(module, datamodule, precision=params.precision, max_epochs=params.epochs, limit_val_batches=0,
                    accumulate_grad_batches=params.accumulate_grad_batches,
                    callbacks=[MeterCallback(run.meter, datamodule.train_counter), windows])
datamodule.val_counter.reset()
with run.meter.window("eval") as eval_window:
    scores = steps.evaluate(params, net, datamodule)
    fill_counts(eval_window, datamodule.val_counter)
pd.Series(scores)
# %% [markdown]
# ## 4 · What it cost, window by window (energy with its source)
# %%
lowres.measurement_table(run.meter)
# %% [markdown]
# ## 5 · Energy and wall time against tokens processed, within this run
# Each point is one `steps_<i>` window. With `max_length` padding every step holds the same tokens, so the spread
# comes from the windows' different lengths; with length-grouped padding the batches' lengths add to it. A fit that
# cannot be judged (fewer than 3 distinct token counts, e.g. a run too short for its windows) is NaN and says why,
# in the table's `note` and in result.json (`fit_<y>_vs_<x>_note`).
# %%
points = energy_fit.window_points(run.meter.to_dict()).assign(model=params.model, padding=params.padding)
fits = energy_fit.standard_fits(points, by=["model"])
figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
analysis.fit_figure(points, fits, "padded_tokens", "energy_j", ax=axes[0])
analysis.fit_figure(points, fits, "padded_tokens", "wall_s", ax=axes[1])
axes[0].set_title(f"energy ({', '.join(sorted(set(points.energy_source)))})", fontsize=9)
axes[1].set_title("wall time (measured)", fontsize=9)
run.save_figure(figure, "fits.png")
for note in energy_fit.fit_notes(fits):
    print("fit not judged:", note)
fits
# %%
run.save(metrics={**scores, **flops, **energy_fit.fit_metrics(fits)})
# %% [markdown]
# ## 6 · Across runs: every finished run of this study on this machine's outputs
# The DistilBERT/BERT ratios per task, pooled over every setting (95% interval over the pairs), then per setting with
# 95% confidence intervals over seeds (NaN with one seed), beside the quality difference; the energy saved by
# length-grouped padding over padding to `max_length`; and the fits per model and hardware over all windows (and
# over whole runs, where energy is also fitted against the number of examples); last, Wang et al.'s question -
# does the sequence length or the number of examples predict the cost? - as R² on tokens beside R² on examples
# (the `cpu` profile varies max_length and train_size independently).
# Under `lowres run` this shows the grid so far; `lowres.collect` after the grid shows all of it.
# %%
results = lowres.collect("distil_vs_bert")
display(analysis.task_ratios(results))
display(analysis.key_table(results))
display(analysis.padding_savings(results))
display(analysis.energy_fits(results, level="window"))
display(analysis.energy_fits(results, level="run"))
analysis.length_vs_count(results)
# %%
figure, axes = plt.subplots(1, 3, figsize=(17, 4))
analysis.key_figure(results, ax=axes[0])
analysis.ratio_figure(results, ax=axes[1])
analysis.padding_figure(results, ax=axes[2])
figure.tight_layout()

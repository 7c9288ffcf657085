# %% [markdown]
# # 01 · Numerical precision for MLM domain adaptation (Maina et al. 2025)
# Maina, Wolovick and Benotti adapted BERT-base to the questions blind users asked about their photos (VizWiz-VQA)
# with masked language modelling (15% of tokens masked) on two NVIDIA A30s, and found DDP + AMP-FP16 up to 3.5x
# faster than FP32 DataParallel, with ~20% less memory, ~50% less power and no loss in accuracy. This notebook runs
# **one grid point** of the precision axis - `32-true`, `16-mixed` (AMP FP16 with loss scaling), `bf16-mixed`,
# `tf32` (FP32 storage, TF32 matmuls) - and records what really ran: on a CPU, Lightning silently turns `16-mixed`
# into bf16 autocast and TF32 does not exist; the result says so instead of carrying the asked-for label.
# It also answers the paper's open questions: BF16 and TF32, several seeds with confidence intervals, and the
# learning rate (a parameter, with an optional linear scaling rule with batch size).
#
# Defaults = the offline smoke run (tiny-bert on synthetic VizWiz questions, seconds on a CPU). The grid:
# `lowres run precision --profile smoke|cpu|gpu|paper`; the last section analyses every finished run.
# **Energy and power on a CPU without RAPL counters are codecarbon estimates** (CPU load x TDP), named as such.
# %% parameters
model = "tiny-bert"
dataset = "synthetic-vizwiz"
train_size = 128
val_size = 96
epochs = 2
max_steps = -1
batch_size = 16
batch_size_scope = "total"
max_length = 32
padding = "dynamic"
mlm_probability = 0.15
mlm_head = "masked"
lr = 0.002
lr_scaling = "none"
lr_reference_batch = 16
warmup_ratio = 0.2
precision = "32-true"
strategy = "single"
processes = 2
accelerator = "auto"
threads = 1
seed = 0
run_id = None
output_dir = None
# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import lowres
from lowres import mlm, models
from lowres.analysis import precision as analysis

run = lowres.start_run("precision", dict(
    model=model, dataset=dataset, train_size=train_size, val_size=val_size, epochs=epochs, max_steps=max_steps,
    batch_size=batch_size, batch_size_scope=batch_size_scope, max_length=max_length, padding=padding,
    mlm_probability=mlm_probability, mlm_head=mlm_head, lr=lr, lr_scaling=lr_scaling,
    lr_reference_batch=lr_reference_batch, warmup_ratio=warmup_ratio, precision=precision, strategy=strategy,
    processes=processes, accelerator=accelerator, threads=threads, seed=seed), run_id=run_id, output_dir=output_dir)
run.seed_everything()
plan = mlm.plan_for(run.params)
print(run.run_id, "->", run.dir)
pd.Series(plan.to_dict())
# %% [markdown]
# ## 1 · Data: the questions, tokenized; validation masks drawn once
# Every epoch, precision, strategy and seed is scored on the same masked positions of the same questions. The
# majority baseline is the accuracy of always predicting the most frequent masked token: what a model that learned
# token frequencies but no context would score.
# %%
tokenizer = models.load_tokenizer(model)
datamodule = mlm.load_datamodule(run.params, tokenizer, plan)
majority = mlm.majority_accuracy(datamodule)
# %%
# NBVAL_CHECK_OUTPUT
print(f"{dataset}: {len(datamodule.train_set)} train / {len(datamodule.val_set)} val questions, "
      f"batch {plan.total_batch_size} total = {plan.per_rank_batch_size} per device x {plan.devices_used}, "
      f"{len(datamodule.train_dataloader())} steps per epoch")
# %% [markdown]
# ## 2 · Model: the encoder with its MLM head, and the FLOPs of one step
# FLOPs (torch `FlopCounterMode`, forward + backward) only with `padding="max_length"`, where every step has the
# same shape; MFU follows from them on a GPU the FLOP table knows.
# %%
module = mlm.build_module(run.params, plan)
flops_per_step = mlm.step_flops(module, datamodule, plan.per_rank_batch_size)
pd.Series({**models.count_parameters(module.model), "lr": module.hparams.lr, "head": mlm_head,
           "flops_per_step": flops_per_step})
# %% [markdown]
# ## 3 · Adapt under the Meter
# Windows `train`, `train_epoch_<n>` and `validate_epoch_<n>` (time, tokens, memory, energy with its source). An
# out-of-memory error stops the run as a finding: `lowres run` records status `oom` with the batch size.
# %%
record = mlm.fit_mlm(module, datamodule, plan, run.meter, precision=precision, epochs=epochs, max_steps=max_steps,
                     record_dir=run.dir, flops_per_step=flops_per_step)
mlm.history_frame(record)
# %%
# NBVAL_CHECK_OUTPUT
print(f"asked {record.precision['requested']}, ran {record.precision['effective']} (Lightning "
      f"{record.precision['lightning']}, autocast {record.precision['autocast_dtype']}, loss scaling "
      f"{record.precision['grad_scaler']}, TF32 matmuls {record.precision['tf32_matmul']})")
for note in record.precision["notes"] + record.parallel["notes"]:
    print("note:", note)
# %% [markdown]
# ## 4 · What it cost, window by window, and the accuracy curve
# %%
cost = lowres.measurement_table(run.meter)
axes = mlm.history_frame(record).plot(x="epoch", y="val_mlm_accuracy", marker="o", figsize=(5, 3.2), legend=False)
axes.axhline(majority, color="gray", ls="--", lw=1)
ran = record.precision["effective"]
axes.set(ylabel="validation MLM accuracy", title=f"asked {precision}, ran {ran}, batch {batch_size}")
run.save_figure(axes, "accuracy.png")
cost
# %%
run.save(metrics={**record.metrics(), "val_majority_accuracy": majority, "lr_used": module.hparams.lr,
                  "flops_per_step": flops_per_step})
# %% [markdown]
# ## 5 · Across runs: every finished run of this study
# Speed-up in epochs/minute of each configuration over the FP32 baseline at the same batch (FP32 DataParallel where
# DP really ran, else the single device), with 95% t-intervals over seeds (NaN with one seed), beside the changes
# in peak memory, power and accuracy; then our best ratios against the paper's. Under `lowres run` this shows the
# grid so far; `lowres.collect("precision")` after the grid shows all of it.
# %%
results = lowres.collect("precision")
display(analysis.key_table(results))
display(analysis.speedup_table(results))
Markdown(analysis.comparison_text(results))
# %%
figure, axes = plt.subplots(2, 3, figsize=(17, 8))
analysis.key_figure(results, ax=axes[0, 0])
analysis.memory_figure(results, ax=axes[0, 1])
analysis.power_figure(results, ax=axes[0, 2])
analysis.energy_figure(results, ax=axes[1, 0])
analysis.accuracy_figure(results, ax=axes[1, 1])
analysis.speedup_figure(results, ax=axes[1, 2])
figure.tight_layout()

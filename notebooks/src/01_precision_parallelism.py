# %% [markdown]
# # 01 · Precision and parallelism for MLM domain adaptation (Maina et al. 2025)
# Maina, Wolovick and Benotti adapted BERT-base to the questions blind users asked about their photos (VizWiz-VQA)
# with masked language modelling (15% of tokens masked) on two NVIDIA A30s, and found DDP + AMP-FP16 up to 3.5x
# faster than FP32 DataParallel, with ~20% less memory, ~50% less power and no loss in accuracy. This notebook runs
# **one grid point** of either study:
# - `precision` varies the numerical precision - `32-true`, `16-mixed` (AMP FP16 with loss scaling), `bf16-mixed`,
#   `tf32` (FP32 storage, TF32 matmuls) - and records what really ran: on a CPU, Lightning silently turns
#   `16-mixed` into bf16 autocast and TF32 does not exist; the result says so instead of carrying the asked-for label.
# - `parallelism` varies the strategy - `single`, `dp` (torch.nn.DataParallel: Lightning 2 removed its DP strategy;
#   with fewer than 2 CUDA devices it does nothing, and the result says so), `ddp` (Lightning; `ddp_notebook` inside
#   this kernel, gloo with CPU processes) - recording the per-rank and the total batch, and adds DDP's **scaling
#   efficiency**: throughput with N workers / (N x throughput with one). On one machine's CPU cores DDP's processes
#   share the cores a single run would use: expect an efficiency well below 1 there.
#
# It also answers the paper's open questions: BF16 and TF32, several seeds with confidence intervals, and the
# learning rate (a parameter, with an optional linear scaling rule with batch size).
# Defaults = the offline smoke run (tiny-bert on synthetic VizWiz questions, seconds on a CPU). The grids:
# `lowres run precision|parallelism --profile smoke|cpu|gpu|paper`; the last section analyses every finished run.
# **Energy and power on a CPU without RAPL counters are codecarbon estimates** (CPU load x TDP), named as such.
# %% parameters precision
# %%
import pandas as pd
from IPython.display import Markdown, display

import lowres
from lowres import mlm, models, studies
from lowres.studies.precision import steps

run = lowres.start_run(study, globals())  # `study`: precision or parallelism (the runner sets it)
params = run.params
analysis = studies.analysis(run.study)
run.seed_everything()
plan = steps.plan_for(params)
print(run.run_id, "->", run.location)
pd.Series(plan.to_dict())
# %% [markdown]
# ## 1 · Data: the questions, tokenized; validation masks drawn once
# Every epoch, precision, strategy and seed is scored on the same masked positions of the same questions. The
# majority baseline is the accuracy of always predicting the most frequent masked token: what a model that learned
# token frequencies but no context would score.
# %%
tokenizer = models.load_tokenizer(params.model)
datamodule = steps.load_datamodule(params, tokenizer, plan)
majority = mlm.majority_accuracy(datamodule)
# %%
# NBVAL_CHECK_OUTPUT
print(f"{params.dataset}: {len(datamodule.train_set)} train / {len(datamodule.val_set)} val questions, "
      f"batch {plan.total_batch_size} total = {plan.per_rank_batch_size} per device x {plan.devices_used}, "
      f"{len(datamodule.train_dataloader())} steps per epoch")
# %% [markdown]
# ## 2 · Model: the encoder with its MLM head, and the FLOPs of one step
# FLOPs (torch `FlopCounterMode`, forward + backward) only with `padding="max_length"`, where every step has the
# same shape; MFU follows from them on a GPU the FLOP table knows.
# %%
module = steps.build_module(params, plan)
flops_per_step = mlm.step_flops(module, datamodule, plan.per_rank_batch_size)
pd.Series({**models.count_parameters(module.model), "lr": module.hparams.lr, "head": params.mlm_head,
           "flops_per_step": flops_per_step})
# %% [markdown]
# ## 3 · Adapt under the Meter
# Windows `train`, `train_epoch_<n>` and `validate_epoch_<n>` (time, tokens, memory, energy with its source). An
# out-of-memory error stops the run as a finding: `lowres run` records status `oom` with the batch size.
# %%
record = mlm.fit_mlm(module, datamodule, plan, run.meter, precision=params.precision, epochs=params.epochs,
                     max_steps=params.max_steps, record_dir=run.dir, flops_per_step=flops_per_step,
                     accumulate_grad_batches=params.accumulate_grad_batches)
steps.history_frame(record)
# %%
# NBVAL_CHECK_OUTPUT
print(f"precision: asked {record.precision['requested']}, ran {record.precision['effective']} (Lightning "
      f"{record.precision['lightning']}, autocast {record.precision['autocast_dtype']}, loss scaling "
      f"{record.precision['grad_scaler']}, TF32 matmuls {record.precision['tf32_matmul']})")
print(f"strategy {record.parallel['strategy']} ({record.parallel['lightning_strategy']}): "
      f"{record.parallel['processes']} process(es), {record.parallel['devices_used']} device(s) computing, "
      f"batch {record.parallel['per_rank_batch_size']} per device / {record.parallel['total_batch_size']} total, "
      f"DataParallel active: {record.parallel['dp_active']}")
for note in record.precision["notes"] + record.parallel["notes"]:
    print("note:", note)
# %% [markdown]
# ## 4 · What it cost, window by window, and the accuracy curve
# %%
cost = lowres.measurement_table(run.meter)
axes = steps.history_frame(record).plot(x="epoch", y="val_mlm_accuracy", marker="o", figsize=(5, 3.2), legend=False)
axes.axhline(majority, color="gray", ls="--", lw=1)
ran = record.precision["effective"]
axes.set(ylabel="validation MLM accuracy",
         title=f"{params.strategy} x{record.parallel['processes']}, asked {params.precision}, ran {ran}, "
               f"batch {params.batch_size}")
run.save_figure(axes, "accuracy.png")
cost
# %%
run.save(metrics={**record.metrics(), "val_majority_accuracy": majority, "lr_used": module.hparams.lr,
                  "flops_per_step": flops_per_step})
# %% [markdown]
# ## 5 · Across runs: every finished run of this study
# Speed-up in epochs/minute of each configuration over the FP32 baseline at the same batch (FP32 DataParallel where
# DP really ran, else the single device), with 95% t-intervals over seeds (NaN with one seed), beside the changes
# in peak memory, power and accuracy; for the parallelism study, the scaling efficiency of each multi-worker
# configuration; then our best ratios against the paper's. Under `lowres run` this shows the grid so far;
# `lowres.collect(study)` after the grid shows all of it.
# %%
results = lowres.collect(run.study)
for caption, table in analysis.tables(results):
    display(Markdown(f"**{caption}**"), table)
Markdown(analysis.comparison_text(results))
# %%
analysis.overview_figure(results)

# %% [markdown]
# # 04 · LoRA vs full fine-tuning, and FP16 / BF16 / INT8 inference
# One run fine-tunes with one method — `full`, `lora` (peft adapters on the attention query/value projections, rank
# `lora_rank`) or `lora-8bit` (QLoRA-style: the frozen base in 8 bits by bitsandbytes, on CUDA or CPU) — then
# evaluates the result at every inference precision: accuracy change vs fp32, model memory, latency per example at batch 1 and 32.
# The defaults are the offline smoke run (tiny-bert LoRA r=8 on synthetic sentiment, seconds on a CPU).
# Grids: `lowres run lora --profile smoke|cpu|gpu`. The sweep figures (rank sweep, Pareto fronts, reference
# comparison) show every finished run of this study on the same model and dataset, plus this one: run the grid,
# then open the last run's notebook (or the report).
# %% parameters lora
# %%
import lowres
from lowres import batch_fit, lora, quantize, train
from lowres.data.modules import classification_datamodule
from lowres.meters.callback import MeterCallback
from lowres.studies.lora import analysis

run = lowres.start_run("lora", globals())
params = run.params  # validated; LoRA settings are cleared (None) for full fine-tuning
run.seed_everything()
print(run.run_id, "->", run.location)
# %% [markdown]
# ## 1 · Data
# %%
# NBVAL_CHECK_OUTPUT
datamodule = classification_datamodule(params)
corpus = datamodule.corpus
print(f"{corpus.name}: {len(corpus.train)} train / {len(corpus.val)} val, {corpus.num_labels} labels")
# %% [markdown]
# ## 2 · Model: every weight, or LoRA adapters + the new head (trainable share counted by peft itself)
# %%
# NBVAL_CHECK_OUTPUT
net = lora.build_model(params.model, params.method, corpus.num_labels, rank=params.lora_rank, alpha=params.lora_alpha,
                       dropout=params.lora_dropout, target_modules=params.target_modules,
                       modules_to_save=params.modules_to_save)
counts = lora.parameter_counts(net)
print(f"{params.method}: {counts['trainable_params']:,} of {counts['total_params']:,} parameters train "
      f"({counts['trainable_pct']:.2f}%), counted by {counts['params_counted_by']}")
# %%
# The micro-batch and accumulation this run trains with (batch_size auto: fitted to the memory by a short trial)
batch = batch_fit.resolve(params, datamodule, net, method=params.method)
print(batch)
# %% [markdown]
# ## 3 · Fit under the Meter (windows per phase and epoch: time, peak memory, energy with its source)
# %%
module = train.ClassificationModule(net, lr=params.learning_rate)
meter_callback = MeterCallback(run.meter, datamodule.train_counter, val_token_counter=datamodule.val_counter)
trainer = train.fit(module, datamodule, precision=params.precision, max_epochs=params.epochs,
                    accumulate_grad_batches=batch.accumulate_grad_batches, callbacks=[meter_callback])
scores = train.classification_scores(*lora.last_validation_predictions(module))
lowres.measurement_table(run.meter)
# %% [markdown]
# ## 4 · On disk: adapter vs full checkpoint; the reloaded model must reproduce the trained predictions
# %%
# NBVAL_CHECK_OUTPUT
exported = lora.export(net, module, params.model, params.method, run.dir, datamodule.val_dataloader(),
                       corpus.num_labels, params.precision)
print(f"reloaded model reproduces {exported.reload_agreement:.0%} of the trained model's predictions; "
      f"adapter smaller than the full checkpoint: {params.method == 'full' or exported.adapter_bytes < exported.checkpoint_bytes}")
# %% [markdown]
# ## 5 · Inference precisions of the fine-tuned model (fp32 is the reference of every change)
# %%
inference = quantize.compare_precisions(exported.model, datamodule, params.precisions, meter=run.meter,
                                        checkpoint_dir=exported.checkpoint_dir, latency_batches=params.latency_batches)
metrics = {**scores, **counts, **exported.metrics(), "latency_ms_b1_p50": inference["fp32"]["latency_ms_b1_p50"],
           "inference": inference, **batch.metrics()}
study = analysis.same_setting(analysis.frame_with_run(lowres.collect("lora"), run.result(metrics)), params)
quantization = analysis.quantization_table(study[study["run_id"] == run.run_id])
quantization
# %%
# NBVAL_CHECK_OUTPUT
print("int8 model smaller than fp32:",
      bool(quantization.set_index("precision").loc["int8", "memory_saved_pct"] > 0) if "int8" in inference else "n/a")
# %% [markdown]
# ## 6 · Rank sweep and Pareto fronts (this study's runs on the same model and dataset)
# %%
run.save_figure(analysis.key_figure(study), "rank_sweep.png")
analysis.key_table(study)
# %%
axes = analysis.pareto_figure(study)
run.save_figure(axes[0], "pareto.png")
# %% [markdown]
# ## 7 · Against the design's reference figures (distilbert-base on SST-2; ours: this setting)
# %%
comparison = analysis.reference_comparison(study)
run.save_figure(analysis.reference_figure(comparison), "reference.png")
comparison
# %%
run.save(metrics=metrics)

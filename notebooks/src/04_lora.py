# %% [markdown]
# # 04 · LoRA vs full fine-tuning, and FP16 / BF16 / INT8 inference
# One run fine-tunes with one method — `full`, `lora` (peft adapters on the attention query/value projections, rank
# `lora_rank`) or `lora-8bit` (QLoRA-style: the frozen base in 8 bits by bitsandbytes, on CUDA or CPU) — then
# evaluates the result at every inference precision: accuracy change vs fp32, model memory, latency per example at batch 1 and 32.
# The defaults are the offline smoke run (tiny-bert LoRA r=8 on synthetic sentiment, seconds on a CPU).
# Grids: `lowres run lora --profile smoke|cpu|gpu`. The sweep figures (rank sweep, Pareto fronts, reference
# comparison) show every finished run of this study on the same model and dataset, plus this one: run the grid,
# then open the last run's notebook (or the report).
# %% parameters
model = "tiny-bert"
dataset = "synthetic-sentiment"
train_size = 1024
val_size = 200
method = "lora"
lora_rank = 8
lora_alpha = 16
lora_dropout = 0.1
lora_target_modules = None
lora_modules_to_save = None
epochs = 2
batch_size = 16
max_length = 32
lr = 0.0005
lora_lr = 0.005
precision = "32-true"
inference_precisions = "fp32,int8"
latency_batches = 10
seed = 0
run_id = None
output_dir = None
# %%
import lowres
from lowres import data, lora, models, quantize, train
from lowres.analysis import lora as lora_analysis
from lowres.data.modules import ClassificationDataModule
from lowres.meters.callback import MeterCallback

run = lowres.start_run("lora", dict(model=model, dataset=dataset, train_size=train_size, val_size=val_size,
                                    method=method, lora_rank=lora_rank, lora_alpha=lora_alpha,
                                    lora_dropout=lora_dropout, lora_target_modules=lora_target_modules,
                                    lora_modules_to_save=lora_modules_to_save,
                                    epochs=epochs, batch_size=batch_size, max_length=max_length, lr=lr,
                                    lora_lr=lora_lr, precision=precision, inference_precisions=inference_precisions,
                                    latency_batches=latency_batches, seed=seed),
                       run_id=run_id, output_dir=output_dir)
params = run.params  # validated; LoRA settings are cleared (None) for full fine-tuning
run.seed_everything()
print(run.run_id, "->", run.dir)
# %% [markdown]
# ## 1 · Data
# %%
# NBVAL_CHECK_OUTPUT
corpus = data.load_corpus(dataset, train_size=train_size, val_size=val_size, seed=seed)
tokenizer = models.load_tokenizer(model)
datamodule = ClassificationDataModule(corpus, tokenizer, batch_size=batch_size, max_length=max_length, seed=seed)
datamodule.setup()
print(f"{corpus.name}: {len(corpus.train)} train / {len(corpus.val)} val, {corpus.num_labels} labels")
# %% [markdown]
# ## 2 · Model: every weight, or LoRA adapters + the new head (trainable share counted by peft itself)
# %%
# NBVAL_CHECK_OUTPUT
net = lora.build_model(model, method, corpus.num_labels, rank=params.lora_rank, alpha=params.lora_alpha,
                       dropout=params.lora_dropout, target_modules=params.target_modules,
                       modules_to_save=params.modules_to_save)
counts = lora.parameter_counts(net)
print(f"{method}: {counts['trainable_params']:,} of {counts['total_params']:,} parameters train "
      f"({counts['trainable_pct']:.2f}%), counted by {counts['params_counted_by']}")
# %% [markdown]
# ## 3 · Fit under the Meter (windows per phase and epoch: time, peak memory, energy with its source)
# %%
module = train.ClassificationModule(net, lr=params.learning_rate)
meter_callback = MeterCallback(run.meter, datamodule.train_counter, val_token_counter=datamodule.val_counter)
trainer = train.fit(module, datamodule, precision=precision, max_epochs=epochs, callbacks=[meter_callback])
scores = train.classification_scores(*lora.last_validation_predictions(module))
lowres.measurement_table(run.meter)
# %% [markdown]
# ## 4 · On disk: adapter vs full checkpoint; the reloaded model must reproduce the trained predictions
# %%
# NBVAL_CHECK_OUTPUT
exported = lora.export(net, module, model, method, run.dir, datamodule.val_dataloader(), corpus.num_labels,
                       precision)
print(f"reloaded model reproduces {exported.reload_agreement:.0%} of the trained model's predictions; "
      f"adapter smaller than the full checkpoint: {method == 'full' or exported.adapter_bytes < exported.checkpoint_bytes}")
# %% [markdown]
# ## 5 · Inference precisions of the fine-tuned model (fp32 is the reference of every change)
# %%
inference = quantize.compare_precisions(exported.model, datamodule, params.precisions, meter=run.meter,
                                        checkpoint_dir=exported.checkpoint_dir, latency_batches=latency_batches)
metrics = {**scores, **counts, **exported.metrics(), "latency_ms_b1_p50": inference["fp32"]["latency_ms_b1_p50"],
           "inference": inference}
study = lora_analysis.same_setting(lora_analysis.frame_with_run(lowres.collect("lora"), run, metrics), params)
quantization = lora_analysis.quantization_table(study[study["run_id"] == run.run_id])
quantization
# %%
# NBVAL_CHECK_OUTPUT
print("int8 model smaller than fp32:",
      bool(quantization.set_index("precision").loc["int8", "memory_saved_pct"] > 0) if "int8" in inference else "n/a")
# %% [markdown]
# ## 6 · Rank sweep and Pareto fronts (this study's runs on the same model and dataset)
# %%
run.save_figure(lora_analysis.key_figure(study), "rank_sweep.png")
lora_analysis.key_table(study)
# %%
axes = lora_analysis.pareto_figure(study)
run.save_figure(axes[0], "pareto.png")
# %% [markdown]
# ## 7 · Against the reference figures quoted in the issue (distilbert-base on SST-2; ours: this setting)
# %%
comparison = lora_analysis.reference_comparison(study)
run.save_figure(lora_analysis.reference_figure(comparison), "reference.png")
comparison
# %%
run.save(metrics=metrics)

# %% [markdown]
# # 00 · Quickstart: fine-tune a small classifier and record what it cost
# The smallest end-to-end use of lowres: load data → build a model → fit under a Meter → evaluate → save
# `result.json`. The defaults below are the offline smoke run (tiny-bert on synthetic sentiment, seconds on a CPU).
# Run a grid with `lowres run quickstart --profile cpu` (pretrained MiniLM on real SST-2).
# %% parameters quickstart
# %%
import pandas as pd
import seaborn as sns

import lowres
from lowres import batch_fit, models, train
from lowres.data.modules import classification_datamodule, fill_counts
from lowres.meters.callback import MeterCallback

run = lowres.start_run("quickstart", globals())
params = run.params  # validated; every cell below reads these
run.seed_everything()
print(run.run_id, "->", run.location)
# %% [markdown]
# ## 1 · Data
# %%
datamodule = classification_datamodule(params)
corpus = datamodule.corpus
# %%
# NBVAL_CHECK_OUTPUT
print(f"{corpus.name}: {len(corpus.train)} train / {len(corpus.val)} val, {corpus.num_labels} labels")
# %% [markdown]
# ## 2 · Model
# %%
net = models.load_model(params.model, "classification", num_labels=corpus.num_labels)
module = train.ClassificationModule(net, lr=params.lr)
pd.DataFrame([models.count_parameters(net)])  # one row: counts stay whole numbers
# %%
# The micro-batch and accumulation this run trains with (batch_size auto: fitted to the memory by a short trial)
batch = batch_fit.resolve(params, datamodule, net)
print(batch)
# %% [markdown]
# ## 3 · Fit under the Meter (windows per phase and epoch: time, memory, energy with its source)
# %%
meter_callback = MeterCallback(run.meter, datamodule.train_counter, val_token_counter=datamodule.val_counter)
trainer = train.fit(module, datamodule, precision=params.precision, max_epochs=params.epochs,
                    max_steps=params.max_steps, accumulate_grad_batches=batch.accumulate_grad_batches,
                    callbacks=[meter_callback])
datamodule.val_counter.reset()
with run.meter.window("eval") as window:
    scores = train.evaluate_classifier(net, datamodule.val_dataloader())
    fill_counts(window, datamodule.val_counter)
scores
# %% [markdown]
# ## 4 · What it cost
# %%
cost = lowres.measurement_table(run.meter)
axes = sns.barplot(data=cost, y="window", x="tokens_per_s", orient="h")  # window names read left to right
axes.set(title="Throughput per window (real tokens / s)", xlabel="real tokens / s", ylabel="")
run.save_figure(axes, "throughput.png")
cost
# %%
run.save(metrics={**scores, **batch.metrics()})

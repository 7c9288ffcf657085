# %% [markdown]
# # 00 · Quickstart: fine-tune a small classifier and record what it cost
# The smallest end-to-end use of lowres: load data → build a model → fit under a Meter → evaluate → save
# `result.json`. The defaults below are the offline smoke run (tiny-bert on synthetic sentiment, seconds on a CPU).
# Run a grid with `lowres run quickstart --profile cpu` (pretrained MiniLM on real SST-2).
# %% parameters
model = "tiny-bert"
dataset = "synthetic-sentiment"
train_size = 1024
val_size = 200
epochs = 2
max_steps = -1
batch_size = 16
max_length = 32
lr = 0.0005
precision = "32-true"
seed = 0
run_id = None
output_dir = None
# %%
import pandas as pd
import seaborn as sns

import lowres
from lowres import data, models, train
from lowres.data.modules import ClassificationDataModule, fill_counts
from lowres.meters.callback import MeterCallback

run = lowres.start_run("quickstart", dict(model=model, dataset=dataset, train_size=train_size, val_size=val_size,
                                          epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                                          max_length=max_length, lr=lr, precision=precision, seed=seed),
                       run_id=run_id, output_dir=output_dir)
run.seed_everything()
print(run.run_id, "->", run.dir)
# %% [markdown]
# ## 1 · Data
# %%
corpus = data.load_corpus(dataset, train_size=train_size, val_size=val_size, seed=seed)
tokenizer = models.load_tokenizer(model)
datamodule = ClassificationDataModule(corpus, tokenizer, batch_size=batch_size, max_length=max_length, seed=seed)
datamodule.setup()
# %%
# NBVAL_CHECK_OUTPUT
print(f"{corpus.name}: {len(corpus.train)} train / {len(corpus.val)} val, {corpus.num_labels} labels")
# %% [markdown]
# ## 2 · Model
# %%
net = models.load_model(model, "classification", num_labels=corpus.num_labels)
module = train.ClassificationModule(net, lr=lr)
pd.Series(models.count_parameters(net))
# %% [markdown]
# ## 3 · Fit under the Meter (windows per phase and epoch: time, memory, energy with its source)
# %%
meter_callback = MeterCallback(run.meter, datamodule.train_counter, val_token_counter=datamodule.val_counter)
trainer = train.fit(module, datamodule, precision=precision, max_epochs=epochs, max_steps=max_steps,
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
axes = sns.barplot(data=cost, x="window", y="tokens_per_s")
axes.set(title="Throughput per window (real tokens / s)")
run.save_figure(axes, "throughput.png")
cost
# %%
run.save(metrics=scores)

# %% [markdown]
# # 05b · Prompting: classify without training, zero- and few-shot, and what it costs per example
# No gradient step anywhere: a pretrained model is only *asked*. Offline default (the smoke run): **embedding
# prompting** with the pretrained MiniLM — zero-shot by similarity to label descriptions, few-shot by class
# prototypes or a kNN vote over k labelled examples per class. With hub access (`--profile gpu`): **generative**
# label scoring with flan-t5, zero- and k-shot, over several templates to show prompt sensitivity.
# Every shot count is scored within one run; latency is per example at `batch_size` (1 = serving). Every random
# draw (eval subset, support examples) takes `seed` explicitly and nothing trains: no global seeding needed.
# %% parameters prompting
# %%
import lowres
from lowres import data, devices
from lowres.studies.prompting import analysis, steps

run = lowres.start_run("prompting", globals())
params = run.params
devices.set_threads(params.threads, faiss=True)
device = devices.pick_device(params.device)
print(run.run_id, "->", run.location, "| device:", device)
# %% [markdown]
# ## 1 · Data (support examples from train, scores on dev) and the model
# %%
corpus = data.load_corpus(params.dataset, val_size=params.n_eval, seed=params.seed)
scorer = steps.load_scorer(params.method, params.model, device)
plan = steps.configs(params.method, params.shots, params.n_templates)
# %%
# NBVAL_CHECK_OUTPUT
print(f"{corpus.name}: {len(corpus.train)} train (support pool) / {len(corpus.val)} scored, {corpus.num_labels} labels")
print("configurations:", ", ".join(c.name for c in plan))
# %% [markdown]
# ## 2 · Score every configuration under its own Meter window (time, energy with its source). Embedding prompting
# encodes the scored texts once (window `encode_eval`): every configuration compares the same vectors and is charged
# that encoding's time and energy, plus its own support examples and scoring.
# %%
encoded = steps.encode_eval(params.method, corpus.val, scorer, params.batch_size, meter=run.meter)
scored = {}
for config in plan:
    with run.meter.window(config.name, samples=len(corpus.val)) as window:
        scored[config] = steps.run_config(config, corpus.val, corpus.train, scorer, corpus.num_labels,
                                          params.batch_size, params.max_input_tokens, params.seed, encoded=encoded)
        window.tokens = steps.window_tokens(config, scored[config])
table = steps.results_table(scored, run.meter.to_dict())
table
# %%
# NBVAL_CHECK_OUTPUT
print(table[["config", "accuracy", "macro_f1", "prompt_tokens"]].round(3).to_string(index=False))
# %% [markdown]
# ## 3 · Accuracy vs shots and vs latency
# %%
figure = analysis.run_figure(table)
run.save_figure(figure, "prompting.png")
# %% [markdown]
# ## 4 · Record (headline: the most shots — class prototypes, or the mean over templates — fixed in advance)
# %%
metrics = steps.run_metrics(table, n_eval=len(corpus.val))
run.save(metrics=metrics)
{k: v for k, v in metrics.items() if k != "by_config"}

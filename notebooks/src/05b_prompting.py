# %% [markdown]
# # 05b · Prompting: classify without training, zero- and few-shot, and what it costs per example
# No gradient step anywhere: a pretrained model is only *asked*. Offline default (the smoke run): **embedding
# prompting** with the pretrained MiniLM — zero-shot by similarity to label descriptions, few-shot by class
# prototypes or a kNN vote over k labelled examples per class. With hub access (`--profile gpu`): **generative**
# label scoring with flan-t5, zero- and k-shot, over several templates to show prompt sensitivity.
# Every shot count is scored within one run; latency is per example at `batch_size` (1 = serving). Every random
# draw (eval subset, support examples) takes `seed` explicitly and nothing trains: no global seeding needed.
# %% parameters
dataset = "synthetic-sentiment"
method = "embedding"
model = "minilm"
n_eval = 100
shots = [0, 4, 16]
n_templates = 1
batch_size = 1
max_input_tokens = 512
device = "auto"
threads = 1
seed = 0
run_id = None
output_dir = None
# %%
import lowres
from lowres import data
from lowres.analysis import prompting as prompt_study
from lowres.analysis import rag as rag_study

run = lowres.start_run("prompting", dict(dataset=dataset, method=method, model=model, n_eval=n_eval, shots=shots,
                                         n_templates=n_templates, batch_size=batch_size,
                                         max_input_tokens=max_input_tokens, device=device, threads=threads,
                                         seed=seed),
                       run_id=run_id, output_dir=output_dir)
rag_study.set_threads(threads)
device = rag_study.pick_device(device)
print(run.run_id, "->", run.dir, "| device:", device)
# %% [markdown]
# ## 1 · Data (support examples from train, scores on dev) and the model
# %%
corpus = data.load_corpus(dataset, val_size=n_eval, seed=seed)
scorer = prompt_study.load_scorer(method, model, device)
plan = prompt_study.configs(method, shots, n_templates)
# %%
# NBVAL_CHECK_OUTPUT
print(f"{corpus.name}: {len(corpus.train)} train (support pool) / {len(corpus.val)} scored, {corpus.num_labels} labels")
print("configurations:", ", ".join(c.name for c in plan))
# %% [markdown]
# ## 2 · Score every configuration under its own Meter window (time, energy with its source). Embedding prompting
# encodes the scored texts once (window `encode_eval`): every configuration compares the same vectors and is charged
# that encoding's time and energy, plus its own support examples and scoring.
# %%
encoded = prompt_study.encode_eval(method, corpus.val, scorer, batch_size, meter=run.meter)
scored = {}
for config in plan:
    with run.meter.window(config.name, samples=len(corpus.val)) as window:
        scored[config] = prompt_study.run_config(config, corpus.val, corpus.train, scorer, corpus.num_labels,
                                                 batch_size, max_input_tokens, seed, encoded=encoded)
        window.tokens = prompt_study.window_tokens(config, scored[config])
table = prompt_study.results_table(scored, run.meter.to_dict())
table
# %%
# NBVAL_CHECK_OUTPUT
print(table[["config", "accuracy", "macro_f1", "prompt_tokens"]].round(3).to_string(index=False))
# %% [markdown]
# ## 3 · Accuracy vs shots and vs latency
# %%
figure = prompt_study.run_figure(table)
run.save_figure(figure, "prompting.png")
# %% [markdown]
# ## 4 · Record (headline: the most shots — class prototypes, or the mean over templates — fixed in advance)
# %%
metrics = prompt_study.run_metrics(table, n_eval=len(corpus.val))
run.save(metrics=metrics)
{k: v for k, v in metrics.items() if k != "by_config"}

# %% [markdown]
# # 08 · Seq2seq fine-tuning: summarization and generative QA with T5 (full, LoRA, 8-bit LoRA)
# One run fine-tunes an encoder-decoder with one method — `full`, `lora` (peft adapters on T5 attention's q/v) or
# `lora-8bit` (the frozen base in 8 bits by bitsandbytes) — then scores its greedy generations on the validation
# set (ROUGE-1/2/L by `rouge-score`; SQuAD exact match / F1 for QA) beside a baseline with no model (the lead
# sentence; for QA the lexical extractive reader), and measures what generating costs: one request at a time with
# greedy and beam search, and in batches, with the generated tokens counted.
# The defaults are the offline smoke run: tiny-t5 (random weights) learns 768 synthetic stories in about a minute.
# `lowres run seq2seq --profile cpu|gpu` fine-tunes flan-t5-small/base (from the HF cache) on SQuAD and stories.
# The run's `checkpoint/` (model + tokenizer) can be the rag study's reader: `--set generator=<run id or dir>`.
# %% parameters seq2seq
# %%
import lowres
from lowres import lora, seq2seq, train
from lowres.data.corpora import load_seq2seq_corpus
from lowres.data.modules import Seq2SeqDataModule
from lowres.meters.callback import MeterCallback
from lowres.models import load_tokenizer
from lowres.studies.seq2seq import analysis

run = lowres.start_run("seq2seq", globals())
params = run.params  # validated; LoRA settings are cleared (None) for full fine-tuning
run.seed_everything()
print(run.run_id, "->", run.location)
# %% [markdown]
# ## 1 · Data, and the score of a baseline that uses no model
# %%
# NBVAL_CHECK_OUTPUT
corpus = load_seq2seq_corpus(params.dataset, params.train_size, params.val_size, params.seed)
datamodule = Seq2SeqDataModule(corpus, load_tokenizer(params.model), max_target_length=params.max_target_length,
                               batch_size=params.batch_size, max_length=params.max_length, seed=params.seed)
datamodule.setup()
baseline_name, baseline_predictions = seq2seq.baseline_predictions(corpus.val, corpus.task)
baseline = {"name": baseline_name, **seq2seq.quality(baseline_predictions, corpus.val, corpus.task)}
print(f"{corpus.name} ({corpus.task}): {len(corpus.train)} train / {len(corpus.val)} val pairs")
print(f"example source: {corpus.val[0]['source'][:160]}\nexample target: {corpus.val[0]['target']}")
# %%
print(f"baseline ({baseline_name}): " + ", ".join(f"{k} {v:.3f}" for k, v in baseline.items() if k != "name"))
# %% [markdown]
# ## 2 · Model: every weight, or LoRA adapters (trainable share counted by peft itself)
# %%
# NBVAL_CHECK_OUTPUT
net = lora.build_model(params.model, params.method, rank=params.lora_rank, alpha=params.lora_alpha,
                       dropout=params.lora_dropout, target_modules=params.target_modules, task="seq2seq")
counts = lora.parameter_counts(net)
print(f"{params.method}: {counts['trainable_params']:,} of {counts['total_params']:,} parameters train "
      f"({counts['trainable_pct']:.2f}%), counted by {counts['params_counted_by']}")
# %% [markdown]
# ## 3 · Fit under the Meter (windows per phase and epoch: time, peak memory, energy with its source; the token
# counts include the decoder's)
# %%
module = train.Seq2SeqModule(net, lr=params.learning_rate)
meter_callback = MeterCallback(run.meter, datamodule.train_counter, val_token_counter=datamodule.val_counter)
trainer = train.fit(module, datamodule, precision=params.precision, max_epochs=params.epochs,
                    accumulate_grad_batches=params.accumulate_grad_batches, callbacks=[meter_callback])
lowres.measurement_table(run.meter)
# %% [markdown]
# ## 4 · Generate for every validation source (greedy) and score it
# %%
sources = [row["source"] for row in corpus.val]
with run.meter.window("eval", samples=len(sources)):
    generated = seq2seq.generate(net, datamodule.tokenizer, sources, max_new_tokens=params.max_new_tokens,
                                 max_input_tokens=params.max_length, batch_size=params.throughput_batch_size)
scores = seq2seq.quality(generated.texts, corpus.val, corpus.task)
for row, text in list(zip(corpus.val, generated.texts))[:3]:
    print(f"reference: {row['target']}\ngenerated: {text}\n")
print("model:   ", ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
print("baseline:", ", ".join(f"{k} {v:.3f}" for k, v in baseline.items() if k != "name"))
# %% [markdown]
# ## 5 · On disk: adapter vs full checkpoint (with its tokenizer); the reloaded model must decode as the trained one
# %%
# NBVAL_CHECK_OUTPUT
exported = seq2seq.export(net, datamodule.tokenizer, params.model, params.method, run.dir, sources[:16],
                          params.max_new_tokens, params.max_length, corpus.source_template)
print(f"reloaded model decodes {exported.reload_agreement:.0%} of the probe sources as the trained model did; "
      f"adapter smaller than the full checkpoint: {params.method == 'full' or exported.adapter_bytes < exported.checkpoint_bytes}")
# %% [markdown]
# ## 6 · What generating costs: one request at a time (greedy, then beam search), then batched throughput
# %%
requests = sources[:params.latency_requests]
generation = {}
for name, beams in (("greedy", 1), ("beam", params.num_beams)):
    with run.meter.window(f"generate_{name}", samples=len(requests)):
        generation[name] = seq2seq.request_latency(exported.model, datamodule.tokenizer, requests, beams,
                                                   params.max_new_tokens, params.max_length)
with run.meter.window("generate_batched", samples=len(sources)):
    throughput = seq2seq.batched_throughput(exported.model, datamodule.tokenizer, sources,
                                            params.throughput_batch_size, params.max_new_tokens, params.max_length)
metrics = {**scores, "n_eval": len(sources), "generated_tokens": generated.total_tokens, "baseline": baseline,
           **counts, **exported.metrics(), "generation": generation, "throughput": throughput,
           "latency_ms_greedy_p50": generation["greedy"]["p50_ms"]}
study = analysis.frame_with_run(lowres.collect("seq2seq"), run.result(metrics))
analysis.generation_table(study[study["run_id"] == run.run_id])
# %% [markdown]
# ## 7 · This study's runs: quality beside the baseline, training cost, generation cost
# %%
run.save_figure(analysis.key_figure(study), "quality_vs_training_time.png")
analysis.key_table(study)
# %%
run.save(metrics=metrics)

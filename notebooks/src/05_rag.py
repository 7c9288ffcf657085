# %% [markdown]
# # 05 · Retrieval-augmented QA: what retrieval buys and what it costs
# Embed a knowledge base (MiniLM, normalized, cached) → index it with FAISS (Flat, IVF, HNSW, or `auto` from the
# RAM budget) → retrieve the top-k passages → read or generate an answer → score EM/F1 (SQuAD normalization).
# One run answers every question at every k in `ks` and compares every index type, so a grid stays small.
# The defaults are the offline smoke run: a synthetic knowledge base and the **baseline extractive reader**, a
# lexical rule with no model (a floor, not a generator). `lowres run rag --profile cpu` runs SQuAD v1.1 dev;
# `--profile gpu` generates with flan-t5-small/base (needs the hub). Latency is measured one question at a
# time with `threads` torch/FAISS threads. Every random draw (synthetic data, question subset, IVF k-means) takes
# `seed` explicitly and nothing trains, so no global seeding is needed.
# %% parameters rag
# %%
import lowres
from lowres import data, devices, models, rag
from lowres.studies.rag import analysis, steps

run = lowres.start_run("rag", globals())
params = run.params
devices.set_threads(params.threads, faiss=True)
device = devices.pick_device(params.device)
print(run.run_id, "->", run.location, "| device:", device)
# %% [markdown]
# ## 1 · Knowledge base, split into token windows
# %%
kb = data.load_corpus(params.dataset, train_size=params.n_passages, val_size=params.n_questions, seed=params.seed)
encoder = models.load_embedder(params.embedder, device=device)
chunks = rag.chunk_passages(kb.passages, encoder.tokenizer, size=params.chunk_size, overlap=params.chunk_overlap)
questions = kb.questions
# %%
# NBVAL_CHECK_OUTPUT
print(f"{kb.name}: {len(kb.passages)} passages -> {len(chunks)} chunks of <= {params.chunk_size} tokens; "
      f"{len(questions)} questions, each answered in one known passage")
# %% [markdown]
# ## 2 · Embed the chunks (cached on disk by model + corpus), then each question on its own, as when serving
# %%
with run.meter.window("embed_corpus", samples=len(chunks), tokens=sum(c["n_tokens"] for c in chunks)):
    vectors, cached = steps.embed_corpus(chunks, encoder)
with run.meter.window("embed_queries", samples=len(questions)):
    embedded = rag.embed_queries(questions, encoder)
print(f"{vectors.shape[0]} x {vectors.shape[1]} vectors", "(from the cache: no encoding cost)" if cached else "")
# %% [markdown]
# ## 3 · Index types: build time, memory, latency per query and recall against exact search
# %%
with run.meter.window("compare_indexes", samples=len(questions)):
    indexes = steps.compare_indexes(vectors, embedded[0], [c["passage_id"] for c in chunks],
                                    [q["gold_passage_id"] for q in questions], max(params.ks), params.sweep_nprobe,
                                    params.sweep_ef_search, nlist=params.nlist, M=params.hnsw_m, seed=params.seed)
indexes
# %% [markdown]
# ## 4 · The serving index (`auto`: chosen from corpus size and RAM budget) and the reader
# %%
with run.meter.window("build_index", samples=len(chunks)):
    served, why = steps.serving_index(vectors, params.index, params.ram_budget_mb, nlist=params.nlist,
                                      nprobe=params.nprobe, M=params.hnsw_m, ef_search=params.ef_search,
                                      seed=params.seed)
retriever = rag.Retriever(encoder, served, chunks)
reader, reader_name, reader_tokenizer = steps.load_reader(params.generator, device, params.max_new_tokens,
                                                         params.max_input_tokens)
print(why, "\nreader:", reader_name)
# %% [markdown]
# ## 5 · Answer every question at every k, one at a time: search → read (the query embedding of step 2 and its
# time are reused: that stage does not depend on k). Context overhead is counted with the generator's
# tokenizer (MiniLM's WordPiece one for the baseline reader).
# %%
answers = {}
for top_k in params.ks:
    with run.meter.window(f"answer_k{top_k}", samples=len(questions)):
        answers[top_k] = rag.run_rag(questions, retriever, top_k, reader, reader_name, embedded=embedded)
table = steps.k_table(answers, questions, reader_tokenizer or encoder.tokenizer, run.meter.to_dict(),
                      params.max_input_tokens if reader_tokenizer else None)
table
# %%
# NBVAL_CHECK_OUTPUT
print("serving index:", served.kind, "| reader:", reader_name)
print(table[["k", "recall", "precision", "mrr", "exact_match", "f1", "context_tokens_added"]].round(3).to_string(index=False))
# exact Flat and HNSW on 200 vectors; IVF's figures move with the last bits of the embeddings (its k-means), but more
# lists scanned can only find more
print(indexes[indexes["index"] != "ivf"][["setting", "ann_recall", "gold_recall"]].round(3).to_string(index=False))
print("IVF recall rises with nprobe:", indexes[indexes["index"] == "ivf"]["ann_recall"].is_monotonic_increasing)
# %% [markdown]
# ## 6 · Quality vs k, latency by stage, recall vs latency per index, context overhead
# %%
figure = analysis.run_figure(table, indexes)
run.save_figure(figure, "rag.png")
# %% [markdown]
# ## 7 · Prompting vs RAG vs fine-tuning (this run + the finished runs in outputs/; LoRA when present)
# Each strategy is scored on its own task (accuracy for sentiment, F1 for QA): read the chart as cost against
# the quality each reaches, not as one ranking.
# %%
metrics = steps.run_metrics(table, indexes, params.k, served, why, reader_name, n_passages=len(kb.passages),
                            n_chunks=len(chunks), n_questions=len(questions), embeddings_cached=cached)
comparison = analysis.strategy_frame(current=run.result(metrics))
axes = analysis.plot_strategy_comparison(comparison)
run.save_figure(axes, "strategies.png")
comparison
# %% [markdown]
# ## 8 · Add documents: a knowledge base that grows without a rebuild
# The serving index's kind as a `lowres.knowledge_base.KnowledgeBase`, built without the last fifth of the
# passages, which are then added (embedded now: that is the cost of adding), compared with an index rebuilt
# from scratch (recall against exact search), removed again, saved beside this run (`knowledge_base/`) and
# reloaded. In your own work: `kb = KnowledgeBase.load(path, encoder)`, `kb.add(new_passages)`, `kb.save(path)`.
# %%
with run.meter.window("kb_growth"):
    growth = steps.knowledge_base_growth(kb.passages, chunks, vectors, encoder, served, embedded[0], params.k,
                                         run.path("knowledge_base"))
metrics["knowledge_base"] = growth
steps.growth_table(growth)
# %%
run.save(metrics=metrics)

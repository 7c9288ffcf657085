"""MLM domain adaptation steps (the precision and parallelism studies share them): the run's parallel plan,
the data, the model with its MLM head, the per-epoch history. The training loop itself is `lowres.mlm`."""
from __future__ import annotations

from lowres import parallel
from lowres.mlm import FitRecord, MLMAdaptationDataModule, MLMModule

def plan_for(params) -> parallel.ParallelPlan:
    """The run's parallel plan: strategy, processes, per-rank and total batch, threads."""
    return parallel.plan(params.strategy, params.batch_size, processes=params.processes,
                         accelerator=params.accelerator, batch_size_scope=params.batch_size_scope,
                         torch_threads=params.threads or 0)


def load_datamodule(params, tokenizer, parallel_plan: parallel.ParallelPlan) -> MLMAdaptationDataModule:
    """The corpus (train/val questions) tokenized, with each process's loader yielding the plan's batch."""
    from lowres import data

    corpus = data.load_corpus(params.dataset, train_size=params.train_size, val_size=params.val_size,
                              seed=params.seed)
    datamodule = MLMAdaptationDataModule(corpus, tokenizer, mlm_probability=params.mlm_probability,
                                         batch_size=parallel_plan.loader_batch_size, max_length=params.max_length,
                                         padding=params.padding, seed=params.seed)
    datamodule.setup()
    return datamodule


def build_module(params, parallel_plan: parallel.ParallelPlan) -> MLMModule:
    """The registry model with its MLM head, and the learning rate after the optional linear scaling rule."""
    from lowres import models

    effective = parallel_plan.total_batch_size * params.accumulate_grad_batches  # what one optimizer step averages
    lr = parallel.scaled_lr(params.lr, effective, params.lr_scaling, params.lr_reference_batch)
    return MLMModule(models.load_model(params.model, "mlm"), lr=lr, warmup_ratio=params.warmup_ratio,
                     head=params.mlm_head)


def history_frame(record: FitRecord):
    """Per-epoch scores as a DataFrame (one row per epoch)."""
    import pandas as pd

    return pd.DataFrame(record.history)

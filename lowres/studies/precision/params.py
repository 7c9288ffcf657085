"""Numerical precision for MLM domain adaptation (Maina et al. 2025): FP32, AMP-FP16, BF16 and TF32.

One run adapts one MLM-capable model to VizWiz-style questions with masked language modelling at one
(precision, strategy, batch size, seed) point. The parallelism study (`lowres.studies.parallelism`) shares
these parameters; the steps both notebooks take live in `lowres.mlm` and `lowres.parallel`.
"""
from typing import Literal, Optional

from lowres.config import BaseParams, Count, Fraction, ModelName, Rate, Size, params_dataclass

NOT_MLM_MODELS = ("tiny-t5",)  # registry names without a masked-LM form


@params_dataclass
class Params(BaseParams):
    model: ModelName = "tiny-bert"
    dataset: Literal["synthetic-vizwiz", "vizwiz"] = "synthetic-vizwiz"
    train_size: Size = 128  # None = the whole split
    val_size: Size = 96
    epochs: Count = 2
    max_steps: int = -1  # -1: no limit (the epochs decide)
    batch_size: Count = 16  # total samples per optimizer step unless batch_size_scope = per_rank
    batch_size_scope: Literal["total", "per_rank"] = "total"
    accumulate_grad_batches: Count = 1  # micro-batches per optimizer step: effective batch = batch x this x devices
    max_length: Count = 32
    padding: Literal["dynamic", "length-grouped", "max_length"] = "dynamic"
    mlm_probability: Rate = 0.15
    mlm_head: Literal["masked", "all"] = "masked"  # vocabulary logits on masked positions only, or everywhere
    lr: Rate = 0.002
    lr_scaling: Literal["none", "linear"] = "none"  # linear: lr x total batch / lr_reference_batch
    lr_reference_batch: Count = 16
    warmup_ratio: Fraction = 0.2
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "tf32"] = "32-true"
    strategy: Literal["single", "dp", "ddp"] = "single"
    processes: Count = 2  # DDP processes, or GPUs for DP; ignored by single
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    threads: Optional[Count] = 1  # torch threads per training process; None = torch's threads / processes

    def __post_init__(self):
        if self.model in NOT_MLM_MODELS:
            raise ValueError(f"model {self.model!r} has no masked-LM form; valid: an encoder such as tiny-bert, "
                             "tiny-distilbert, minilm, bert-base-uncased")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (no limit) or >= 1, got {self.max_steps}")
        if self.strategy == "ddp":
            from lowres.parallel import split_batch

            if self.processes < 2:
                raise ValueError(f"strategy 'ddp' needs processes >= 2, got {self.processes}; valid: an integer "
                                 ">= 2, or strategy 'single'")
            split_batch(self.batch_size, self.processes, self.batch_size_scope)

    def resources(self):
        return {"models": [self.model], "datasets": [self.dataset]}

"""Quickstart: fine-tune a classifier for a few hundred steps, evaluate accuracy, record the result."""
from typing import Literal

from lowres.config import ClassificationDataParams, Count, Rate, params_dataclass


@params_dataclass
class Params(ClassificationDataParams):  # model, dataset, train_size, val_size
    epochs: Count = 2
    max_steps: int = -1
    batch_size: Count = 16
    accumulate_grad_batches: Count = 1  # micro-batches per optimizer step: effective batch = batch x this x devices
    max_length: Count = 32
    lr: Rate = 5e-4
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "tf32"] = "32-true"

    def __post_init__(self):
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (no limit) or >= 1, got {self.max_steps}")

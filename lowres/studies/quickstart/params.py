"""Quickstart: fine-tune a classifier for a few hundred steps, evaluate accuracy, record the result."""
from typing import Literal

from lowres.config import ClassificationTrainParams, Count, Rate, params_dataclass


@params_dataclass
class Params(ClassificationTrainParams):  # model, dataset, train/val sizes, batch fields
    epochs: Count = 2
    max_steps: int = -1
    max_length: Count = 32
    lr: Rate = 5e-4
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "tf32"] = "32-true"

    def __post_init__(self):
        super().__post_init__()
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (no limit) or >= 1, got {self.max_steps}")

"""Quickstart: fine-tune a classifier for a few hundred steps, evaluate accuracy, record the result."""
from typing import Literal, Optional

from lowres.config import BaseParams, params_dataclass


@params_dataclass
class Params(BaseParams):
    model: str = "tiny-bert"
    dataset: str = "synthetic-sentiment"
    train_size: Optional[int] = 1024
    val_size: Optional[int] = 200
    epochs: int = 2
    max_steps: int = -1
    batch_size: int = 16
    max_length: int = 32
    lr: float = 5e-4
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "tf32"] = "32-true"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (no limit) or >= 1, got {self.max_steps}")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")

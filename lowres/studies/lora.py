"""LoRA vs full fine-tuning, then the fine-tuned model at fp32/fp16/bf16/int8 inference.

One run trains with one method (`full`, `lora` at one rank, `lora-8bit`) and evaluates every inference precision
of the result, so a grid `method: [full, lora]` x `lora_rank: [4, 16]` is three runs: the LoRA settings do not
apply to full fine-tuning and are cleared for it (None), which makes its grid points identical, and the
runner keeps one. `lora-8bit` runs wherever bitsandbytes' 8-bit layers do (CUDA; CPU with a recent
bitsandbytes, 0.50 here): `lowres.lora.check_method` probes it before any kernel starts.
"""
from typing import Literal, Optional

from lowres.config import BaseParams, params_dataclass

LORA_FIELDS = ("lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_modules_to_save", "lora_lr")


@params_dataclass
class Params(BaseParams):
    model: str = "tiny-bert"
    dataset: str = "synthetic-sentiment"
    train_size: Optional[int] = 1024
    val_size: Optional[int] = 200
    method: Literal["full", "lora", "lora-8bit"] = "lora"
    lora_rank: Optional[int] = 8
    lora_alpha: Optional[int] = 16
    lora_dropout: Optional[float] = 0.1
    lora_target_modules: Optional[str] = None  # comma-separated, e.g. "query,key,value"; None: query/value
    # trained in full beside the adapters, comma-separated, e.g. "pooler,classifier"; None: the new head
    lora_modules_to_save: Optional[str] = None
    epochs: int = 2
    batch_size: int = 16
    max_length: int = 32
    lr: Optional[float] = 5e-4  # full fine-tuning
    lora_lr: Optional[float] = 5e-3  # LoRA trains few weights from zero: it wants a larger step
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = "32-true"  # training
    inference_precisions: str = "fp32,int8"  # comma-separated (a scalar, so `--set` does not make it a grid axis)
    latency_batches: int = 10  # timed batches per batch size (1 and 32), after warm-up

    @property
    def learning_rate(self) -> float:
        return self.lr if self.method == "full" else self.lora_lr

    @property
    def precisions(self) -> list[str]:
        return split_names(self.inference_precisions)

    @property
    def target_modules(self) -> Optional[list[str]]:
        return split_names(self.lora_target_modules) if self.lora_target_modules is not None else None

    @property
    def modules_to_save(self) -> Optional[list[str]]:
        return split_names(self.lora_modules_to_save) if self.lora_modules_to_save is not None else None

    def __post_init__(self):
        from lowres.lora import check_method
        from lowres.quantize import check_precisions

        check_method(self.method)
        check_precisions(self.precisions)
        for name in ("epochs", "batch_size", "max_length", "latency_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_size", "val_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or null (all), got {getattr(self, name)}")
        if self.method == "full":
            self.clear_lora_fields()
        else:
            self.check_lora_fields()
        if self.method == "full" and not (self.lr is not None and 0 < self.lr < 1):
            raise ValueError(f"lr (full fine-tuning) must be in (0, 1), got {self.lr}")

    def clear_lora_fields(self) -> None:
        for name in LORA_FIELDS:
            object.__setattr__(self, name, None)  # frozen: normalised once, at construction

    def check_lora_fields(self) -> None:
        if self.lora_rank is None or self.lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1 for method {self.method!r}, got {self.lora_rank}")
        if self.lora_alpha is None or self.lora_alpha < 1:
            raise ValueError(f"lora_alpha must be >= 1 for method {self.method!r}, got {self.lora_alpha}")
        if self.lora_dropout is None or not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.lora_target_modules is not None and not self.target_modules:
            raise ValueError("lora_target_modules must name at least one module (comma-separated), or be null "
                             "(the architecture's query/value projections)")
        if self.lora_modules_to_save is not None and not self.modules_to_save:
            raise ValueError("lora_modules_to_save must name at least one module (comma-separated), or be null "
                             "(the architecture's new head, e.g. classifier)")
        if self.lora_lr is None or not 0 < self.lora_lr < 1:
            raise ValueError(f"lora_lr must be in (0, 1) for method {self.method!r}, got {self.lora_lr}")
        object.__setattr__(self, "lr", None)  # unused by LoRA; cleared so a grid over lr does not repeat runs


def split_names(names: str) -> list[str]:
    return [n.strip() for n in names.split(",") if n.strip()]

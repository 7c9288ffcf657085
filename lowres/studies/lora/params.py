"""LoRA vs full fine-tuning, then the fine-tuned model at fp32/fp16/bf16/int8 inference.

One run trains with one method (`full`, `lora` at one rank, `lora-8bit`) and evaluates every inference precision
of the result, so a grid `method: [full, lora]` x `lora_rank: [4, 16]` is three runs: the LoRA settings do not
apply to full fine-tuning and are cleared for it (None), which makes its grid points identical, and the
runner keeps one. `lora-8bit` runs wherever bitsandbytes' 8-bit layers do (CUDA; CPU with a recent
bitsandbytes, 0.50 here): `lowres.lora.check_method` probes it before any kernel starts.
"""
from typing import Literal, Optional

from lowres.config import ClassificationTrainParams, Count, Fraction, Rate, params_dataclass
from lowres.lora import split_names


@params_dataclass
class Params(ClassificationTrainParams):  # model, dataset, train/val sizes, batch fields
    method: Literal["full", "lora", "lora-8bit"] = "lora"
    lora_rank: Optional[Count] = 8
    lora_alpha: Optional[Count] = 16
    lora_dropout: Optional[Fraction] = 0.1
    lora_target_modules: Optional[str] = None  # comma-separated, e.g. "query,key,value"; None: query/value
    # trained in full beside the adapters, comma-separated, e.g. "pooler,classifier"; None: the new head
    lora_modules_to_save: Optional[str] = None
    epochs: Count = 2
    max_length: Count = 32
    lr: Optional[Rate] = 5e-4  # full fine-tuning
    lora_lr: Optional[Rate] = 5e-3  # LoRA trains few weights from zero: it wants a larger step
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = "32-true"  # training
    inference_precisions: str = "fp32,int8"  # comma-separated (a scalar, so `--set` does not make it a grid axis)
    latency_batches: Count = 10  # timed batches per batch size (1 and 32), after warm-up

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
        from lowres.lora import settle_lora_fields
        from lowres.quantize import check_precisions

        super().__post_init__()
        settle_lora_fields(self)
        check_precisions(self.precisions)
        if self.lora_modules_to_save is not None and not self.modules_to_save:
            raise ValueError("lora_modules_to_save must name at least one module (comma-separated), or be null "
                             "(the architecture's new head, e.g. classifier)")

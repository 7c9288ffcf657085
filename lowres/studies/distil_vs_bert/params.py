"""DistilBERT vs BERT: fine-tuning energy, and how it scales with tokens (Wang et al., 2023).

One run fine-tunes one twin (`variant`) of a BERT/DistilBERT pair on one task; the twins of a pair see the
same batches (same tokenizer, seed and sampler), so their costs compare token for token. The steps the
notebook calls are in `steps.py`.
"""
from typing import Literal, Optional

from lowres.config import BaseParams, Count, ModelName, Rate, Size, Steps, params_dataclass
from lowres.studies.distil_vs_bert import QA_DATASETS
from lowres.studies.distil_vs_bert import model as model_of
from lowres.studies.distil_vs_bert import task as task_of


def classification_datasets() -> list[str]:
    from lowres.data.corpora import kinds

    return sorted(name for name, kind in kinds().items() if kind == "classification")


@params_dataclass
class Params(BaseParams):
    bert_model: ModelName = "tiny-bert"
    distil_model: ModelName = "tiny-distilbert"
    variant: Literal["bert", "distil"] = "bert"
    dataset: str = "synthetic-sentiment"
    train_size: Size = 1024
    val_size: Size = 200
    epochs: Count = 2
    batch_size: Count = 32
    accumulate_grad_batches: Count = 1  # micro-batches per optimizer step: effective batch = batch x this x devices
    max_length: Count = 32
    padding: Literal["dynamic", "length-grouped", "max_length"] = "length-grouped"
    doc_stride: Count = 32  # QA only: overlap between the windows of a long context
    lr: Rate = 1e-3  # the tiny twins start from random weights: 64 steps at 1e-3 learn synthetic sentiment
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "tf32"] = "32-true"
    fit_windows: Count = 6  # training after the first step is cut into about this many Meter windows (fit points)
    threads: Optional[Count] = 1  # torch CPU threads; None = torch's default (all cores); 1 = stable timings on a shared CPU
    # > 0: before fine-tuning, the distil twin learns its teacher (bert_model) for this many batches of the run's
    # training sentences, labels dropped (lowres.distill; not charged to the fine-tuning windows). 0: the twin as named
    distill_steps: Steps = 0

    @property
    def model(self) -> str:
        return model_of(self.__dict__)

    @property
    def task(self) -> str:
        return task_of(self.__dict__)

    def __post_init__(self):
        valid = classification_datasets() + list(QA_DATASETS)
        if self.dataset not in valid:
            raise ValueError(f"dataset {self.dataset!r} is not a classification or extractive QA task; "
                             f"valid: {', '.join(valid)}")
        if self.task == "qa" and not (self.max_length >= 128 and 0 < self.doc_stride <= self.max_length // 2):
            raise ValueError(f"extractive QA needs max_length >= 128 (question + a context window) and "
                             f"0 < doc_stride <= max_length/2; got max_length={self.max_length}, "
                             f"doc_stride={self.doc_stride}")

        if self.distill_steps and self.task == "qa":
            raise ValueError(f"distill_steps={self.distill_steps} needs a classification dataset (its sentences are "
                             f"the unlabeled text); got the QA dataset {self.dataset!r}; valid: distill_steps=0")

    def resources(self):
        return {"models": [self.model], "datasets": [self.dataset]}

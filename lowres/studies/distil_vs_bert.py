"""DistilBERT vs BERT: fine-tuning energy, and how it scales with tokens (Wang et al., 2023).

One run fine-tunes one twin (`variant`) of a BERT/DistilBERT pair on one task; the twins of a pair see the
same batches (same tokenizer, seed and sampler), so their costs compare token for token. The helpers below
are the steps the notebook calls: data -> model -> reference FLOPs -> evaluation, for classification
(sentences or sentence pairs) and extractive QA alike.
"""
from typing import Literal, Optional

from lowres.config import BaseParams, Count, ModelName, Rate, Size, params_dataclass

QA_DATASETS = ("squad", "synthetic-kb")  # knowledge bases whose questions carry their context and answer


def classification_datasets() -> list[str]:
    from lowres.data.corpora import HUB_ONLY, REAL, SYNTHETIC

    kinds = {**{k: v[0] for k, v in REAL.items()}, **SYNTHETIC, **HUB_ONLY}
    return sorted(name for name, kind in kinds.items() if kind == "classification")


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
    max_length: Count = 32
    padding: Literal["dynamic", "length-grouped", "max_length"] = "length-grouped"
    doc_stride: Count = 32  # QA only: overlap between the windows of a long context
    lr: Rate = 1e-3  # the tiny twins start from random weights: 64 steps at 1e-3 learn synthetic sentiment
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "tf32"] = "32-true"
    fit_windows: Count = 6  # training after the first step is cut into about this many Meter windows (fit points)
    threads: Optional[Count] = 1  # torch CPU threads; None = torch's default (all cores); 1 = stable timings on a shared CPU

    @property
    def model(self) -> str:
        return self.bert_model if self.variant == "bert" else self.distil_model

    @property
    def task(self) -> str:
        return "qa" if self.dataset in QA_DATASETS else "classification"

    def __post_init__(self):
        valid = classification_datasets() + list(QA_DATASETS)
        if self.dataset not in valid:
            raise ValueError(f"dataset {self.dataset!r} is not a classification or extractive QA task; "
                             f"valid: {', '.join(valid)}")
        if self.task == "qa" and not (self.max_length >= 128 and 0 < self.doc_stride <= self.max_length // 2):
            raise ValueError(f"extractive QA needs max_length >= 128 (question + a context window) and "
                             f"0 < doc_stride <= max_length/2; got max_length={self.max_length}, "
                             f"doc_stride={self.doc_stride}")

    def resources(self):
        return {"models": [self.model], "datasets": [self.dataset]}


def load_datamodule(params: Params, tokenizer):
    """The task's DataModule, set up (tokenized); classification corpora or QA questions split by article."""
    from lowres import data

    common = dict(batch_size=params.batch_size, max_length=params.max_length, padding=params.padding,
                  seed=params.seed)
    if params.task == "qa":
        from lowres import qa

        kb = data.load_corpus(params.dataset, seed=params.seed)
        train, val = qa.split_questions(kb.questions, kb.passages, params.train_size, params.val_size, params.seed)
        datamodule = qa.QADataModule(train, val, tokenizer, doc_stride=params.doc_stride, **common)
    else:
        from lowres.data.modules import ClassificationDataModule

        corpus = data.load_corpus(params.dataset, train_size=params.train_size, val_size=params.val_size,
                                  seed=params.seed)
        datamodule = ClassificationDataModule(corpus, tokenizer, **common)
    datamodule.setup()
    return datamodule


def build_module(params: Params, datamodule):
    """(network, LightningModule) for the task: ClassificationModule (shared with the LoRA study) or QAModule."""
    from lowres import models, train

    if params.task == "qa":
        from lowres import qa

        net = models.load_model(params.model, "qa")
        return net, qa.QAModule(net, lr=params.lr)
    net = models.load_model(params.model, "classification", num_labels=datamodule.corpus.num_labels)
    return net, train.ClassificationModule(net, lr=params.lr)


def reference_batch(datamodule) -> dict:
    """The first training batch of the run's sampler (identical for both twins), built without counting."""
    from torch.utils.data import DataLoader

    loader = DataLoader(datamodule.train_set, batch_size=datamodule.batch_size, sampler=datamodule.train_sampler(),
                        collate_fn=datamodule.make_collator(None))
    return dict(next(iter(loader)))


def step_flops(net, batch: dict) -> dict:
    """FLOPs of one forward + backward pass on `batch` (torch FlopCounterMode via lowres.meters.flops)."""
    from lowres.meters.flops import training_step_flops

    flops = training_step_flops(net, batch)
    tokens = int(batch["attention_mask"].numel())
    return {"step_flops": flops, "step_padded_tokens": tokens, "flops_per_padded_token": flops / tokens}


def total_steps(params: Params, datamodule) -> int:
    return params.epochs * len(datamodule.train_dataloader())


def set_threads(params: Params) -> int:
    """Apply `params.threads` to torch (None keeps torch's default); returns the threads in use."""
    import torch

    if params.threads is not None:
        torch.set_num_threads(params.threads)
    return torch.get_num_threads()


def eval_device() -> str:
    """Where evaluation runs: the GPU when there is one (Lightning hands the model back on the CPU after fit)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def evaluate(params: Params, net, datamodule) -> dict:
    """Task quality on the validation split; `quality` is accuracy (classification) or F1 (QA)."""
    if params.task == "qa":
        from lowres import qa

        scores = qa.evaluate_qa(net, datamodule, device=eval_device())
        return {**scores, "quality": scores["f1"], "quality_name": "squad_f1"}
    from lowres import train

    scores = train.evaluate_classifier(net, datamodule.val_dataloader(), device=eval_device())
    return {**scores, "quality": scores["accuracy"], "quality_name": "accuracy"}

"""DistilBERT vs BERT study steps: data -> model -> reference FLOPs -> evaluation, for classification (sentences
or sentence pairs) and extractive QA alike; the twins of a pair see the same batches."""
from __future__ import annotations

from lowres.devices import pick_device
from lowres.studies.distil_vs_bert.params import Params

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


def twin_weights(params: Params) -> str:
    """What this run fine-tunes: the twin as named, or the distil twin after `distill_steps` of distillation
    towards its teacher on the run's training sentences (cached per recipe)."""
    if params.variant != "distil" or not params.distill_steps:
        return params.model
    from lowres import distill

    return str(distill.distill(params.distil_model, params.bert_model, dataset=params.dataset,
                               steps=params.distill_steps, batch_size=params.batch_size,
                               max_length=params.max_length, seed=params.seed))


def build_module(params: Params, datamodule):
    """(network, LightningModule) for the task: ClassificationModule (shared with the LoRA study) or QAModule."""
    from lowres import models, train

    weights = twin_weights(params)
    if params.task == "qa":
        from lowres import qa

        net = models.load_model(weights, "qa")
        return net, qa.QAModule(net, lr=params.lr)
    net = models.load_model(weights, "classification", num_labels=datamodule.corpus.num_labels)
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


def evaluate(params: Params, net, datamodule) -> dict:
    """Task quality on the validation split; `quality` is accuracy (classification, beside the majority-class
    baseline) or F1 (QA)."""
    if params.task == "qa":
        from lowres import qa

        scores = qa.evaluate_qa(net, datamodule, device=pick_device())
        return {**scores, "quality": scores["f1"], "quality_name": "squad_f1"}
    from lowres import train
    from lowres.classification_metrics import majority_share

    scores = train.evaluate_classifier(net, datamodule.val_dataloader(), device=pick_device())
    return {**scores, "quality": scores["accuracy"], "quality_name": "accuracy",
            "majority_baseline": majority_share(example["label"] for example in datamodule.corpus.val)}

"""LightningModules (classification, seq2seq; MLM's lives in lowres.mlm) and the fit() helper.

One `_shared_step(batch, stage)` per module (by default the wrapped Hugging Face model's own loss, logged by
`HFModule.logged_forward`); subclasses add their metrics.
"""
from __future__ import annotations

import lightning as L
import torch

from lowres.classification_metrics import classification_scores

PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "tf32")


class HFModule(L.LightningModule):
    """A transformers model + AdamW with linear warm-up/decay; subclasses add their metrics."""

    def __init__(self, model, lr: float = 5e-5, weight_decay: float = 0.01, warmup_ratio: float = 0.06):
        super().__init__()
        # from_pretrained returns eval mode and Lightning 2.6 does not switch modules to train mode,
        # so without this dropout would be silently off during fine-tuning.
        self.model = model.train()
        self.save_hyperparameters(ignore=["model"])

    def forward(self, **batch):
        return self.model(**batch)

    def _shared_step(self, batch, stage):
        return self.logged_forward(batch, stage).loss

    def logged_forward(self, batch, stage):
        """The model's output on `batch`, its loss logged as `<stage>_loss` (evaluation batches may carry none)."""
        out = self.model(**batch)
        if out.loss is not None:
            self.log(f"{stage}_loss", out.loss, prog_bar=True, batch_size=batch["input_ids"].shape[0],
                     sync_dist=stage == "val")
        return out

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._shared_step(batch, "val")

    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        params = [p for p in self.model.named_parameters() if p[1].requires_grad]
        groups = [{"params": [p for n, p in params if not n.endswith(no_decay)], "weight_decay": self.hparams.weight_decay},
                  {"params": [p for n, p in params if n.endswith(no_decay)], "weight_decay": 0.0}]
        # torch's fused kernel: ~6x faster than the default per-tensor loop on CPU, same update (transformers'
        # Trainer also defaults to it)
        optimizer = torch.optim.AdamW(groups, lr=self.hparams.lr, fused=can_fuse([p for _, p in params]))
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        schedule = get_linear_schedule_with_warmup(optimizer, int(self.hparams.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def can_fuse(params) -> bool:
    """torch's fused AdamW needs floating-point parameters on CPU or CUDA."""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


class ClassificationModule(HFModule):
    """Sequence classification (single sentences or pairs); accuracy and macro-F1 on validation."""

    def on_validation_epoch_start(self):
        self.val_preds, self.val_labels = [], []

    def _shared_step(self, batch, stage):
        out = self.logged_forward(batch, stage)
        if stage == "val":
            self.val_preds.append(out.logits.argmax(-1).detach().cpu())
            self.val_labels.append(batch["labels"].detach().cpu())
        return out.loss

    def on_validation_epoch_end(self):
        scores = classification_scores(torch.cat(self.val_preds), torch.cat(self.val_labels))
        self.log_dict({f"val_{k}": v for k, v in scores.items()}, sync_dist=True)


class Seq2SeqModule(HFModule):
    """Encoder-decoder LM fine-tuning (summarization, generative QA): the teacher-forced loss; what the model
    generates, and its scores, are measured after training (lowres.seq2seq)."""


@torch.no_grad()
def predict(model, dataloader, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax predictions and labels of a classification model over a loader (eval mode, no grad)."""
    model.eval().to(device)
    preds, labels = [], []
    for batch in dataloader:
        batch = {k: v.to(device) for k, v in batch.items()}
        gold = batch.pop("labels")
        preds.append(model(**batch).logits.argmax(-1).cpu())
        labels.append(gold.cpu())
    return torch.cat(preds), torch.cat(labels)


def evaluate_classifier(model, dataloader, device="cpu") -> dict:
    return classification_scores(*predict(model, dataloader, device))


def lightning_precision(precision: str) -> str:
    """Our precision names -> Lightning's; `tf32` is FP32 storage with TF32 matmuls (set separately)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return "32-true" if precision == "tf32" else precision


def make_trainer(precision: str = "32-true", max_epochs: int = 1, max_steps: int = -1, callbacks=(),
                 accelerator: str = "auto", devices="auto", strategy="auto", progress_bar: bool = False,
                 val_check_interval=None, accumulate_grad_batches: int = 1, **kwargs) -> L.Trainer:
    """A Trainer as the studies use it; `accumulate_grad_batches` micro-batches per optimizer step (Lightning
    scales each micro-batch's loss by 1/N, so the gradient is the effective batch's mean)."""
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    return L.Trainer(precision=lightning_precision(precision), max_epochs=max_epochs, max_steps=max_steps,
                     callbacks=list(callbacks), accelerator=accelerator, devices=devices, strategy=strategy,
                     logger=False, enable_checkpointing=False, enable_model_summary=False,
                     enable_progress_bar=progress_bar, val_check_interval=val_check_interval,
                     accumulate_grad_batches=accumulate_grad_batches, **kwargs)


def fit(module, datamodule, **trainer_kwargs) -> L.Trainer:
    """Fit and return the trainer (its `callback_metrics` hold the last validation scores)."""
    trainer = make_trainer(**trainer_kwargs)
    trainer.fit(module, datamodule=datamodule)
    return trainer

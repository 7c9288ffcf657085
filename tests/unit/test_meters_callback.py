"""MeterCallback: windows per phase/epoch from a real (tiny) Lightning fit, counts from a fake token counter."""
from __future__ import annotations

import threading

import pytest
import torch

from lowres.meters import Meter

pytest.importorskip("lightning")
import lightning as L  # noqa: E402

from lowres.meters.callback import MeterCallback  # noqa: E402


class FakeCounter:
    """What the DataModule's collator exposes: cumulative counts and reset()."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.samples = self.real_tokens = self.padded_tokens = self.batches = 0

    def collate(self, rows):
        lengths = [len(r) for r in rows]
        width = max(lengths)
        self.samples += len(rows)
        self.real_tokens += sum(lengths)
        self.padded_tokens += width * len(rows)
        self.batches += 1
        x = torch.zeros(len(rows), width)
        for i, row in enumerate(rows):
            x[i, : len(row)] = torch.tensor(row, dtype=torch.float)
        return x.sum(1, keepdim=True)


class Tiny(L.LightningModule):
    def __init__(self, fail_at_epoch=None):
        super().__init__()
        self.layer, self.fail_at_epoch = torch.nn.Linear(1, 1), fail_at_epoch

    def training_step(self, batch, batch_idx):
        if self.current_epoch == self.fail_at_epoch:
            raise RuntimeError("boom")
        return self.layer(batch).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


ROWS = [[1] * (1 + i % 4) for i in range(10)]  # lengths 1,2,3,4,1,2,... -> 23 real tokens


def fit(module, epochs=2):
    train, val = FakeCounter(), FakeCounter()
    loaders = [torch.utils.data.DataLoader(ROWS, batch_size=4, collate_fn=c.collate) for c in (train, val)]
    meter = Meter(energy="off", sample_hz=20)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=1,
                        callbacks=[MeterCallback(meter, train, val, flops_per_step=1000.0)])
    trainer.fit(module, *loaders)
    return meter


def test_windows_per_phase_and_epoch_with_counts():
    meter = fit(Tiny())
    assert set(meter.measurements) == {"train", "train_epoch_0", "train_epoch_1", "validate_epoch_0",
                                       "validate_epoch_1"}
    epoch = meter.measurements["train_epoch_1"]
    # batches of 4: [1,2,3,4] [1,2,3,4] [1,2] -> padded 4*4 + 4*4 + 2*2
    assert (epoch.steps, epoch.samples, epoch.tokens, epoch.padded_tokens, epoch.epochs) == (3, 10, 23, 36, 1)
    train = meter.measurements["train"]
    assert (train.steps, train.samples, train.tokens, train.epochs) == (6, 20, 46, 2)
    assert train.flops == 6000 and train.precision == "32-true" and train.epochs_per_min() > 0
    val = meter.measurements["validate_epoch_0"]
    assert (val.steps, val.samples, val.tokens) == (3, 10, 23)  # the sanity check is not counted
    assert all(m.status == "ok" for m in meter.measurements.values())
    assert not [t for t in threading.enumerate() if t.name.startswith("lowres-meter")]


def test_exception_marks_windows_failed():
    train, meter = FakeCounter(), Meter(energy="off", sample_hz=20)
    callback = MeterCallback(meter, train)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    loader = torch.utils.data.DataLoader(ROWS, batch_size=4, collate_fn=train.collate)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(Tiny(fail_at_epoch=1), loader)
    assert meter.measurements["train_epoch_0"].status == "ok"
    assert meter.measurements["train_epoch_1"].status == "failed"
    assert meter.measurements["train"].status == "failed" and not meter.open_windows
    assert not [t for t in threading.enumerate() if t.name.startswith("lowres-meter")]

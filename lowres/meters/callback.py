"""Lightning callbacks: Meter windows per phase and per epoch (MeterCallback), and windows of a few steps each
for the energy-vs-tokens fits (StepWindows, lowres.energy_fit), with counts from the DataModule's collator.

Windows: `train` (on_train_start -> on_train_end, the whole fit loop), `train_epoch_<n>` (one per training
epoch; Lightning runs the epoch's validation inside it), `validate_epoch_<n>` (validation during fit; the
sanity check is skipped) and `validate` (a standalone `trainer.validate`). Steps are the batches the loop
ran; samples/tokens/padded_tokens come from token counters (objects with `samples`, `real_tokens`,
`padded_tokens`, `batches` and `reset()`, e.g. `datamodule.train_counter` / `val_counter`). Counts are
differences between snapshots taken at window ends, so a batch prefetched before a window opens is still
counted in the right epoch. On an exception every open window is closed as failed.
"""
from __future__ import annotations

import lightning as L

from lowres import energy_fit
from lowres.data.modules import TokenCounter, fill_counts

COUNTS = ("samples", "real_tokens", "padded_tokens")


def snapshot(counter) -> dict:
    return {k: getattr(counter, k) for k in COUNTS} if counter is not None else {}


class CountWindow:
    """An open Meter window plus the counter mark it started from."""

    def __init__(self, meter, name, counter, mark, **kwargs):
        self.window = meter.window(name, **kwargs)
        self.counter, self.mark, self.batches = counter, mark, 0
        self.m = self.window.__enter__()

    def close(self, exc=None, epochs=None) -> dict:
        now = snapshot(self.counter)
        m = self.m
        m.steps = self.batches
        if self.counter is not None:
            m.samples, m.tokens, m.padded_tokens = (now[k] - self.mark[k] for k in COUNTS)
        if epochs is not None:
            m.epochs = epochs
        self.window.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
        return now


class MeterCallback(L.Callback):
    def __init__(self, meter, token_counter=None, val_token_counter=None, flops_per_step: float | None = None):
        self.meter, self.train_counter, self.val_counter = meter, token_counter, val_token_counter
        self.flops_per_step = flops_per_step
        self.phase = self.epoch = self.val = None
        self.train_mark = self.val_mark = {}
        self.epochs_done = 0

    def _open(self, name, counter, mark, trainer, flops=True):
        return CountWindow(self.meter, name, counter, mark, precision=str(trainer.precision),
                           flops_per_step=self.flops_per_step if flops else None)

    # -- training ----------------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module):
        if self.train_counter is not None:
            self.train_counter.reset()
        self.train_mark, self.epochs_done = snapshot(self.train_counter), 0
        self.phase = self._open("train", self.train_counter, self.train_mark, trainer)

    def on_train_epoch_start(self, trainer, pl_module):
        self.epoch = self._open(f"train_epoch_{trainer.current_epoch}", self.train_counter, self.train_mark, trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        for window in (self.epoch, self.phase):
            if window is not None:
                window.batches += 1

    def on_train_epoch_end(self, trainer, pl_module):
        if self.epoch is not None:
            self.train_mark = self.epoch.close(epochs=1)
            self.epoch, self.epochs_done = None, self.epochs_done + 1

    def on_train_end(self, trainer, pl_module):
        if self.phase is not None:
            self.phase.close(epochs=self.epochs_done)
            self.phase = None

    # -- validation --------------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        name = f"validate_epoch_{trainer.current_epoch}" if trainer.state.fn == "fit" else "validate"
        self.val_mark = snapshot(self.val_counter)
        self.val = self._open(name, self.val_counter, self.val_mark, trainer, flops=False)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if self.val is not None:
            self.val.batches += 1

    def on_validation_epoch_end(self, trainer, pl_module):
        if self.val is not None:
            self.val_mark = self.val.close()
            self.val = None

    # -- failure -----------------------------------------------------------------------------------------
    def on_exception(self, trainer, pl_module, exception):
        for attr in ("val", "epoch", "phase"):  # innermost first
            window = getattr(self, attr)
            if window is not None:
                setattr(self, attr, None)
                window.close(exc=exception)


class StepWindows(L.Callback):
    """Meter windows `steps_0`, `steps_1`, ... of `sizes[i]` training steps each (fit points).

    `sizes` is a list of window lengths in steps (see `window_sizes`; used in turn, cycling) or one int for
    equal windows. The first `warmup_steps` steps go to a window `steps_warmup`, kept out of the fits: they
    carry one-off costs (lazy optimizer state, allocator growth, kernel selection) that are not proportional
    to tokens. Token counts come from each batch's attention mask as the step starts, so they are exact for
    the steps inside the window. A window never spans validation or an epoch end: it closes early there.
    """

    def __init__(self, meter, sizes: list[int] | int, warmup_steps: int = 1):
        sizes = [sizes] if isinstance(sizes, int) else list(sizes)
        if not sizes or min(sizes) < 1 or warmup_steps < 0:
            raise ValueError(f"need window sizes >= 1 and warmup_steps >= 0, got {sizes}, {warmup_steps}")
        self.meter, self.sizes, self.warmup_steps = meter, sizes, warmup_steps
        self.context = self.measurement = None
        self.counter, self.index, self.steps_seen = TokenCounter(), 0, 0

    def current_size(self) -> int:
        return self.sizes[self.index % len(self.sizes)]

    def in_warmup(self) -> bool:
        return self.steps_seen < self.warmup_steps

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.context is None:
            self.counter.reset()
            name = f"{energy_fit.WINDOW_PREFIX}warmup" if self.in_warmup() else f"{energy_fit.WINDOW_PREFIX}{self.index}"
            self.context = self.meter.window(name, precision=str(trainer.precision))
            self.measurement = self.context.__enter__()
        self.counter.add(batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps_seen += 1
        warmup_over = self.steps_seen == self.warmup_steps
        if warmup_over or (not self.in_warmup() and self.counter.batches >= self.current_size()):
            self._close()

    def on_validation_start(self, trainer, pl_module):
        self._close()

    def on_train_epoch_end(self, trainer, pl_module):
        self._close()

    def on_train_end(self, trainer, pl_module):
        self._close()

    def on_exception(self, trainer, pl_module, exception):
        self._close(exception)

    def _close(self, exc: BaseException | None = None) -> None:
        if self.context is None:
            return
        fill_counts(self.measurement, self.counter)
        context, self.context = self.context, None
        context.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
        if not self.measurement.name.endswith("warmup"):
            self.index += 1

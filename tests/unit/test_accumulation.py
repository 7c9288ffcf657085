"""Gradient accumulation: N micro-batches give the gradient of one batch N times larger (Lightning, through
lowres.train.make_trainer), the effective batch is recorded, and it costs no activation memory."""
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightning as L

from lowres import memory, summary, train
from lowres.results import RunResult


class Linear(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(8, 3)
        self.grads = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.layer(x), y)

    def on_before_optimizer_step(self, optimizer):
        self.grads.append(self.layer.weight.grad.detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def gradients(batch_size: int, accumulate: int) -> list:
    generator = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(64, 8, generator=generator), torch.randint(0, 3, (64,), generator=generator))
    module = Linear()
    trainer = train.make_trainer(max_epochs=1, accelerator="cpu", accumulate_grad_batches=accumulate,
                                 num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(data, batch_size=batch_size, shuffle=False))
    return module.grads


def test_accumulated_micro_batches_give_the_large_batch_gradient():
    large, accumulated = gradients(32, 1), gradients(8, 4)
    assert len(large) == len(accumulated) == 2  # two optimizer steps either way
    for a, b in zip(large, accumulated):
        assert torch.allclose(a, b, atol=1e-6)


def test_the_effective_batch_is_recorded_in_the_run_summary():
    run = RunResult(study="quickstart", run_id="q-a", status="ok", params={"batch_size": 8, "accumulate_grad_batches": 4})
    assert summary.summarize(run).effective_batch_size == 32
    ddp = RunResult(study="precision", run_id="p-a", status="ok", params={"batch_size": 16, "accumulate_grad_batches": 2},
                    metrics={"parallel": {"total_batch_size": 16}})
    assert summary.summarize(ddp).effective_batch_size == 32
    prompt = RunResult(study="prompting", run_id="x", status="ok", params={"batch_size": 1})
    assert summary.summarize(prompt).effective_batch_size is None  # no training, no optimizer step


def test_accumulation_adds_no_activation_memory():
    micro = memory.estimate("bert-base-uncased", "full", "fp32", batch_size=32, seq_len=128, device="cuda")
    whole = memory.estimate("bert-base-uncased", "full", "fp32", batch_size=256, seq_len=128, device="cuda")
    assert micro.required_gb < whole.required_gb  # 8 x 32 needs the memory of batch 32, not 256
    assert memory.accumulation_for(256, 32) == 8 and memory.accumulation_for(100, 32) == 4

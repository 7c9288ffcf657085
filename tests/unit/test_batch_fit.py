"""`batch_size: auto` (lowres.batch_fit): the fitted batch's measured peak stays within the budget, a trial that
runs out of memory falls back with the reason recorded, the accumulation keeps the requested effective batch."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from lowres import batch_fit, memory, models
from lowres.config import ParamsError, build_params
from lowres.data.corpora import load_corpus
from lowres.data.modules import ClassificationDataModule
from lowres.studies.quickstart.params import Params

# In a fresh process (its peak RSS is its own): fit the batch to the process's memory now + 1 GB at 256 padded
# tokens, then train 3 Lightning steps at that batch and measure the whole process's peak RSS over them.
FIT_THEN_TRAIN = textwrap.dedent("""
    import json, sys
    from lowres import batch_fit, models, train
    from lowres.data.corpora import load_corpus
    from lowres.data.modules import ClassificationDataModule
    from lowres.studies.quickstart.params import Params

    corpus = load_corpus("synthetic-sentiment", train_size=512, val_size=32, seed=0)
    datamodule = ClassificationDataModule(corpus, models.load_tokenizer("tiny-bert"), batch_size=1, max_length=256,
                                          padding="max_length")
    datamodule.setup()
    net = models.load_model("tiny-bert", "classification", num_labels=2)
    budget_gb = round(batch_fit.process_rss_bytes() / 1e9 + 1.0, 3)
    params = Params(batch_size="auto", memory_budget_gb=budget_gb, effective_batch_size=512, max_length=256)
    fit = batch_fit.resolve(params, datamodule, net, device="cpu")
    module = train.ClassificationModule(net, lr=params.lr)
    batch_fit.reset_peak("cpu")
    train.fit(module, datamodule, max_steps=3 * fit.accumulate_grad_batches, limit_val_batches=0,
              accumulate_grad_batches=fit.accumulate_grad_batches, accelerator="cpu", devices=1)
    print(json.dumps({"fit": fit.metrics()["batch_fit"], "train_peak_gb": batch_fit.peak_bytes("cpu") / 1e9,
                      "limit_gb": budget_gb * (1 - batch_fit.memory.SAFETY_MARGIN)}))
""")


def test_auto_batch_measured_peak_rss_within_budget_and_the_budget_binds():
    out = subprocess.run([sys.executable, "-c", FIT_THEN_TRAIN], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    fit = found["fit"]
    assert fit["auto"] and fit["budget_source"] == "memory_budget_gb"
    assert found["train_peak_gb"] <= fit["budget_gb"], found  # training at the fitted batch stays in the budget
    assert 1 <= fit["batch_size"] < 512, fit  # the budget decided the batch, not the cap
    assert fit["batch_size"] * fit["accumulate_grad_batches"] == fit["effective_batch_size"] >= 512
    assert fit["trials"][-1].startswith(f"batch {fit['batch_size']}: fits")


@pytest.fixture(scope="module")
def tiny_setup():
    corpus = load_corpus("synthetic-sentiment", train_size=64, val_size=16, seed=0)
    datamodule = ClassificationDataModule(corpus, models.load_tokenizer("tiny-bert"), batch_size=1, max_length=32)
    datamodule.setup()
    return datamodule, models.load_model("tiny-bert", "classification", num_labels=2)


def test_trial_leaves_the_weights_and_the_random_state_as_they_were(tiny_setup):
    datamodule, net = tiny_setup
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    batch_fit.trial_peak(net, batch_fit.longest_batch(datamodule, 8), "32-true", "cpu")
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_out_of_memory_in_a_trial_halves_the_batch_and_says_why(tiny_setup, monkeypatch):
    datamodule, net = tiny_setup
    real_trial = batch_fit.trial_peak

    def trial_that_runs_out_above_8(net, batch, precision, device):
        if batch["input_ids"].shape[0] > 8:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return real_trial(net, batch, precision, device)

    monkeypatch.setattr(batch_fit, "trial_peak", trial_that_runs_out_above_8)
    params = Params(batch_size="auto", memory_budget_gb=64.0, max_length=32, train_size=64)
    fit = batch_fit.resolve(params, datamodule, net, device="cpu")
    assert fit.batch_size == 8 and datamodule.batch_size == 8
    assert [t.outcome for t in fit.trials] == ["out of memory", "out of memory", "out of memory", "fits"]
    assert "halved it to 8" in fit.reason and "batch 64: out of memory" in fit.reason


def test_a_trial_error_that_is_not_memory_is_raised(tiny_setup, monkeypatch):
    datamodule, net = tiny_setup

    def broken_trial(*args):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(batch_fit, "trial_peak", broken_trial)
    with pytest.raises(RuntimeError, match="shapes"):
        batch_fit.resolve(Params(batch_size="auto", memory_budget_gb=64.0), datamodule, net, device="cpu")


def test_a_budget_below_batch_one_is_one_clear_error(tiny_setup):
    datamodule, net = tiny_setup
    params = Params(batch_size="auto", memory_budget_gb=0.05)
    with pytest.raises(batch_fit.BatchFitError, match=r"even batch 1 does not fit 0.05 GB .*valid: a larger"):
        batch_fit.resolve(params, datamodule, net, device="cpu")


def test_a_fixed_batch_passes_through_with_its_accumulation():
    fit = batch_fit.resolve(Params(batch_size=16, effective_batch_size=100), None, None)
    assert (fit.batch_size, fit.accumulate_grad_batches, fit.effective_batch_size, fit.trials) == (16, 7, 112, [])
    fit = batch_fit.resolve(Params(batch_size=16, accumulate_grad_batches=4), None, None)
    assert (fit.accumulate_grad_batches, fit.effective_batch_size, fit.auto) == (4, 64, False)


@pytest.mark.parametrize("values, message", [
    ({"batch_size": "big"}, "batch_size='big': Input should be a valid integer or 'auto'"),
    ({"batch_size": 0}, "batch_size=0: Input should be greater than or equal to 1 or 'auto'"),
    ({"effective_batch_size": 64, "accumulate_grad_batches": 2}, "set effective_batch_size (64) or"),
    ({"memory_budget_gb": 4}, "memory_budget_gb (4.0) applies to batch_size 'auto' only"),
    ({"batch_size": "auto", "memory_budget_gb": -1}, "memory_budget_gb=-1: Input should be greater than 0"),
])
def test_bad_batch_fields_are_one_line(values, message):
    with pytest.raises(ParamsError) as err:
        build_params(Params, values)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_estimated_start_is_the_largest_power_of_two_that_fits():
    spec = memory.model_spec("tiny-bert")
    need = {b: batch_fit.predicted_bytes(memory.estimate(spec, "full", "fp32", b, 128, "cpu"), "cpu", 5e8)
            for b in memory.BATCH_SIZES}
    limit = (need[32] + need[64]) / 2
    assert batch_fit.estimated_start(spec, "full", "fp32", 128, "cpu", limit, 1024, 5e8, 8) == (32, need[32])
    assert batch_fit.estimated_start(spec, "full", "fp32", 128, "cpu", limit, 16, 5e8, 8)[0] == 16  # the cap
    assert batch_fit.estimated_start(spec, "full", "fp32", 128, "cpu", 1.0, 1024, 5e8, 8)[0] == 1  # nothing fits

"""lowres.mlm: the masked-only MLM head computes transformers' loss, fixed validation masks, one small fit."""
import pytest
import torch

from lowres import data, mlm, models
from lowres.meters import Meter
from lowres.studies.precision import steps
from lowres.studies.precision.params import Params


@pytest.fixture(scope="module")
def tokenizer():
    return models.load_tokenizer("tiny-bert")


def small_datamodule(tokenizer, **overrides):
    params = Params(**{"train_size": 64, "val_size": 48, "batch_size": 16, "threads": 1, **overrides})
    plan = steps.plan_for(params)
    return params, plan, steps.load_datamodule(params, tokenizer, plan)


@pytest.mark.parametrize("model", ["tiny-bert", "tiny-distilbert"])
def test_masked_head_gives_transformers_loss_and_logits(tokenizer, model):
    torch.manual_seed(0)
    _, _, dm = small_datamodule(tokenizer)
    batch = dict(next(iter(dm.val_dataloader())))
    net = models.load_model(model, "mlm").eval()  # no dropout: both forwards see the same activations
    masked_loss, masked_logits, target = mlm.MLMForward(net, "masked")(**batch)
    all_loss, all_logits, all_target = mlm.MLMForward(net, "all")(**batch)
    assert len(target) > 0 and torch.equal(target, all_target)
    assert masked_loss.item() == pytest.approx(net(**batch).loss.item(), rel=1e-5)
    assert masked_loss.item() == pytest.approx(all_loss.item(), rel=1e-5)
    torch.testing.assert_close(masked_logits, all_logits, rtol=1e-4, atol=1e-4)


def test_masked_head_is_refused_where_the_model_has_no_separable_head():
    class Opaque(torch.nn.Module):
        pass

    with pytest.raises(ValueError, match="Opaque has none; valid for this model: head='all'"):
        mlm.MLMForward(Opaque(), "masked")
    with pytest.raises(ValueError, match="unknown mlm head 'half'; valid: masked, all"):
        mlm.MLMForward(Opaque(), "half")


def test_validation_masks_are_fixed_and_leave_the_global_rng_alone(tokenizer):
    corpus = data.load_corpus("synthetic-vizwiz", train_size=32, val_size=40, seed=0)
    state = torch.random.get_rng_state()
    first = mlm.MLMAdaptationDataModule(corpus, tokenizer, seed=0)
    first.setup()
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(123)  # a different training seed must not move the validation masks
    second = mlm.MLMAdaptationDataModule(corpus, tokenizer, seed=1)
    second.setup()
    assert first.val_set.encodings == second.val_set.encodings
    labels = [t for e in first.val_set.encodings for t in e["labels"]]
    masked = sum(t != -100 for t in labels)
    assert 0.05 < masked / len(labels) < 0.3  # ~15% of tokens (special tokens are never masked)
    assert 0 < mlm.majority_accuracy(first) < 1


def test_fit_records_epochs_windows_and_what_ran(tokenizer, tmp_path):
    torch.manual_seed(0)
    params, plan, dm = small_datamodule(tokenizer, epochs=2)
    module = steps.build_module(params, plan)
    meter = Meter(energy="off")
    record = mlm.fit_mlm(module, dm, plan, meter, precision="32-true", epochs=2, record_dir=tmp_path)
    assert [row["epoch"] for row in record.history] == [0, 1]
    assert record.history[1]["val_loss"] < record.history[0]["val_loss"]  # it learns (token frequencies at least)
    assert all(0 <= row["val_mlm_accuracy"] <= 1 and row["train_loss"] > 0 for row in record.history)
    assert {"train", "train_epoch_0", "train_epoch_1", "validate_epoch_1"} <= set(meter.measurements)
    train_window = meter.measurements["train"]
    assert train_window.samples == 2 * 64 and train_window.steps == 2 * 4 and train_window.tokens > 0
    metrics = record.metrics()
    assert metrics["val_mlm_accuracy"] == record.history[-1]["val_mlm_accuracy"]
    assert set(metrics["epochs"]) == {"0", "1"}
    assert metrics["parallel"]["total_batch_size"] == 16 and metrics["precision"]["effective"] == "32-true"


def test_16_mixed_fit_on_cpu_is_labelled_bf16(tokenizer, tmp_path):
    params, plan, dm = small_datamodule(tokenizer, precision="16-mixed")
    module = steps.build_module(params, plan)
    meter = Meter(energy="off")
    record = mlm.fit_mlm(module, dm, plan, meter, precision="16-mixed", epochs=1, max_steps=2, record_dir=tmp_path,
                         limit_val_batches=1)
    assert record.precision["requested"] == "16-mixed" and record.precision["effective"] == "bf16-mixed"
    assert meter.measurements["train"].precision == "bf16-mixed"  # the window's label is what ran, too


def test_step_flops_only_for_fixed_length_steps(tokenizer):
    params, plan, dm = small_datamodule(tokenizer, padding="max_length", max_length=24)
    module = steps.build_module(params, plan)
    flops = mlm.step_flops(module, dm, per_device_batch=16)
    encoder_only = 6 * 16 * 24 * sum(p.numel() for n, p in module.model.named_parameters() if "embeddings" not in n
                                     and "cls" not in n)
    assert encoder_only < flops < 6 * 16 * 24 * module.model.num_parameters()  # a masked-only head costs less
    _, plan, dynamic = small_datamodule(tokenizer)
    assert mlm.step_flops(module, dynamic, per_device_batch=16) is None


def test_precision_tables_put_an_accumulated_run_at_its_effective_batch():
    """small-gpu profile: micro-batch 16 x accumulation 4 is the paper's batch 64, not a second batch-16 point."""
    import pandas as pd

    from lowres import config
    from lowres.studies.precision import analysis

    frame = pd.DataFrame({"params.batch_size": [16, 16], "params.accumulate_grad_batches": [1, 4],
                          "metrics.parallel.total_batch_size": [16, 16], "summary.effective_batch_size": [16, 64],
                          "params.precision": ["32-true", "32-true"], "run_id": ["a", "b"]})
    table = analysis.runs(frame)
    assert table["batch_size"].tolist() == [16, 64] and table["accumulation"].tolist() == [1, 4]
    plan = config.load_params("precision", "small-gpu")
    assert sorted({p.batch_size * p.accumulate_grad_batches for p in plan.runs}) == [16, 32, 64, 128, 256]

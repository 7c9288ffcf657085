"""LoRA vs full fine-tuning (lowres.lora) and the study's parameters: counts, adapters on disk, the 8-bit base,
bad input."""
from types import SimpleNamespace

import pytest
import torch

from lowres import config, lora
from lowres.studies.lora import analysis as lora_analysis
from lowres.train import predict

MODEL = "tiny-bert"  # 4 layers, hidden 128, random init: the offline smoke model


@pytest.fixture(scope="module")
def val_loader():
    from lowres import data, models
    from lowres.data.modules import ClassificationDataModule

    corpus = data.load_corpus("synthetic-sentiment", train_size=32, val_size=48, seed=0)
    datamodule = ClassificationDataModule(corpus, models.load_tokenizer(MODEL), batch_size=16, max_length=32, seed=0)
    datamodule.setup()
    return datamodule.val_dataloader()


def expected_lora_trainable(net, targets=("query", "value"), heads=("classifier",)) -> int:
    """r x (in + out) per adapted Linear, plus the modules trained in full: counted from the layers' shapes."""
    rank = net.peft_config["default"].r
    base = net.get_base_model()
    adapted = sum(rank * (m.in_features + m.out_features) for name, m in base.named_modules()
                  if name.rsplit(".", 1)[-1] in targets and hasattr(m, "lora_A"))
    saved = {name.split(".original_module.")[0] for name, _ in base.named_parameters() if ".original_module." in name}
    assert {name.rsplit(".", 1)[-1] for name in saved} == set(heads)
    head = sum(p.numel() for name, p in base.named_parameters() if ".original_module." in name)  # the frozen copy
    return adapted + head


HEAD = 128 * 2 + 2  # tiny-bert's 2-way classifier
POOLER = 128 * 128 + 128  # tiny-bert's pooler: dense 128 -> 128


def perturb_adapters(net, seed: int = 0) -> None:
    """LoRA's B starts at zero (adapter = identity): give adapters and head random weights so they matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.mark.parametrize("rank", [4, 16])
def test_lora_trainable_share_is_tiny_and_matches_peft_and_the_layer_shapes(rank):
    net = lora.build_model(MODEL, "lora", num_labels=2, rank=rank)
    counts = lora.parameter_counts(net)
    peft_trainable, peft_total = net.get_nb_trainable_parameters()
    assert counts["params_counted_by"] == "peft.get_nb_trainable_parameters"
    assert counts["trainable_params"] == peft_trainable == counts["trainable_params_torch"]
    assert counts["total_params"] == peft_total
    # 4 layers x (query + value) x r x (128 + 128) + the head
    assert counts["trainable_params"] == expected_lora_trainable(net) == 4 * 2 * rank * 256 + HEAD
    assert counts["trainable_pct"] == pytest.approx(100 * peft_trainable / peft_total)
    assert counts["trainable_pct"] < 1.0
    assert net.training  # dropout on: from_pretrained returns eval mode and Lightning keeps it


def test_full_fine_tuning_trains_every_weight():
    net = lora.build_model(MODEL, "full", num_labels=2)
    counts = lora.parameter_counts(net)
    assert counts["trainable_params"] == counts["total_params"] == sum(p.numel() for p in net.parameters())
    assert counts["trainable_pct"] == 100.0 and counts["params_counted_by"].startswith("torch")


def test_modules_to_save_adds_the_pooler_to_what_trains_in_full():
    net = lora.build_model(MODEL, "lora", rank=4, modules_to_save=["pooler", "classifier"])
    counts = lora.parameter_counts(net)
    assert counts["trainable_params"] == expected_lora_trainable(net, heads=("pooler", "classifier"))
    assert counts["trainable_params"] == 4 * 2 * 4 * 256 + HEAD + POOLER == counts["trainable_params_torch"]
    with pytest.raises(ValueError, match=r"modules to train in full \(modules_to_save\) \['poolr'\] are not modules"):
        lora.build_model(MODEL, "lora", rank=4, modules_to_save=["poolr", "classifier"])


def test_explicit_target_modules_adapt_more_layers():
    default = lora.parameter_counts(lora.build_model(MODEL, "lora", rank=4))["trainable_params"]
    qkv = lora.build_model(MODEL, "lora", rank=4, target_modules=["query", "key", "value"])
    assert lora.parameter_counts(qkv)["trainable_params"] == expected_lora_trainable(qkv, ("query", "key", "value"))
    assert expected_lora_trainable(qkv, ("query", "key", "value")) == default + 4 * 4 * 256


def test_adapter_save_and_reload_gives_identical_predictions(tmp_path, val_loader):
    torch.manual_seed(0)
    net = lora.build_model(MODEL, "lora", num_labels=2, rank=4)
    perturb_adapters(net)
    preds, labels = predict(net, val_loader)
    base_preds, _ = predict(lora.load_base(MODEL, "lora"), val_loader)
    assert not torch.equal(preds, base_preds)  # the adapter changes the model, so the reload has work to do
    trained = SimpleNamespace(val_preds=[preds], val_labels=[labels])  # what ClassificationModule records

    exported = lora.export(net, trained, MODEL, "lora", tmp_path, val_loader)

    assert exported.reload_agreement == 1.0
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert 0 < exported.adapter_bytes < 0.05 * exported.checkpoint_bytes
    assert exported.metrics()["adapter_vs_checkpoint_pct"] == pytest.approx(
        100 * exported.adapter_bytes / exported.checkpoint_bytes)
    reloaded = lora.reload_adapter(MODEL, tmp_path / "adapter", "lora")
    logits = [torch.cat([m.eval()(**{k: v for k, v in b.items() if k != "labels"}).logits for b in val_loader])
              for m in (net, reloaded)]
    torch.testing.assert_close(logits[0], logits[1])
    merged_preds, _ = predict(exported.model, val_loader)  # LoRA merged into a plain checkpoint
    assert torch.equal(merged_preds, preds) and not hasattr(exported.model, "peft_config")


def test_full_export_saves_a_checkpoint_that_reproduces_predictions(tmp_path, val_loader):
    net = lora.build_model(MODEL, "full", num_labels=2)
    preds, labels = predict(net, val_loader)
    exported = lora.export(net, SimpleNamespace(val_preds=[preds], val_labels=[labels]), MODEL, "full", tmp_path,
                           val_loader)
    assert exported.reload_agreement == 1.0 and exported.adapter_bytes is None
    assert exported.metrics()["adapter_vs_checkpoint_pct"] is None and exported.checkpoint_bytes > 1e6


def test_export_needs_the_trained_predictions(tmp_path, val_loader):
    with pytest.raises(ValueError, match="no validation predictions"):
        lora.export(lora.build_model(MODEL, "lora", rank=4), SimpleNamespace(), MODEL, "lora", tmp_path, val_loader)


EIGHT_BIT_HERE = lora.bnb_8bit_problem(lora.eight_bit_device())


@pytest.mark.skipif(EIGHT_BIT_HERE is not None, reason=f"bitsandbytes 8-bit unavailable here: {EIGHT_BIT_HERE}")
def test_lora_8bit_trains_adapters_over_an_int8_base_and_reloads(tmp_path, val_loader):
    import bitsandbytes as bnb

    net = lora.build_model(MODEL, "lora-8bit", num_labels=2, rank=4, modules_to_save=["pooler", "classifier"])
    bert = net.get_base_model().bert
    query = bert.encoder.layer[0].attention.self.query
    assert isinstance(query.base_layer, bnb.nn.Linear8bitLt) and query.base_layer.weight.dtype == torch.int8
    assert bert.pooler.modules_to_save["default"].dense.weight.dtype == torch.float32  # the head trains in full
    counts = lora.parameter_counts(net)
    assert counts["trainable_params"] == expected_lora_trainable(net, heads=("pooler", "classifier"))
    assert counts["trainable_params"] == 4 * 2 * 4 * 256 + HEAD + POOLER
    batch = next(iter(val_loader))
    net(**batch).loss.backward()
    grads = {name: p.grad for name, p in net.named_parameters() if p.requires_grad}
    assert grads and all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)

    perturb_adapters(net)
    preds, labels = predict(net, val_loader, "cpu" if lora.eight_bit_device() == "cpu" else "cuda")
    exported = lora.export(net, SimpleNamespace(val_preds=[preds], val_labels=[labels]), MODEL, "lora-8bit",
                           tmp_path, val_loader)
    assert exported.reload_agreement == 1.0  # reloaded onto a freshly quantized base
    assert next(exported.model.parameters()).dtype == torch.float32  # merged into the fp32 base for inference


def test_lora_8bit_is_refused_clearly_where_bitsandbytes_cannot_run_it(monkeypatch):
    monkeypatch.setattr(lora, "bnb_8bit_problem", lambda device: "RuntimeError: no 8-bit kernels")
    with pytest.raises(ValueError, match=r"'lora-8bit'.*no 8-bit kernels.*valid methods here: full, lora$"):
        lora.check_method("lora-8bit")
    assert lora.valid_methods() == ["full", "lora"]
    with pytest.raises(config.ParamsError, match="lora-8bit"):
        config.build_params(config.params_class("lora"), {"method": "lora-8bit"})


@pytest.mark.parametrize("method", ["qlora", "LoRA", ""])
def test_unknown_method_is_refused_with_the_valid_ones(method):
    with pytest.raises(ValueError, match=f"unknown fine-tuning method {method!r}; valid: full, lora, lora-8bit"):
        lora.build_model(MODEL, method)


@pytest.mark.parametrize("rank", [0, -4, 2.5, True])
def test_bad_rank_is_refused_before_loading_anything(rank, monkeypatch):
    monkeypatch.setattr(lora, "load_base", lambda *a, **k: pytest.fail("loaded a model for a bad rank"))
    with pytest.raises(ValueError, match=rf"LoRA rank must be an integer >= 1 .* got {rank!r}"):
        lora.build_model(MODEL, "lora", rank=rank)


def test_target_modules_that_are_not_linear_layers_are_named():
    with pytest.raises(ValueError, match=r"\['q_lin'\] are not Linear layers of this bert model; valid: .*query"):
        lora.build_model(MODEL, "lora", rank=4, target_modules=["q_lin"])


@pytest.mark.parametrize("values, message", [
    ({"method": "qlora"}, "method='qlora'"),
    ({"lora_rank": 0}, "lora_rank=0: Input should be greater than or equal to 1"),
    ({"lora_dropout": 1.0}, "lora_dropout=1.0: Input should be less than 1"),
    ({"inference_precisions": "fp32,fp8"}, "unknown inference precision 'fp8'; valid: fp32, fp16, bf16, int8"),
    ({"inference_precisions": "fp32,fp16"}, "'fp16' needs a CUDA GPU"),
    ({"lora_target_modules": " , "}, "lora_target_modules must name at least one module"),
    ({"lora_modules_to_save": ""}, "lora_modules_to_save must name at least one module"),
    ({"method": "full", "lr": 0.0}, "lr=0.0: Input should be greater than 0"),
        ({"method": "full", "lr": None}, "lr must be set for method 'full'"),
])
def test_study_params_refuse_bad_values(values, message):
    if "fp16" in str(values) and torch.cuda.is_available():
        pytest.skip("fp16 inference is valid on CUDA")
    with pytest.raises(config.ParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.build_params(config.params_class("lora"), values)


def test_smoke_grid_is_full_plus_two_lora_ranks_and_full_ignores_lora_settings():
    plan = config.load_params("lora", "smoke")
    runs = sorted((p.method, p.lora_rank) for p in plan.runs)
    assert runs == [("full", None), ("lora", 4), ("lora", 16)]
    full = next(p for p in plan.runs if p.method == "full")
    assert full.lora_lr is None and full.lora_modules_to_save is None and full.learning_rate == full.lr and full.precisions == ["fp32", "int8"]
    lora_run = next(p for p in plan.runs if p.method == "lora")
    assert lora_run.lr is None and lora_run.learning_rate == lora_run.lora_lr


def test_pareto_front_keeps_only_undominated_points():
    import pandas as pd

    points = pd.DataFrame({"cost": [1.0, 2.0, 3.0, 2.5, float("nan")], "accuracy": [0.7, 0.9, 0.95, 0.85, 0.99]})
    assert lora_analysis.pareto_front(points, "cost").tolist() == [True, True, True, False, False]
